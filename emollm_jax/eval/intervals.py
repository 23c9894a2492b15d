"""95% intervals over seeds: a score's mean, and the paired difference between two variants.

Our choice: Student's t over seeds. Each seed (model init and data order) is one independent
training run, so the runs' scores are the sample; the interval is ``mean ± t(0.975, n - 1) * sd /
sqrt(n)`` with the sample standard deviation. It covers what a new seed would move, not the
test split's sampling error (a bootstrap over records would add that; with 200 records per
sub-task one record is half a point). Intervals are clipped to what the quantity can be (an
accuracy to [0, 1], a difference to [-1, 1]); with one seed there is none (``low = high =
None``). A difference between two variants is paired by seed (same seed, same init and data
order) and called significant only where its interval excludes zero.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

from scipy import stats

CONFIDENCE = 0.95


@dataclasses.dataclass(frozen=True)
class Interval:
    mean: float
    low: float | None  # None with fewer than two values
    high: float | None
    n: int

    @property
    def significant(self) -> bool:
        """Whether the interval excludes zero (read for differences)."""
        return self.low is not None and (self.low > 0 or self.high < 0)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"significant": self.significant}


def t_interval(
    values: Sequence[float],
    confidence: float = CONFIDENCE,
    bounds: tuple[float, float] = (-math.inf, math.inf),
) -> Interval:
    """The mean of ``values`` and its two-sided t interval, clipped to ``bounds`` (what the
    quantity can be: an accuracy lies in [0, 1], a difference of two in [-1, 1])."""
    n = len(values)
    if n == 0:
        raise ValueError("an interval needs at least one value")
    mean = math.fsum(values) / n
    if n == 1:
        return Interval(mean, None, None, 1)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean, max(mean - half, bounds[0]), min(mean + half, bounds[1]), n)


def paired_difference(
    a: Mapping[int, float], b: Mapping[int, float], confidence: float = CONFIDENCE
) -> Interval:
    """``a - b`` over the seeds both have (``{seed: accuracy}``), as a t interval in [-1, 1]."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError("the two variants share no seed")
    return t_interval([a[s] - b[s] for s in seeds], confidence, bounds=(-1.0, 1.0))
