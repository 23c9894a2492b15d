"""MIntRec (Zhang et al., ACM MM 2022): the intent of an utterance in a Superstore clip, video.

Layout read (``PATH`` is the unpacked MIntRec folder)::

    train.tsv  dev.tsv  test.tsv     tab-separated, a header line, then per row
                                     season, episode, clip, text, label
    raw_data/S{season}/E{episode}/{clip}.mp4

The TSV columns (by position: 0-2 the clip index, 3 the text, 4 the label) and the twenty
labels are as thuiar/MIntRec reads them (data/base.py, data/text_pre.py, data/__init__.py;
the code spells "Apologise", the README "Apologize": both are accepted). README.md says
raw_data holds the .mp4 segments in folders where "S" means season id and "E" episode id;
the file name ``{clip}.mp4`` and whether the TSV's season/episode cells already carry the
letter are not stated there (unconfirmed): a cell that starts with the letter is used as is.

Splits: train -> train, dev -> validation, test -> test. Records carry the twenty intents
(lower case) as ``options``, since EmoBench's default intent labels are other ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from emollm_jax.data.sources.rows import (
    TEST,
    TRAIN,
    VALIDATION,
    BadRow,
    SourceRow,
    positional_rows,
    require_any,
)
from emollm_jax.data.sources.source import Source

INTENTS = (
    "complain", "praise", "apologise", "thank", "criticize", "agree", "taunt", "flaunt",
    "joke", "oppose", "comfort", "care", "inform", "advise", "arrange", "introduce", "leave",
    "prevent", "greet", "ask for help",
)  # fmt: skip
SPLIT_FILES = {TRAIN: "train.tsv", VALIDATION: "dev.tsv", TEST: "test.tsv"}


def _prefixed(letter: str, value: str) -> str:
    return value if value.upper().startswith(letter) else f"{letter}{value}"


def read(root: Path) -> Iterator[SourceRow | BadRow]:
    files = {s: root / n for s, n in SPLIT_FILES.items() if (root / n).exists()}
    require_any(root, list(files.values()), "MIntRec train.tsv/dev.tsv/test.tsv")
    for split, path in files.items():
        for item in positional_rows(path, 5):
            if isinstance(item, BadRow):
                yield item
                continue
            where, (season, episode, clip, text, label) = item
            season, episode = _prefixed("S", season), _prefixed("E", episode)
            yield SourceRow(
                split, f"{season}_{episode}_{clip}", where, "intent", label, "video",
                f"raw_data/{season}/{episode}/{clip}.mp4", text=text,
            )  # fmt: skip


SOURCE = Source(
    name="mintrec",
    read=read,
    labels={"intent": {**{i: i for i in INTENTS}, "apologize": "apologise"}},
    options={"intent": INTENTS},
)
