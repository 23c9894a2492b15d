"""A roofline estimate of one training step's time per chip, from ahead-of-time compilation.

This is an ESTIMATE, not a measurement: nothing is run. It combines what the compiler reports
for the compiled step (FLOPs, bytes accessed, the collectives an HLO reader found) with the
published per-chip figures in ``aot.chips``. Assumptions, each of which can be wrong:

- Compute runs at the chip's peak bf16 FLOP/s (``compute_s = flops / peak``): no MXU
  under-use, no f32 or vector-unit work slower than peak, no pipeline bubbles.
- HBM traffic is the compiler's "bytes accessed" moved at the full HBM bandwidth, with no
  cache or fusion effects beyond what the compiler already counted.
- Collectives use ring algorithms. Per chip, for a group of g chips and a buffer of b bytes
  (all-gather: its output; reduce-scatter: its input; all-reduce: its buffer; ``groups`` in
  the reader's dict is g, the number of chips in each replica group):
  all-gather, reduce-scatter and all-to-all move b*(g-1)/g, all-reduce 2*b*(g-1)/g (a
  reduce-scatter then an all-gather), collective-permute b. An unknown g (missing or 0) counts
  (g-1)/g as 1. ``bytes`` is the total over all ``count`` ops of a kind, all of one group size.
  An unrecognised kind is counted like a collective-permute (b moved once).
- That traffic moves at ``chip.ici_bandwidth``, the chip's one-direction bandwidth summed over
  all its links. This is optimistic: a ring over one torus axis uses only that axis's links.
- No per-collective latency: many small collectives take longer than their bytes suggest.
- Traffic that crosses slices (multi-slice) moves at ``chip.dcn_bandwidth``, itself an
  assumed figure for most chips (see ``chips.py``).
- ``step_s`` adds the collectives' time to the larger of compute and HBM time (no overlap of
  communication with computation: a conservative bound); ``step_s_overlapped`` is the largest
  of the three (perfect overlap: an optimistic bound). The real step lies in between if the
  other assumptions hold.

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

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


# The constants fitted on the published runs of role "fit" (``aot/calibrate.py``).
CALIBRATED = Calibration()


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
            host += _ratio(op.host_bytes, chip.host_bandwidth)
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
