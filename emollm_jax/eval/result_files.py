"""Result files of an evaluation: ``results.json``, ``results.md`` and confusion-matrix PNGs.

Our choices:

- ``results.json`` holds ``{"schema": 1, "meta": {...}, "metrics": Metrics.to_dict()}``:
  fractions in [0, 1], all counts, labels and confusion matrices, so that any table can be
  rebuilt from it; ``read_results`` gives back the ``Metrics`` and the meta.
- ``results.md`` mirrors the paper's table: one row per model, one column per sub-task in
  ``TASKS`` order plus the mean, as percentages with one decimal. A sub-task without rows shows
  "–" and a note says the mean covers only the sub-tasks present. A second table lists the
  extras per sub-task (rows, unparsed, macro-F1). Records of the split that were left out of
  the scores (``meta["dropped_per_task"]``) are named in a warning under the table.
- ``confusion_<task>.png`` per scored sub-task: counts written in the cells, colour by row
  share (so rare gold labels stay readable), an ``unparsed`` column. Drawn on a bare
  ``matplotlib.figure.Figure`` with the Agg canvas, so nothing touches pyplot's global state or
  the user's backend; matplotlib is imported only when a PNG is drawn.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from typing import Any

from emollm_jax.eval.metrics import Metrics, TaskMetrics
from emollm_jax.paths import AnyPath, as_path, is_url
from emollm_jax.tasks import TASKS

SCHEMA = 1

# Column headers for the paper-style table; a task missing here is shown by its name.
TASK_TITLES = {
    "emotion_closed": "Emotion (close-set)",
    "emotion_open": "Emotion (open-set)",
    "intent": "Intent",
    "hate": "Hate",
    "humor": "Humor",
    "sarcasm": "Sarcasm",
}
MISSING = "–"


def percent(fraction: float | None) -> str:
    """A fraction as a percentage with one decimal ("83.3"), or "–" for None."""
    return MISSING if fraction is None else f"{100 * fraction:.1f}"


def markdown_table(metrics: Metrics, model: str = "model") -> str:
    """The paper-shaped accuracy table: one column per sub-task plus the mean, in percent."""
    header = ["Model", *(TASK_TITLES.get(t, t) for t in TASKS), "Mean"]
    accuracies = [metrics.tasks[t].accuracy if t in metrics.tasks else None for t in TASKS]
    cells = [model, *(percent(a) for a in accuracies), percent(metrics.mean_accuracy)]
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |",
        "| " + " | ".join(cells) + " |",
    ]
    if metrics.missing:
        covered = f"Mean over {len(metrics.tasks)} of {len(TASKS)} sub-tasks"
        lines += ["", f"{covered}; missing: {', '.join(metrics.missing)}."]
    return "\n".join(lines)


def extras_table(metrics: Metrics) -> str:
    """Per sub-task: rows scored, unparsed answers, accuracy and macro-F1 (percent)."""
    lines = [
        "| Sub-task | Rows | Unparsed | Accuracy | Macro-F1 |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for t in metrics.tasks.values():
        lines.append(
            f"| {t.task} | {t.n} | {t.unparsed} | {percent(t.accuracy)} | {percent(t.macro_f1)} |"
        )
    return "\n".join(lines)


def dropped_note(dropped: Mapping[str, int]) -> str:
    """A warning naming the sub-tasks whose records were left out of the scores ("" if none)."""
    lost = {task: n for task, n in dropped.items() if n}
    if not lost:
        return ""
    counts = ", ".join(f"{task} {n}" for task, n in lost.items())
    return (
        f"**Records left out of the scores** (refused by the pipeline: too long for "
        f"data.seq_buckets, undecodable media...; the log names the reasons): {counts}. "
        "These sub-tasks are scored on the remaining records only."
    )


def results_markdown(metrics: Metrics, model: str = "model", meta: Mapping | None = None) -> str:
    """The whole ``results.md``: the EmoBench table (with a warning when records were left
    out), the extras table and the run's meta."""
    parts = ["# EmoBench results", "", markdown_table(metrics, model)]
    note = dropped_note((meta or {}).get("dropped_per_task", {}))
    if note:
        parts += ["", note]
    parts += ["", "## Per sub-task", "", extras_table(metrics)]
    if meta:
        parts += ["", "## Run", ""] + [f"- {key}: {value}" for key, value in meta.items()]
    return "\n".join(parts) + "\n"


def plot_confusion(task: TaskMetrics, path: str | os.PathLike[str]) -> None:
    """Draw one sub-task's confusion matrix to a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows, cols = len(task.labels), len(task.columns)
    shares = [[c / max(sum(row), 1) for c in row] for row in task.confusion]
    fig = Figure(figsize=(1.0 + 0.7 * cols, 1.0 + 0.6 * rows))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    for g, row in enumerate(task.confusion):
        for p, count in enumerate(row):
            colour = "white" if shares[g][p] > 0.5 else "black"
            ax.text(p, g, str(count), ha="center", va="center", color=colour, fontsize=8)
    ax.set_xticks(range(cols), task.columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(rows), task.labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(f"{task.task}: accuracy {percent(task.accuracy)}%, n={task.n}", fontsize=9)
    fig.tight_layout()
    if is_url(path):  # matplotlib writes local files or file objects
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        as_path(path).write_bytes(buffer.getvalue())
    else:
        fig.savefig(path, dpi=100)


def write_results(
    out_dir: str | os.PathLike[str],
    metrics: Metrics,
    *,
    model: str = "model",
    meta: Mapping[str, Any] | None = None,
    plots: bool = True,
) -> dict[str, AnyPath]:
    """Write results.json, results.md and (if ``plots``) confusion_<task>.png into ``out_dir``.

    ``meta`` (config, checkpoint, split, ...) must be JSON-serialisable. Returns the paths
    written, keyed "json", "md" and "confusion_<task>".
    """
    out = as_path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(meta or {})
    paths = {"json": out / "results.json", "md": out / "results.md"}
    document = {"schema": SCHEMA, "meta": meta, "metrics": metrics.to_dict()}
    paths["json"].write_text(
        json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    paths["md"].write_text(results_markdown(metrics, model, meta), encoding="utf-8")
    if plots:
        for name, task in metrics.tasks.items():
            paths[f"confusion_{name}"] = out / f"confusion_{name}.png"
            plot_confusion(task, paths[f"confusion_{name}"])
    return paths


def read_results(out_dir: str | os.PathLike[str]) -> tuple[Metrics, dict[str, Any]]:
    """The ``Metrics`` and meta stored in ``out_dir/results.json``."""
    document = json.loads((as_path(out_dir) / "results.json").read_text(encoding="utf-8"))
    if document.get("schema") != SCHEMA:
        raise ValueError(f"results.json schema {document.get('schema')!r}, expected {SCHEMA}")
    return Metrics.from_dict(document["metrics"]), document["meta"]
