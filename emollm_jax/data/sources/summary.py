"""What a build wrote and skipped: counts kept while streaming, and ``summary.md`` from them."""

from __future__ import annotations

import collections
import dataclasses

from emollm_jax.data.bad_input import BadInputLog
from emollm_jax.data.records import SPLITS


@dataclasses.dataclass
class Tally:
    """Counters only (a build of 100k records holds no record in memory)."""

    paths: dict[str, str] = dataclasses.field(default_factory=dict)  # source -> folder
    rows: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    records: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    labels: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    bad: dict[str, BadInputLog] = dataclasses.field(default_factory=dict)

    def add(self, source: str, task: str, split: str, answer: str) -> None:
        self.records[task, source, split] += 1
        self.labels[source, task, answer, split] += 1

    def per_split(self) -> dict[str, int]:
        out = collections.Counter()
        for (_, _, split), n in self.records.items():
            out[split] += n
        return dict(out)


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header, rows) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows), ""]


def markdown(tally: Tally, seed: int) -> str:
    lines = ["# Build summary", "", f"Seed {seed}. Sources:", ""]
    lines += _table(
        ("source", "folder", "rows read", "records", "skipped"),
        [
            (
                s,
                f"`{p}`",
                tally.rows[s],
                sum(n for (_, src, _), n in tally.records.items() if src == s),
                tally.bad[s].total,
            )
            for s, p in tally.paths.items()
        ],
    )
    lines += ["## Records per task, source and split", ""]
    keys = sorted({(t, s) for t, s, _ in tally.records})
    lines += _table(
        ("task", "source", *SPLITS, "total"),
        [
            (t, s, *(tally.records[t, s, sp] for sp in SPLITS),
             sum(tally.records[t, s, sp] for sp in SPLITS))
            for t, s in keys
        ],
    )  # fmt: skip
    lines += ["## Label distributions", ""]
    label_keys = sorted({(s, t, a) for s, t, a, _ in tally.labels})
    lines += _table(
        ("source", "task", "answer", *SPLITS),
        [(s, t, a, *(tally.labels[s, t, a, sp] for sp in SPLITS)) for s, t, a in label_keys],
    )
    lines += ["## Skipped rows", ""]
    skipped = [
        (s, reason, n, ", ".join(f"`{e}`" for e in log.examples[reason]))
        for s, log in tally.bad.items()
        for reason, n in sorted(log.counts.items())
    ]
    if skipped:
        lines += _table(("source", "reason", "rows", "first few"), skipped)
    else:
        lines += ["None.", ""]
    return "\n".join(lines)
