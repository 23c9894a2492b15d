"""EmoBench scores from prediction rows: accuracy per sub-task, their mean, and extras.

Input rows are mappings with at least ``id``, ``task``, ``gold`` and ``parsed`` (a label, or None
when the parser read no answer), e.g. the rows of ``predictions.jsonl``. Our choices:

- Accuracy per sub-task is correct / rows of that sub-task; an unparsed answer is wrong and
  is counted in ``unparsed``.
- The overall score is EmoBench's: the plain (unweighted) mean of the sub-task accuracies. When
  some of the six sub-tasks have no rows, the mean is taken over those present and the absent
  ones are listed in ``missing``, so a partial run never passes for a full EmoBench score.
- Labels of a task: its default label set from ``emollm_jax.tasks``, then any other gold or
  parsed label met in the rows (records with their own options), sorted.
- Confusion matrix: rows are gold labels, columns are predicted labels plus a last
  ``unparsed`` column.
- Macro-F1: the mean of per-label F1 = 2TP / (2TP + FP + FN) over the labels that occur as gold
  or prediction (a label that never occurs has no defined F1 and is left out, as scikit-learn
  does by default). An unparsed answer is a false negative of its gold label and a false
  positive of nothing.
- A (task, id) pair seen twice is an error: double counting would inflate the score silently.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from emollm_jax.tasks import TASK_LABELS, TASKS

UNPARSED = "unparsed"


@dataclasses.dataclass(frozen=True)
class TaskMetrics:
    """Scores of one sub-task. ``confusion[g][p]``: rows with gold ``labels[g]`` predicted as
    ``labels[p]``, or unparsed for ``p == len(labels)``."""

    task: str
    n: int
    correct: int
    unparsed: int
    accuracy: float
    macro_f1: float
    labels: tuple[str, ...]
    confusion: tuple[tuple[int, ...], ...]

    @property
    def columns(self) -> tuple[str, ...]:
        """Column names of ``confusion``: the labels, then ``unparsed``."""
        return (*self.labels, UNPARSED)


@dataclasses.dataclass(frozen=True)
class Metrics:
    """Scores of a run: one ``TaskMetrics`` per sub-task present, in ``TASKS`` order."""

    tasks: dict[str, TaskMetrics]
    mean_accuracy: float | None  # None when no sub-task has rows
    missing: tuple[str, ...]  # sub-tasks of TASKS without rows
    n: int
    unparsed: int

    @property
    def complete(self) -> bool:
        """Whether all six sub-tasks were scored, i.e. ``mean_accuracy`` is EmoBench's score."""
        return not self.missing

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``Metrics.from_dict`` inverts it."""
        return dataclasses.asdict(self) | {"complete": self.complete}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Metrics:
        tasks = {}
        for name, t in data["tasks"].items():
            fields = {f.name: t[f.name] for f in dataclasses.fields(TaskMetrics)}
            fields["labels"] = tuple(fields["labels"])
            fields["confusion"] = tuple(tuple(row) for row in fields["confusion"])
            tasks[name] = TaskMetrics(**fields)
        return cls(
            tasks=tasks,
            mean_accuracy=data["mean_accuracy"],
            missing=tuple(data["missing"]),
            n=data["n"],
            unparsed=data["unparsed"],
        )


def _task_labels(task: str, rows: list[Mapping[str, Any]]) -> tuple[str, ...]:
    defaults = TASK_LABELS[task]
    seen = {row["gold"] for row in rows} | {row["parsed"] for row in rows}
    extra = sorted(label for label in seen if label is not None and label not in defaults)
    return (*defaults, *extra)


def _macro_f1(confusion: list[list[int]]) -> float:
    k = len(confusion)
    f1s = []
    for c in range(k):
        tp = confusion[c][c]
        fn = sum(confusion[c]) - tp  # includes the unparsed column
        fp = sum(confusion[g][c] for g in range(k)) - tp
        if tp + fn + fp:
            f1s.append(2 * tp / (2 * tp + fp + fn))
    return sum(f1s) / len(f1s) if f1s else 0.0


def task_metrics(task: str, rows: list[Mapping[str, Any]]) -> TaskMetrics:
    """Scores of one sub-task from its rows (all with ``row['task'] == task``)."""
    labels = _task_labels(task, rows)
    column = {label: i for i, label in enumerate(labels)}
    confusion = [[0] * (len(labels) + 1) for _ in labels]
    for row in rows:
        if row["gold"] is None:
            raise ValueError(f"row {row['id']!r} of task {task!r} has no gold label")
        predicted = len(labels) if row["parsed"] is None else column[row["parsed"]]
        confusion[column[row["gold"]]][predicted] += 1
    correct = sum(confusion[i][i] for i in range(len(labels)))
    unparsed = sum(r[-1] for r in confusion)
    return TaskMetrics(
        task=task,
        n=len(rows),
        correct=correct,
        unparsed=unparsed,
        accuracy=correct / len(rows),
        macro_f1=_macro_f1(confusion),
        labels=labels,
        confusion=tuple(tuple(r) for r in confusion),
    )


def compute_metrics(rows: Iterable[Mapping[str, Any]]) -> Metrics:
    """EmoBench scores of prediction rows (see the module docstring for the definitions)."""
    by_task: dict[str, list[Mapping[str, Any]]] = {}
    seen: set[tuple[str, str]] = set()
    for row in rows:
        task = row["task"]
        if task not in TASK_LABELS:
            raise ValueError(f"row {row['id']!r}: unknown task {task!r}")
        key = (task, str(row["id"]))
        if key in seen:
            raise ValueError(f"row {row['id']!r} of task {task!r} appears twice")
        seen.add(key)
        by_task.setdefault(task, []).append(row)
    tasks = {task: task_metrics(task, by_task[task]) for task in TASKS if task in by_task}
    accuracies = [t.accuracy for t in tasks.values()]
    return Metrics(
        tasks=tasks,
        mean_accuracy=sum(accuracies) / len(accuracies) if accuracies else None,
        missing=tuple(task for task in TASKS if task not in tasks),
        n=sum(t.n for t in tasks.values()),
        unparsed=sum(t.unparsed for t in tasks.values()),
    )
