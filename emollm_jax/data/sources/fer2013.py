"""FER2013 (Goodfellow et al., 2013) and its FER+ relabelling (Barsoum et al., 2016): faces.

Layout read (``PATH`` holds the Kaggle challenge's CSV, and FER+'s file when present)::

    fer2013.csv      columns emotion (0-6), pixels (2304 space-separated ints: 48x48 grey,
                     row-major), Usage (Training | PublicTest | PrivateTest)
    fer2013new.csv   optional, FER+: the same rows in the same order; columns Usage, Image name,
                     then vote counts neutral, happiness, surprise, sadness, anger, disgust,
                     fear, contempt, unknown, NF

The codes 0-6 mean angry, disgust, fear, happy, sad, surprise, neutral (as the data README of
abhirup-ghosh/facial-expression-classifier-app and other copies of the Kaggle page state; the
Kaggle page itself could not be read here). FER+'s columns are as microsoft/FERPlus README.md
lists them and its fer2013new.csv header reads (rows FER+ dropped have no image name and
all votes on NF, so they skip as ``unknown_label``). With fer2013new.csv present its majority vote is the label (ours: a tie, or a win
of contempt, unknown or NF, has no EmoBench emotion and is skipped as ``unknown_label``).

Splits: Training -> train, PublicTest -> validation, PrivateTest -> test. Each face is written
as a 48x48 greyscale PNG (the pipeline converts it to RGB).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from emollm_jax.data.bad_input import BadRecord
from emollm_jax.data.sources.rows import (
    TEST,
    TRAIN,
    VALIDATION,
    BadRow,
    SourceRow,
    require_any,
    table_rows,
)
from emollm_jax.data.sources.source import EMOTION, Source

FER_CODES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FERPLUS_VOTES = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
    "unknown", "NF",
)  # fmt: skip
USAGE = {"Training": TRAIN, "PublicTest": VALIDATION, "PrivateTest": TEST}
SIDE = 48


def face_png(pixels: str) -> bytes:
    values = pixels.split()
    if len(values) != SIDE * SIDE:
        raise BadRecord("malformed_record", f"pixels: {len(values)} values, not {SIDE * SIDE}")
    try:
        grey = np.asarray([int(v) for v in values]).reshape(SIDE, SIDE)
    except ValueError as e:
        raise BadRecord("malformed_record", f"pixels: {e}") from e
    if grey.min() < 0 or grey.max() > 255:
        raise BadRecord("malformed_record", "pixels outside 0-255")
    buf = io.BytesIO()
    Image.fromarray(grey.astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def fer_label(code: str) -> str:
    """The FER name of a code, or the code itself (then unknown to the table)."""
    return FER_CODES[int(code)] if code.isdigit() and int(code) < len(FER_CODES) else code


def ferplus_label(row: dict[str, str]) -> str:
    """The majority vote of a FER+ row; ``tie:a/b`` when two or more share the top."""
    votes = {}
    for name in FERPLUS_VOTES:
        try:
            votes[name] = float(row.get(name) or 0)
        except ValueError:
            raise BadRecord("malformed_record", f"FER+ vote {name}={row[name]!r}") from None
    top = max(votes.values())
    winners = [n for n, v in votes.items() if v == top]
    return winners[0] if len(winners) == 1 else "tie:" + "/".join(winners)


def _ferplus_rows(path: Path | None):
    if path is None:
        return None
    f = open(path, encoding="utf-8", errors="replace", newline="")  # closed by read()
    return f, csv.DictReader(f)


def read(root: Path) -> Iterator[SourceRow | BadRow]:
    path = root / "fer2013.csv"
    require_any(root, [path if path.exists() else None], "fer2013.csv")
    plus_path = root / "fer2013new.csv"
    plus = _ferplus_rows(plus_path if plus_path.exists() else None)
    try:
        for index, item in enumerate(table_rows(path, ("emotion", "pixels", "Usage"))):
            plus_row = next(plus[1], None) if plus else None
            if isinstance(item, BadRow):
                yield item
                continue
            where, row = item
            try:
                split = USAGE.get(row["Usage"])
                if split is None:
                    raise BadRecord("malformed_record", f"Usage {row['Usage']!r} not in {USAGE}")
                if plus is not None:
                    if plus_row is None:
                        raise BadRecord("malformed_record", "fer2013new.csv has fewer rows")
                    label = ferplus_label(plus_row)
                else:
                    label = fer_label(row["emotion"])
                png = face_png(row["pixels"])
            except BadRecord as e:
                yield BadRow(where, e)
                continue
            yield SourceRow(
                split, f"{index:05d}", where, EMOTION, label, "image",
                media_bytes=png, media_suffix=".png",
            )  # fmt: skip
    finally:
        if plus:
            plus[0].close()


SOURCE = Source(
    name="fer2013",
    read=read,
    labels={
        EMOTION: {
            # FER2013's names
            "angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "joy",
            "sad": "sadness", "surprise": "surprise", "neutral": "neutral",
            # FER+'s names (contempt, unknown and NF have no EmoBench emotion)
            "anger": "anger", "happiness": "joy", "sadness": "sadness",
        }
    },
)  # fmt: skip
