"""A source data set as the builder sees it: its reader, its label table, its own label sets.

Each source module defines one ``Source``. ``labels`` is the declarative table from the
source's labels (matched case- and space-insensitively) to our answers, per task family
(``emotion`` becomes the ``emotion_closed`` and ``emotion_open`` sub-tasks; ``intent``,
``hate``, ``humor`` and ``sarcasm`` are the tasks of ``emollm_jax.tasks``). A label missing
from the table is a bad row (``unknown_label``). ``options`` is the label set a record is
scored against where it differs from the task's default (EmoSet's eight emotions, MIntRec's
twenty intents); records then carry it as ``options``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from emollm_jax.data.bad_input import BadRecord
from emollm_jax.data.sources.rows import BadRow, SourceRow
from emollm_jax.tasks import TASK_LABELS

EMOTION = "emotion"  # the family of the two emotion sub-tasks
FAMILIES = (EMOTION, "intent", "hate", "humor", "sarcasm")


def _key(label: str) -> str:
    return " ".join(str(label).lower().split())


@dataclasses.dataclass(frozen=True)
class Source:
    name: str
    read: Callable[[Path], Iterator[SourceRow | BadRow]]
    labels: Mapping[str, Mapping[str, str]]  # family -> source label -> our answer
    options: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        for family, table in self.labels.items():
            assert family in FAMILIES, (self.name, family)
            allowed = set(self.label_set(family))
            bad = {a for a in table.values() if a not in allowed}
            assert not bad, f"{self.name}: answers {bad} not in the {family} label set"

    def label_set(self, family: str) -> tuple[str, ...]:
        """The labels a record of ``family`` is scored against."""
        if family in self.options:
            return self.options[family]
        return TASK_LABELS["emotion_closed" if family == EMOTION else family]

    def answer(self, family: str, label: str) -> str:
        """Our answer for the source's ``label``; ``BadRecord("unknown_label")`` if unknown."""
        table = {_key(k): v for k, v in self.labels.get(family, {}).items()}
        try:
            return table[_key(label)]
        except KeyError:
            raise BadRecord(
                "unknown_label", f"{self.name} {family} label {label!r} not in its table"
            ) from None
