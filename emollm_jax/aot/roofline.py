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


def mfu(model_flops_per_chip: float, step_s: float, chip: Chip) -> float:
    """Model FLOP utilisation, a fraction: model FLOPs / (step time * peak); nan if unknown."""
    return _ratio(model_flops_per_chip, _float(step_s) * _float(chip.peak_bf16_flops))
