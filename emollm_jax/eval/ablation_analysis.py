"""What the ablation's tables need beyond a mean per variant: chance levels, the spread over
seeds, the protocol's named comparisons, and the probes read from each run's files.

- ``CHANCE``: each sub-task's accuracy when guessing uniformly among its options (close-set
  emotion lists four options; open-set emotion has seven emotions; intent six; the yes/no
  sub-tasks two), and the EmoBench mean's.
- ``spread``: the sample standard deviation over seeds per variant and column (the recipe's
  stability: ``docs/ablation/protocol.md`` asks at most 2 points on the mean, 6 per sub-task).
- ``COMPARISONS``: the protocol's primary comparisons (their intervals also at the Bonferroni
  level for four comparisons) and its secondary ones; a comparison is reported where both of
  its variants ran.
- ``per_scale``: accuracy per cue scale (``local`` / ``global`` / ``relation``, from each v2
  record's ``cause``) of a ``generate`` evaluation; ``per_confounder``: hate's accuracy per
  benign confounder (none, a benign caption, a benign picture), which tells a model that reads
  both modalities from one that follows the caption alone.
- ``faithfulness`` per run (``eval.faithfulness``), for runs whose replies carry a rationale.
- ``perspective_drops``: a perspective-zeroed evaluation's accuracy minus the intact one's,
  paired by seed (``config.model.zeroed_perspectives``).
- ``record_churn``: how far seeds would spread if each differed only in which records it got
  right (each record right with its own rate over the seeds, independently of the others): the
  part of ``spread`` the split's records alone explain.
- ``training_curve``: the EmoBench mean of each variant run on several shares of the training
  split (run names ``<variant>_train<percent>``; the variant's own name is 100%), and per share
  each such variant's paired difference from the first one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from emollm_jax.eval.intervals import CONFIDENCE, Interval, paired_difference, t_interval
from emollm_jax.tasks import TASKS

MEAN = "mean"
CHANCE = {
    "emotion_closed": 1 / 4,
    "emotion_open": 1 / 7,
    "intent": 1 / 6,
    "hate": 1 / 2,
    "humor": 1 / 2,
    "sarcasm": 1 / 2,
}
CHANCE[MEAN] = sum(CHANCE[t] for t in TASKS) / len(TASKS)

# The protocol's primary comparisons (a, b): a - b on the EmoBench mean, generate mode.
PRIMARY = (
    ("mp", "baseline"),
    ("emoprompt", "baseline"),
    ("full", "baseline"),
    ("emoprompt_answer_first", "emoprompt"),
)
# Four primary comparisons: each also at 1 - 0.05 / 4 (two-sided).
BONFERRONI = 1 - (1 - CONFIDENCE) / len(PRIMARY)
SECONDARY = (
    ("full_answer_first", "full"),
    ("full", "mp"),
    ("full", "emoprompt"),
    ("emoprompt_no_rationale", "emoprompt"),
    ("emoprompt_rationale_w0.3", "emoprompt"),
    ("emoprompt_mix_bare", "emoprompt"),
    ("full_qwen2", "baseline_qwen2"),
    ("full_train25", "baseline_train25"),
    ("full_train50", "baseline_train50"),
)
SCALES = ("local", "global", "relation")
CONFOUNDERS = ("none", "text", "image")  # hate's benign confounders (mini EmoBench v2, v3)

# {variant: {seed: {column: accuracy}}}
Scores = Mapping[str, Mapping[int, Mapping[str, float]]]


def spread(scores: Scores) -> dict[str, dict[str, float]]:
    """``{variant: {column: sample standard deviation over seeds}}`` (variants with two or more
    seeds)."""
    out = {}
    for variant, seeds in scores.items():
        columns = dict.fromkeys(c for s in seeds.values() for c in s)  # first-seen order
        row = {}
        for c in columns:
            values = [s[c] for s in seeds.values() if c in s]
            if len(values) >= 2:
                mean = math.fsum(values) / len(values)
                row[c] = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))
        if row:
            out[variant] = row
    return out


def compare(scores: Scores, pairs: Iterable[tuple[str, str]], confidence: float = CONFIDENCE):
    """``{"a - b": {column: Interval}}`` of the paired differences, for each pair both of whose
    variants ran on a common seed."""
    out = {}
    for a, b in pairs:
        if a not in scores or b not in scores or not set(scores[a]) & set(scores[b]):
            continue
        columns = [c for c in (*TASKS, MEAN) if any(c in s for s in scores[a].values())]
        out[f"{a} - {b}"] = {
            c: paired_difference(
                {k: s[c] for k, s in scores[a].items() if c in s},
                {k: s[c] for k, s in scores[b].items() if c in s},
                confidence,
            )
            for c in columns
            if any(c in s for s in scores[b].values())
        }
    return out


def is_right(row: Mapping) -> bool:
    """A prediction row's answer is the gold one (an unparsed reply is wrong)."""
    return row.get("parsed") is not None and row.get("parsed") == row.get("gold")


def record_churn(right: Mapping[int, Mapping[str, Mapping[str, bool]]]) -> dict[str, float]:
    """``{column: standard deviation}`` from per-seed correctness ``{seed: {task: {record id:
    right}}}``, over the records every seed answered: with p_i the share of seeds that got
    record i right, Var = sum_i p_i (1 - p_i) / n^2 * k / (k - 1) for k seeds (unbiased); the
    mean's from the sub-tasks' as independent. Needs two or more seeds."""
    k = len(right)
    if k < 2:
        return {}
    out = {}
    for task in TASKS:
        per_seed = [seed.get(task) or {} for seed in right.values()]
        ids = set.intersection(*(set(s) for s in per_seed))
        if not ids:
            continue
        rates = [sum(bool(s[i]) for s in per_seed) / k for i in ids]
        out[task] = math.fsum(p * (1 - p) for p in rates) / len(ids) ** 2 * k / (k - 1)
    if len(out) == len(TASKS):
        out[MEAN] = math.fsum(out.values()) / len(TASKS) ** 2
    return {c: math.sqrt(v) for c, v in out.items()}


def _accuracy_by(predictions: Iterable[Mapping], group, order: Iterable[str]) -> dict[str, float]:
    """``{group: accuracy}`` over the rows ``group(row)`` names (None: not counted), in
    ``order``; an unparsed reply counts as wrong."""
    right: dict[str, int] = {}
    total: dict[str, int] = {}
    for row in predictions:
        key = group(row)
        if key is None:
            continue
        total[key] = total.get(key, 0) + 1
        right[key] = right.get(key, 0) + is_right(row)
    return {k: right.get(k, 0) / total[k] for k in order if total.get(k)}


def _cause(records: Mapping[str, Mapping], row: Mapping) -> Mapping:
    return (records.get(str(row["id"])) or {}).get("cause") or {}


def per_scale(predictions: Iterable[Mapping], records: Mapping[str, Mapping]) -> dict[str, float]:
    """``{scale: accuracy}`` over the predictions whose record names a cue scale (an unparsed
    reply counts as wrong)."""
    return _accuracy_by(predictions, lambda row: _cause(records, row).get("scale"), SCALES)


def per_confounder(
    predictions: Iterable[Mapping], records: Mapping[str, Mapping]
) -> dict[str, float]:
    """``{confounder: accuracy}`` over the hate records whose cause names one: ``none`` (a
    demeaning caption over people: hateful), ``text`` (a benign caption over people) and
    ``image`` (a demeaning caption over a benign picture). A model that follows the caption
    alone gets every ``text`` record right and every ``image`` one wrong; one that follows the
    picture alone, the reverse."""

    def confounder(row):
        if row.get("task") != "hate":
            return None
        return (_cause(records, row).get("cues") or {}).get("confounder")

    return _accuracy_by(predictions, confounder, CONFOUNDERS)


def over_seeds(per_seed: Mapping[str, Mapping[int, Mapping[str, float]]]) -> dict:
    """``{variant: {key: Interval}}`` over seeds of per-seed ``{key: value}`` (values in
    [0, 1])."""
    out = {}
    for variant, seeds in per_seed.items():
        keys = {k for row in seeds.values() for k in row if row[k] is not None}
        out[variant] = {
            k: t_interval([row[k] for row in seeds.values() if row.get(k) is not None], bounds=(0, 1))
            for k in sorted(keys)
        }
    return out


def perspective_drops(
    intact: Mapping[int, Mapping[str, float]], zeroed: Mapping[str, Mapping[int, Mapping[str, float]]]
) -> dict[str, dict[str, Interval]]:
    """``{perspective: {column: Interval of zeroed - intact}}`` paired by seed, from per-seed
    ``{column: accuracy}`` of the intact model and of each perspective-zeroed evaluation."""
    out = {}
    for name, seeds in zeroed.items():
        common = set(seeds) & set(intact)
        if not common:
            continue
        columns = [c for c in (*TASKS, MEAN) if all(c in seeds[s] and c in intact[s] for s in common)]
        out[name] = {
            c: paired_difference(
                {s: seeds[s][c] for s in common}, {s: intact[s][c] for s in common}
            )
            for c in columns
        }
    return out


_SHARE = re.compile(r"^(?P<variant>.+)_train(?P<percent>\d+(?:\.\d+)?)$")


def training_curve(scores: Scores, column: str = MEAN) -> dict:
    """``{"curve": {variant: {percent: Interval}}, "differences": {"a - b": {percent:
    Interval}}, "against_all": {"a - b": {percent: Interval}}}`` of ``column`` over the
    variants run on two or more shares of train (run names ``<variant>_train<percent>``; the
    variant's own run is 100%), ``{}`` when there are none. Percents ascend, as strings
    (``"25"``, ``"100"``). Differences are paired by seed: each variant minus the first curve
    variant (in the order first seen) at the same share; ``against_all`` is a difference at a
    share minus the same difference on all of train, over the seeds all four runs share (does
    the mechanism pay more with less data?)."""
    runs: dict[str, dict[str, str]] = {}  # {variant: {percent: run name}}
    for name in scores:
        found = _SHARE.match(name)
        if found:
            runs.setdefault(found["variant"], {})[found["percent"]] = name
    for variant, shares in runs.items():
        if variant in scores:
            shares["100"] = variant
    curve: dict[str, dict[str, Interval]] = {}
    for variant, shares in runs.items():
        if len(shares) < 2:
            continue
        row = {}
        for percent in sorted(shares, key=float):
            values = [s[column] for s in scores[shares[percent]].values() if column in s]
            if values:
                row[percent] = t_interval(values, bounds=(0.0, 1.0))
        curve[variant] = row
    differences, against_all = {}, {}
    first = next(iter(curve), None)
    for variant in curve:
        if variant == first:
            continue
        per_seed = {}  # {percent: {seed: variant - first}}
        for percent in curve[variant]:
            a, b = scores[runs[variant][percent]], scores.get(runs[first].get(percent, ""), {})
            common = [k for k in a if k in b and column in a[k] and column in b[k]]
            if common:
                per_seed[percent] = {k: a[k][column] - b[k][column] for k in common}
        name = f"{variant} - {first}"
        row = {p: t_interval(list(d.values()), bounds=(-1.0, 1.0)) for p, d in per_seed.items()}
        if row:
            differences[name] = row
        whole = per_seed.get("100", {})
        shifts = {
            p: t_interval([d[k] - whole[k] for k in d if k in whole], bounds=(-2.0, 2.0))
            for p, d in per_seed.items()
            if p != "100" and len(set(d) & set(whole)) >= 2
        }
        if shifts:
            against_all[name] = shifts
    if not curve:
        return {}
    return {"curve": curve, "differences": differences, "against_all": against_all}
