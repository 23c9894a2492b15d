"""Step-time ESTIMATES of a compiled training step, from ahead-of-time compilation.

Nothing is run: the estimate reads the optimized HLO (``aot.hlo_stats``) and the chip table
(``aot.chips``). Two models live here.

``estimate_ops`` (what the reports quote as the estimate) is an op-level model:

- Each scheduled op (a fusion counts with the dots inside it; loop trip counts multiplied out,
  remat recomputation included) takes the LONGER of its matmul time and its HBM time, and ops
  run one after another. Evidence: a TPU core runs one op at a time (the schedule in the HLO
  is a sequence); within a fusion the MXU and the HBM stream overlap. The whole-program bound
  (sum of FLOPs at peak vs sum of bytes at bandwidth) assumed every op overlapped with every
  other and was 1.45x optimistic against MaxText's measured Llama3.1-8B step on v6e-8.
- Matmul time: FLOPs / (peak x ``mxu_efficiency`` x fill), fill the share of the MXU's tile
  (128 on v4/v5e/v5p, 256 on v6e; ``chips.Chip.mxu_tile``) that the dot's N and K dimensions use
  (a dimension of 100 on a 128-wide array wastes 28/128 of it). Splash attention kernels run at
  ``attention_efficiency`` instead: their softmax runs on the vector and transcendental units
  between the two matmuls, so they sustain a smaller share of the MXU's peak.
- HBM time: the op's bytes (operands and result in HBM; on-chip values and host memory are not
  HBM; a dynamic-(update-)slice moves its slice) / (bandwidth x ``hbm_efficiency``).
- Collectives use ring algorithms (``collective_traffic_bytes``) at ``chip.ici_bandwidth`` plus
  ``collective_latency_s`` each. Synchronous ones join the op sequence. Asynchronous ones
  (``-start`` ops and XLA:TPU's "async-collective-start" fusions, which the recipes' async
  collective fusion flags produce) run beside it: the step is the longest of the op sequence,
  the asynchronous collectives and the host copies.
- Host offload of remat residuals (async slices to and from ``S(5)``) moves at
  ``host_bandwidth`` (the chip's share of its host's links; the chip table's assumption when
  not calibrated) beside the op sequence.
- ``op_overhead_s`` is a fixed cost per scheduled op.

The constants (``Calibration``) were fitted with ``python -m emollm_jax.aot.calibrate --fit``
on published measured runs of role ``fit`` only (``aot/published_runs.json``); the reports
print them, and docs/calibration gives the error on every run. Expect the per-chip figures
(peak, bandwidths, tile) and the per-op structure to transfer to other models on the same
chips; the two efficiencies are averages over the fitted programs' matmul and attention shapes
and transfer less well to very different shapes (short sequences, small head dims).

``estimate`` is the earlier whole-program roofline (compute at peak, HBM at full bandwidth,
collectives added), kept as the reports' bounds: ``step_s`` adds the collectives' time to the
larger of compute and HBM time, ``step_s_overlapped`` is the largest of the three.

A figure that cannot be computed (a chip with unknown peak or bandwidth, as ``CHIPS["cpu"]``)
is nan, never an exception; ``bound`` is then ``"unknown"``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from emollm_jax.aot.chips import Chip

KINDS = ("all-gather", "reduce-scatter", "all-reduce", "all-to-all", "collective-permute")
_RING_FACTOR = {
    "all-gather": 1.0,
    "reduce-scatter": 1.0,
    "all-reduce": 2.0,
    "all-to-all": 1.0,
}


def _float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _ratio(numerator: float | None, denominator: float | None) -> float:
    """``numerator / denominator``; 0 when there is nothing to move, nan when unknowable."""
    numerator, denominator = _float(numerator), _float(denominator)
    if math.isnan(numerator):
        return math.nan
    if numerator == 0.0:
        return 0.0
    if not denominator > 0.0:
        return math.nan
    return numerator / denominator


def _max(*values: float) -> float:
    return math.nan if any(math.isnan(v) for v in values) else max(values)


@dataclasses.dataclass
class Estimate:
    compute_s: float
    hbm_s: float
    collective_s: float
    step_s: float
    step_s_overlapped: float
    bound: str

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def collective_traffic_bytes(kind: str, stats: Mapping) -> float:
    """Bytes one chip sends for the collectives of ``kind`` (ring algorithms, see module doc)."""
    kind = kind.lower().replace("_", "-")
    buffer = float(stats.get("bytes") or 0.0)
    groups = stats.get("groups")
    share = 1.0 if not groups else (float(groups) - 1.0) / float(groups)
    factor = _RING_FACTOR.get(kind)
    return buffer if factor is None else factor * buffer * share


def collective_seconds(
    collectives: Mapping[str, Mapping], chip: Chip, *, dcn_kinds_fraction: float = 0.0
) -> float:
    """Time for all collectives' traffic: the fraction ``dcn_kinds_fraction`` of every kind's
    traffic over DCN, the rest over ICI."""
    if not 0.0 <= dcn_kinds_fraction <= 1.0:
        raise ValueError(f"dcn_kinds_fraction must be in [0, 1], got {dcn_kinds_fraction}")
    traffic = sum(collective_traffic_bytes(k, s) for k, s in (collectives or {}).items())
    return _ratio(traffic * (1.0 - dcn_kinds_fraction), chip.ici_bandwidth) + _ratio(
        traffic * dcn_kinds_fraction, chip.dcn_bandwidth
    )


def estimate(
    *,
    flops_per_chip: float,
    bytes_accessed_per_chip: float,
    collectives: Mapping[str, Mapping],
    chip: Chip,
    cross_slice_bytes: float = 0.0,
) -> Estimate:
    """The roofline estimate for one step; ``cross_slice_bytes`` is the traffic each chip sends
    across slices (already the bytes on the wire), timed at ``chip.dcn_bandwidth``."""
    compute_s = _ratio(flops_per_chip, chip.peak_bf16_flops)
    hbm_s = _ratio(bytes_accessed_per_chip, chip.hbm_bandwidth)
    collective_s = collective_seconds(collectives, chip) + _ratio(
        cross_slice_bytes, chip.dcn_bandwidth
    )
    parts = {"compute": compute_s, "hbm": hbm_s, "collectives": collective_s}
    if any(math.isnan(v) for v in parts.values()):
        bound = "unknown"
    else:
        bound = max(parts, key=parts.__getitem__)
    return Estimate(
        compute_s=compute_s,
        hbm_s=hbm_s,
        collective_s=collective_s,
        step_s=_max(compute_s, hbm_s) + collective_s,
        step_s_overlapped=_max(compute_s, hbm_s, collective_s),
        bound=bound,
    )


@dataclasses.dataclass(frozen=True)
class Calibration:
    """The op-level model's constants, each standing for one physical effect (module doc)."""

    # Share of the MXU's peak that a large matmul fusion sustains (pipeline fill, the vector
    # and scalar work beside the matmul, layout changes inside the fusion).
    mxu_efficiency: float = 1.0
    # Share of the MXU's peak that the splash attention kernels sustain (their softmax runs on
    # the vector unit between two matmuls, and the backward kernels recompute it).
    attention_efficiency: float = 1.0
    # Share of the HBM bandwidth that a memory-bound op sustains.
    hbm_efficiency: float = 1.0
    # Fixed cost of one scheduled op (launch, synchronisation), seconds.
    op_overhead_s: float = 0.0
    # Fixed cost of one collective (the ring's hops and its synchronisation), seconds.
    collective_latency_s: float = 0.0
    # Bytes/s one chip moves to or from host memory when offloading remat residuals (its share
    # of the host's PCIe links and DRAM, which the host's chips share); 0: the chip table's.
    host_bandwidth: float = 0.0

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


# The constants fitted on the published runs of role "fit" that were compiled
# (``python -m emollm_jax.aot.calibrate --fit``: MaxText's 16B and 32B on v5e-256, Llama3.1-8B
# on v6e-8, v6e-16 and v6e-64; worst of them within x1.07 of its measurement). Llama3.1-8B on
# v6e-32, a fitting point compiled after the fit, gives 0.92; a refit on all six finds no better
# worst case (x1.085 either way), so the constants stayed. Only these three were searched; the
# others keep their neutral values. Read as: large matmul fusions run near the MXU's peak (0.98),
# splash attention at its modelled cost, and host offload moves 14 GB/s per v6e chip (8 chips
# share a host's links), which bounds MaxText's offloading v6e runs.
CALIBRATED = Calibration(mxu_efficiency=0.98, attention_efficiency=1.0, host_bandwidth=14e9)

# What the calibration measured with these constants (docs/calibration/calibration.json; a test
# keeps the two equal): the fitting runs' count and their lowest and highest estimate / measured.
CALIBRATION_ERROR = dict(runs=6, low=0.922, high=1.068)


def calibration_note() -> str:
    """One phrase for every report that quotes an estimate."""
    e = CALIBRATION_ERROR
    return (
        f"calibrated on {e['runs']} published MaxText runs, estimate / measured "
        f"{e['low']:.2f}-{e['high']:.2f} (docs/calibration)"
    )


def constants() -> dict:
    """The calibrated constants, for the reports."""
    return CALIBRATED.as_dict()


@dataclasses.dataclass
class OpEstimate:
    """The op-level model's step time and its streams (seconds per step)."""

    step_s: float
    stream_s: float  # ops one after another, with the synchronous collectives
    compute_s: float  # of which matmul/kernel-bound
    memory_s: float  # of which HBM-bound
    overhead_s: float  # of which fixed per-op costs
    sync_collective_s: float
    async_collective_s: float  # beside the stream (async collectives)
    host_s: float  # beside the stream (host offload copies)
    cross_slice_s: float
    bound: str

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def mxu_fill(dims: tuple[int, ...], tile: int) -> float:
    """Share of the matrix unit a matmul of (M, N, K) keeps busy: N and K are padded up to the
    unit's tile (M streams through it), so N=100 on a 128-wide MXU uses 100/128 of it."""
    if tile <= 1 or len(dims) < 3:
        return 1.0
    fill = 1.0
    for d in dims[1:]:
        if d > 0:
            fill *= d / (-(-d // tile) * tile)
    return fill


def estimate_ops(
    ops, chip: Chip, calibration: Calibration | None = None, cross_slice_bytes: float = 0.0
) -> OpEstimate:
    """The op-level step time of a compiled program (``hlo_stats.HloStats.ops``): each op
    takes the longer of its matmul time and its HBM time; ops run one after another; async
    collectives and host copies run beside them (module doc)."""
    c = CALIBRATED if calibration is None else calibration
    peak, bw = chip.peak_bf16_flops, chip.hbm_bandwidth * c.hbm_efficiency
    compute = memory = overhead = sync = async_coll = host = 0.0
    for op in ops:
        if op.collective:
            t = op.count * c.collective_latency_s + _ratio(
                collective_traffic_bytes(op.collective, {"bytes": op.buffer, "groups": op.group}),
                chip.ici_bandwidth,
            )
            if op.is_async:
                async_coll += t
                continue  # its bytes are the transfer's, beside the stream
            sync += t  # and a fusion's own work, if it holds any, below
        if op.host_bytes:
            host += _ratio(op.host_bytes, c.host_bandwidth or chip.host_bandwidth)
        if op.opcode.endswith("-done") or op.count == 0:
            continue
        efficiency = c.attention_efficiency if op.kernel else c.mxu_efficiency
        t_flops = _ratio(op.flops, peak * efficiency * mxu_fill(op.mxu_dims, chip.mxu_tile))
        t_bytes = _ratio(op.bytes, bw)
        if t_flops >= t_bytes:
            compute += t_flops
        else:
            memory += t_bytes
        if op.flops or op.bytes:
            overhead += op.count * c.op_overhead_s
    cross = _ratio(cross_slice_bytes, chip.dcn_bandwidth)
    stream = compute + memory + overhead + sync + cross
    streams = {"compute": stream, "collectives": async_coll, "host": host}
    step = _max(*streams.values())
    if math.isnan(step):
        bound = "unknown"
    elif step == stream:
        bound = "compute" if compute >= memory else "hbm"
    else:
        bound = max(streams, key=streams.__getitem__)
    return OpEstimate(step, stream, compute, memory, overhead, sync, async_coll, host, cross, bound)


def mfu(model_flops_per_chip: float, step_s: float, chip: Chip) -> float:
    """Model FLOP utilisation, a fraction: model FLOPs / (step time * peak); nan if unknown."""
    return _ratio(model_flops_per_chip, _float(step_s) * _float(chip.peak_bf16_flops))
