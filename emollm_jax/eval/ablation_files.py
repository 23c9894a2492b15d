"""The multi-seed ablation's files: ``results.json``, ``results.md`` and a bar chart per mode.

Input: every finished run's ``Metrics`` by variant, seed and evaluation mode, and in ``meta``
optionally ``forms`` (``{mode: {variant: form}}``: what the likelihood mode scored) and
``unscored`` (``{mode: {variant: {seed: records left unscored}}}``), which the Markdown states
above the mode's table. Per mode (generate,
likelihood) and variant, each sub-task's accuracy and the EmoBench mean get a mean and a 95% t
interval over seeds (``intervals``); each variant but the reference (the first) gets its paired
difference from the reference per sub-task, significant only where the interval excludes zero.
Where some reply could not be parsed, a table of unparsed replies (% of rows, mean over seeds)
follows, so that a parse failure is not read as a wrong answer; then the share of rows given
each sub-task's most frequent answer (mean over seeds), which shows a model that collapsed onto
one label. The Markdown shows percentages with one decimal as ``mean [low, high]``; significant
differences are marked ``*``. The chart (``ablation_<mode>.png``): per sub-task and the mean, a
bar per variant with its interval, drawn on a bare Agg ``Figure`` like ``result_files.py``'s;
where variants ran on several shares of train, ``training_curve_<mode>.png`` draws their mean
against the share.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from emollm_jax.eval import ablation_analysis as analysis
from emollm_jax.eval.intervals import CONFIDENCE, Interval, paired_difference, t_interval
from emollm_jax.eval.metrics import Metrics
from emollm_jax.eval.result_files import TASK_TITLES
from emollm_jax.tasks import TASKS

SCHEMA = 1
MEAN = "mean"
METHOD = f"Student's t over seeds, {100 * CONFIDENCE:.0f}% two-sided; differences paired by seed"

# The likelihood forms (emollm_jax.inference.likelihood_run.FORMS) in words.
FORM_WORDS = {
    "label": "the bare label after the prompt",
    "answer_line": "`Answer: <label>` right after the prompt",
    "after_own_rationale": "`Answer: <label>` after the model's own greedy rationale",
}

# {variant: {seed: {mode: Metrics}}}
Runs = Mapping[str, Mapping[int, Mapping[str, Metrics]]]


def scores(metrics: Metrics) -> dict[str, float]:
    """A run's accuracy per sub-task present and its EmoBench mean."""
    out = {task: m.accuracy for task, m in metrics.tasks.items()}
    if metrics.mean_accuracy is not None:
        out[MEAN] = metrics.mean_accuracy
    return out


def _columns(per_seed: list[dict[str, float]]) -> list[str]:
    present = set().union(*per_seed) if per_seed else set()
    return [t for t in (*TASKS, MEAN) if t in present]


def mode_scores(runs: Runs, mode: str) -> dict[str, dict[int, dict[str, float]]]:
    """``{variant: {seed: {column: accuracy}}}`` of the runs evaluated in ``mode``."""
    out = {
        v: {seed: scores(modes[mode]) for seed, modes in seeds.items() if mode in modes}
        for v, seeds in runs.items()
    }
    return {v: s for v, s in out.items() if any(s.values())}


def summarise(runs: Runs, mode: str) -> tuple[dict, dict]:
    """(``{variant: {column: Interval}}``, ``{variant: {column: Interval}}`` of differences from
    the first variant) for ``mode``; variants without a run in ``mode`` are left out."""
    # A variant none of whose runs scored a record in this mode has nothing to summarise.
    by_variant = mode_scores(runs, mode)
    summary, differences = {}, {}
    reference = next(iter(by_variant), None)
    for variant, seeds in by_variant.items():
        columns = _columns(list(seeds.values()))
        summary[variant] = {
            c: t_interval([s[c] for s in seeds.values() if c in s], bounds=(0.0, 1.0))
            for c in columns
        }
        if variant == reference:
            continue
        ref = by_variant[reference]
        differences[variant] = {
            c: paired_difference(
                {k: s[c] for k, s in seeds.items() if c in s},
                {k: s[c] for k, s in ref.items() if c in s},
            )
            for c in columns
            if any(c in s for s in ref.values())
        }
    return summary, differences


def unparsed_shares(runs: Runs, mode: str) -> dict[str, dict[str, float]]:
    """``{variant: {sub-task or "mean": share of rows unparsed}}``, mean over seeds, for
    ``mode``; "mean" is over all rows of the run. Variants without a run in ``mode`` are left
    out."""
    out = {}
    for variant, seeds in runs.items():
        per_seed = [modes[mode] for modes in seeds.values() if mode in modes]
        if not per_seed:
            continue
        shares: dict[str, list[float]] = {}
        for m in per_seed:
            for task, t in m.tasks.items():
                shares.setdefault(task, []).append(t.unparsed / t.n if t.n else 0.0)
            shares.setdefault(MEAN, []).append(m.unparsed / m.n if m.n else 0.0)
        out[variant] = {c: sum(v) / len(v) for c, v in shares.items()}
    return out


def top_answer_shares(runs: Runs, mode: str) -> dict[str, dict[str, float]]:
    """``{variant: {sub-task: share of rows given its most frequent parsed answer}}``, mean over
    seeds, for ``mode`` (from the confusion matrices; unparsed replies are not an answer)."""
    out = {}
    for variant, seeds in runs.items():
        shares: dict[str, list[float]] = {}
        for modes in seeds.values():
            if mode not in modes:
                continue
            for task, t in modes[mode].tasks.items():
                predicted = [sum(col) for col in zip(*t.confusion)][: len(t.labels)]
                shares.setdefault(task, []).append(max(predicted) / t.n if t.n else 0.0)
        if shares:
            out[variant] = {c: sum(v) / len(v) for c, v in shares.items()}
    return out


def _shares_table(shares: Mapping[str, Mapping[str, float]], mean: str = "All rows") -> list[str]:
    """Per variant, each column's value in percent (one decimal); ``mean`` titles the mean's
    column."""
    columns = [c for c in (*TASKS, MEAN) if any(c in r for r in shares.values())]
    header = ["Variant", *(TASK_TITLES.get(c, mean) for c in columns)]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    for variant, row in shares.items():
        cells = [f"`{variant}`", *(f"{100 * row[c]:.1f}" if c in row else "–" for c in columns)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _cell(iv: Interval | None, signed: bool = False) -> str:
    if iv is None:
        return "–"
    fmt = "{:+.1f}" if signed else "{:.1f}"
    text = fmt.format(100 * iv.mean)
    if iv.low is not None:
        text += f" [{fmt.format(100 * iv.low)}, {fmt.format(100 * iv.high)}]"
    return text + ("*" if signed and iv.significant else "")


def _table(
    rows: Mapping[str, Mapping[str, Interval]],
    signed: bool,
    first: str = "Variant",
    chance: bool = False,
) -> list[str]:
    columns = [c for c in (*TASKS, MEAN) if any(c in r for r in rows.values())]
    header = [first, "Seeds", *(TASK_TITLES.get(c, "Mean") for c in columns)]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    for variant, row in rows.items():
        n = max(iv.n for iv in row.values())
        cells = [f"`{variant}`", str(n), *(_cell(row.get(c), signed) for c in columns)]
        lines.append("| " + " | ".join(cells) + " |")
    if chance:
        # The mean's chance is over the columns shown (likelihood scores five sub-tasks).
        shown = [analysis.CHANCE[c] for c in columns if c != MEAN]
        level = {**analysis.CHANCE, MEAN: sum(shown) / max(len(shown), 1)}
        lines.append("| chance | | " + " | ".join(f"{100 * level[c]:.1f}" for c in columns) + " |")
    return lines


def analyse(runs: Runs, mode: str) -> dict:
    """The spread over seeds and the protocol's comparisons in ``mode``."""
    by_variant = mode_scores(runs, mode)
    return {
        "spread": analysis.spread(by_variant),
        "primary": analysis.compare(by_variant, analysis.PRIMARY),
        "primary_bonferroni": analysis.compare(
            by_variant, analysis.PRIMARY, confidence=analysis.BONFERRONI
        ),
        "secondary": analysis.compare(by_variant, analysis.SECONDARY),
        "training_curve": analysis.training_curve(by_variant),
    }


def _analysis_markdown(found: Mapping) -> list[str]:
    parts = []
    if found["spread"]:
        parts += ["Standard deviation over seeds (points):", "", *_shares_table(found["spread"], mean="Mean"), ""]
    if found["primary"]:
        level = f"{100 * analysis.BONFERRONI:.2f}%"
        parts += [
            "Primary comparisons (paired by seed, 95% interval; * = it excludes zero). The "
            f"mean's interval at the Bonferroni level for four comparisons ({level}):",
            "",
            *_table(found["primary"], signed=True, first="Comparison"),
            "",
            *(
                f"- `{name}`, mean at {level}: {_cell(row[MEAN], signed=True)}"
                for name, row in found["primary_bonferroni"].items()
                if MEAN in row
            ),
            "",
        ]
    if found["secondary"]:
        parts += [
            "Secondary comparisons (exploratory; 95% intervals, no multiplicity correction):",
            "",
            *_table(found["secondary"], signed=True, first="Comparison"),
            "",
        ]
    return parts + _curve_markdown(found.get("training_curve") or {})


def _curve_markdown(found: Mapping) -> list[str]:
    """The EmoBench mean per share of train, then each curve variant minus the first."""
    if not found:
        return []
    percents = sorted({p for row in found["curve"].values() for p in row}, key=float)
    header = ["Variant", *(f"{p}% of train" for p in percents)]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * len(percents)]
    rows = [(f"`{v}`", row, False) for v, row in found["curve"].items()]
    rows += [(f"`{v}`", row, True) for v, row in found["differences"].items()]
    rows += [
        (f"`{v}`, minus on all of train", row, True)
        for v, row in found.get("against_all", {}).items()
    ]
    for label, row, signed in rows:
        cells = [f"{_cell(row[p], signed)} ({row[p].n})" if p in row else "–" for p in percents]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return [
        "Training-set size: the EmoBench mean per share of the training split (mean [95% "
        "interval] (seeds)), then the paired difference at each share, then that difference "
        "minus the same on all of train, paired by seed (points; * = it excludes zero):",
        "",
        *lines,
        "",
    ]


def _groups_table(title: str, intro: str, rows: Mapping, columns: Mapping[str, str]) -> list[str]:
    """A section of accuracy per group of records: one row per variant, a column per group."""
    parts = [f"## {title}", "", intro, ""]
    parts += ["| Variant | Seeds | " + " | ".join(columns.values()) + " |"]
    parts += ["| --- | ---: |" + " ---: |" * len(columns)]
    for variant, row in rows.items():
        n = max(iv.n for iv in row.values())
        cells = [_cell(row.get(k)) for k in columns]
        parts.append(f"| `{variant}` | {n} | " + " | ".join(cells) + " |")
    return [*parts, ""]


def _probes_markdown(probes: Mapping) -> list[str]:
    parts = []
    if probes.get("per_scale"):
        parts += _groups_table(
            "Accuracy per cue scale (generate)",
            "All sub-tasks' records of each scale of the record's `cause` (mean [95% interval]):",
            probes["per_scale"],
            {s: s for s in analysis.SCALES},
        )
    if probes.get("per_confounder"):
        parts += _groups_table(
            "Hate per benign confounder (generate)",
            "Hate's records by what makes them hateful or not (mean [95% interval]): a demeaning "
            "caption over people (hateful), a benign caption over people, a demeaning caption "
            "over a benign picture. Following the caption alone scores 100, 100 and 0; the "
            "picture alone 100, 0 and 100:",
            probes["per_confounder"],
            {"none": "both hateful", "text": "benign caption", "image": "benign picture"},
        )
    if probes.get("faithfulness"):
        parts += [
            "## Rationale faithfulness (generate)",
            "",
            "Share of replies whose rationale names every cue of the record's true cause, split "
            "by right and wrong answers (mean [95% interval] over seeds; records per run in "
            "brackets, mean over seeds):",
            "",
            "| Variant | Seeds | right answers | wrong answers |",
            "| --- | ---: | ---: | ---: |",
        ]
        for variant, row in probes["faithfulness"].items():
            cells = []
            for group in ("right", "wrong"):
                iv = row.get(f"{group}_names_cause")
                cells.append(f"{_cell(iv)} ({row[f'{group}_n']:.0f})")
            n = max((iv.n for k, iv in row.items() if k.endswith("_cause")), default=0)
            parts.append(f"| `{variant}` | {n} | " + " | ".join(cells) + " |")
        parts.append("")
    if probes.get("record_churn"):
        parts += [
            "## Spread over seeds that the split's records alone explain (generate)",
            "",
            "The standard deviation over seeds if every run differed only in which records it "
            "got right, each record right with its own rate over the seeds and independently of "
            "the others (points; compare with the standard deviation over seeds above):",
            "",
            *_shares_table(probes["record_churn"], mean="Mean"),
            "",
        ]
    if probes.get("perspectives"):
        parts += [
            "## Perspective ablation (generate)",
            "",
            "Accuracy with one perspective's tokens zeroed minus the intact model's, on the same "
            "records, paired by seed (points; * = the interval excludes zero):",
            "",
        ]
        for variant, by_name in probes["perspectives"].items():
            parts += [f"`{variant}`:", "", *_table(by_name, signed=True, first="Zeroed"), ""]
    return parts


def _seeds_line(meta: Mapping) -> str:
    """``[0, 1, 2]``, then the variants run on other seeds (``--seeds-for``) with theirs."""
    default, other = meta.get("seeds"), {}
    for variant, seeds in meta.get("seeds_for", {}).items():
        if seeds != default:
            other.setdefault(str(seeds), []).append(f"`{variant}`")
    extra = "".join(f"; {', '.join(names)}: {seeds}" for seeds, names in other.items())
    return f"{default}{extra}"


def markdown(runs: Runs, modes: list[str], meta: Mapping, probes: Mapping | None = None) -> str:
    parts = ["# Ablation over seeds", "", f"Accuracy in %, mean [95% interval]: {METHOD}."]
    parts += [f"Seeds: {_seeds_line(meta)}; split: {meta.get('split')}.", ""]
    for mode in modes:
        summary, differences = summarise(runs, mode)
        if not summary:
            continue
        parts += [f"## {mode}", ""]
        forms = meta.get("forms", {}).get(mode)
        if forms:
            named = "; ".join(f"`{v}`: {FORM_WORDS.get(f, f)}" for v, f in forms.items())
            parts += [f"What is scored: {named}.", ""]
        unscored = meta.get("unscored", {}).get(mode)
        if unscored and any(n for per in unscored.values() for n in per.values()):
            cells = "; ".join(
                f"`{v}`: {sum(per.values()) / max(len(per), 1):.1f}" for v, per in unscored.items()
            )
            parts += [
                "Records per run left unscored (no finished rationale before the answer marker "
                f"within the token limit; mean over seeds): {cells}.",
                "",
            ]
        parts += [*_table(summary, signed=False, chance=True), ""]
        if differences:
            reference = next(iter(summary))
            parts += [f"Difference from `{reference}` (points; * = interval excludes zero):", ""]
            parts += [*_table(differences, signed=True), ""]
        shares = unparsed_shares(runs, mode)
        if any(v > 0 for row in shares.values() for v in row.values()):
            parts += ["Unparsed replies (% of rows, mean over seeds; counted as wrong above):", ""]
            parts += [*_shares_table(shares), ""]
        parts += ["Most frequent answer (% of each sub-task's rows, mean over seeds):", ""]
        parts += [*_shares_table(top_answer_shares(runs, mode)), ""]
        parts += _analysis_markdown(analyse(runs, mode))
    parts += _probes_markdown(probes or {})
    return "\n".join(parts)


def plot(summary: Mapping[str, Mapping[str, Interval]], title: str, path: str | os.PathLike):
    """Per column a bar per variant, with its interval as an error bar."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = [c for c in (*TASKS, MEAN) if any(c in r for r in summary.values())]
    width = 0.8 / max(len(summary), 1)
    fig = Figure(figsize=(1.5 + 1.3 * len(columns), 4.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    # The default cycle repeats after ten colours; tab20 keeps up to twenty variants apart.
    colours = matplotlib.colormaps["tab10" if len(summary) <= 10 else "tab20"]
    for k, (variant, row) in enumerate(summary.items()):
        xs = [i + (k - (len(summary) - 1) / 2) * width for i, c in enumerate(columns) if c in row]
        ivs = [row[c] for c in columns if c in row]
        heights = [100 * iv.mean for iv in ivs]
        errors = [
            [100 * (iv.mean - iv.low) if iv.low is not None else 0 for iv in ivs],
            [100 * (iv.high - iv.mean) if iv.high is not None else 0 for iv in ivs],
        ]
        ax.bar(xs, heights, width, yerr=errors, capsize=2, label=variant, color=colours(k % 20))
    ax.set_xticks(range(len(columns)), [TASK_TITLES.get(c, "Mean") for c in columns], fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_curve(curve: Mapping[str, Mapping[str, Interval]], title: str, path: str | os.PathLike):
    """The EmoBench mean against the share of train, a line per variant with its intervals."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for variant, row in curve.items():
        xs = [float(p) for p in row]
        ivs = list(row.values())
        errors = [
            [100 * (iv.mean - iv.low) if iv.low is not None else 0 for iv in ivs],
            [100 * (iv.high - iv.mean) if iv.high is not None else 0 for iv in ivs],
        ]
        ax.errorbar(xs, [100 * iv.mean for iv in ivs], yerr=errors, capsize=3, marker="o",
                    label=variant)  # fmt: skip
    ax.set_xlabel("share of the training split (%)")
    ax.set_ylabel("EmoBench mean (%)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _as_dicts(tree):
    if isinstance(tree, Interval):
        return tree.to_dict()
    if isinstance(tree, Mapping):
        return {str(k): _as_dicts(v) for k, v in tree.items()}
    return tree


def write_ablation(
    out_dir: str | os.PathLike,
    runs: Runs,
    modes: list[str],
    meta: Mapping,
    probes: Mapping | None = None,
):
    """Write results.json, results.md and ablation_<mode>.png; returns their paths. ``probes``
    (``summarise_probes``) adds their sections."""
    out = Path(out_dir)
    document = {"schema": SCHEMA, "method": METHOD, "meta": dict(meta), "runs": {}, "modes": {}}
    document["chance"] = dict(analysis.CHANCE)
    document["probes"] = _as_dicts(probes or {})
    for variant, seeds in runs.items():
        document["runs"][variant] = {
            str(seed): {mode: scores(m) for mode, m in by_mode.items()}
            for seed, by_mode in seeds.items()
        }
    paths = {"json": out / "results.json", "md": out / "results.md"}
    for mode in modes:
        summary, differences = summarise(runs, mode)
        if not summary:
            continue
        found = analyse(runs, mode)
        document["modes"][mode] = {
            "unparsed": unparsed_shares(runs, mode),
            "top_answer": top_answer_shares(runs, mode),
            "summary": {v: {c: iv.to_dict() for c, iv in r.items()} for v, r in summary.items()},
            "differences": {
                v: {c: iv.to_dict() for c, iv in r.items()} for v, r in differences.items()
            },
            **_as_dicts(found),
        }
        paths[f"plot_{mode}"] = out / f"ablation_{mode}.png"
        title = f"{mode}: accuracy, mean and 95% t interval over seeds"
        plot(summary, title, paths[f"plot_{mode}"])
        if found["training_curve"]:
            paths[f"curve_{mode}"] = out / f"training_curve_{mode}.png"
            title = f"{mode}: EmoBench mean by share of train, 95% t interval over seeds"
            plot_curve(found["training_curve"]["curve"], title, paths[f"curve_{mode}"])
    _atomic_write(paths["json"], json.dumps(document, indent=2) + "\n")
    _atomic_write(paths["md"], markdown(runs, modes, meta, probes))
    return paths


def summarise_probes(found: Mapping) -> dict:
    """Intervals over seeds of the probes' per-seed values (``ablate_probes.collect``)."""
    out: dict = {}
    for key in ("per_scale", "per_confounder"):
        if found.get(key):
            out[key] = analysis.over_seeds(found[key])
    faith = {}
    for variant, seeds in (found.get("faithfulness") or {}).items():
        row: dict = {}
        for group in ("right", "wrong"):
            values = [r[group]["names_cause"] for r in seeds.values()]
            values = [v for v in values if v is not None]
            if values:
                row[f"{group}_names_cause"] = t_interval(values, bounds=(0.0, 1.0))
            row[f"{group}_n"] = sum(r[group]["n"] for r in seeds.values()) / len(seeds)
        faith[variant] = row
    if faith:
        out["faithfulness"] = faith
    churn = {v: analysis.record_churn(seeds) for v, seeds in (found.get("right") or {}).items()}
    if any(churn.values()):
        out["record_churn"] = {v: c for v, c in churn.items() if c}
    drops = {
        variant: analysis.perspective_drops(found["perspectives_intact"][variant], by_name)
        for variant, by_name in (found.get("perspectives") or {}).items()
    }
    if any(drops.values()):
        out["perspectives"] = {v: d for v, d in drops.items() if d}
    return out
