"""Checking a teacher's rationale against the ground truth, and the rationale files we write.

A teacher's output is kept only when its last non-empty line is ``Answer: <label>`` with the
record's ground-truth label (case-insensitive; surrounding quotes, brackets and a final full
stop ignored) and some text comes before that line: the text before it is the rationale.
Everything else is dropped with a reason, so that the counts say what went wrong.

A rationale file is JSON Lines, one ``{"id", "task", "answer", "rationale"}`` per kept record
(``emollm annotate`` writes it; ``config.emoprompt.rationales_file``
reads it).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

DROP_REASONS = ("no_answer_line", "wrong_label", "empty_rationale")

_ANSWER_LINE = re.compile(r"^\s*answer\s*:\s*(.*?)\s*$", re.IGNORECASE)
_STRIP = " \t\"'`<>[]().!"


def _norm(label: str) -> str:
    return " ".join(label.strip(_STRIP).lower().split())


def check(text: str, label: str) -> tuple[str | None, str | None]:
    """``(rationale, None)`` when ``text`` ends in the gold label, else ``(None, reason)``."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    match = _ANSWER_LINE.match(lines[-1]) if lines else None
    if match is None:
        return None, "no_answer_line"
    if _norm(match.group(1)) != _norm(label):
        return None, "wrong_label"
    rationale = "\n".join(line.strip() for line in lines[:-1]).strip()
    if not rationale:
        return None, "empty_rationale"
    return rationale, None


def read(path: str | Path) -> dict[str, str]:
    """``{record id: rationale}`` from a rationale file (ids as strings)."""
    out = {}
    with open(path, encoding="utf-8-sig") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                out[str(row["id"])] = row["rationale"]
    return out
