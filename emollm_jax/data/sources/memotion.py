"""Memotion 7k (Sharma et al., SemEval-2020 Task 8): humour and sarcasm of memes, images.

Layout read (``PATH`` is the unpacked ``memotion_dataset_7k`` folder)::

    labels.csv     columns (after an unnamed index column) image_name, text_ocr,
                   text_corrected, humour, sarcasm, offensive, motivational, overall_sentiment
    images/<image_name>

The columns are the ones loaders found by the search tool read from labels.csv (e.g. a
``load_memotion`` mapping humour not_funny / funny / very_funny / hilarious); the image folder
name ``images/`` is from those loaders too (the data set's own page could not be read here:
unconfirmed). Graded labels to yes/no, our table: humour not_funny -> no, funny, very_funny,
hilarious -> yes; sarcasm not_sarcastic -> no, general, twisted_meaning, very_twisted -> yes.
Each meme gives one humor record and one sarcasm record; text is text_corrected, else
text_ocr.

Splits: the 7k release has one file and no split of its own, so every row goes to train (the
task's separate test release is not read here).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from emollm_jax.data.sources.rows import TRAIN, BadRow, SourceRow, require_any, table_rows
from emollm_jax.data.sources.source import Source

COLUMNS = ("image_name", "humour", "sarcasm")


def read(root: Path) -> Iterator[SourceRow | BadRow]:
    path = root / "labels.csv"
    require_any(root, [path if path.exists() else None], "Memotion labels.csv")
    for item in table_rows(path, COLUMNS):
        if isinstance(item, BadRow):
            yield item
            continue
        where, row = item
        text = row.get("text_corrected") or row.get("text_ocr") or None
        image = f"images/{row['image_name']}"
        rid = Path(row["image_name"]).stem
        for task, column in (("humor", "humour"), ("sarcasm", "sarcasm")):
            yield SourceRow(TRAIN, rid, where, task, row[column], "image", image, text=text)


SOURCE = Source(
    name="memotion",
    read=read,
    labels={
        "humor": {"not_funny": "no", "funny": "yes", "very_funny": "yes", "hilarious": "yes"},
        "sarcasm": {
            "not_sarcastic": "no", "general": "yes", "twisted_meaning": "yes",
            "very_twisted": "yes",
        },
    },
)  # fmt: skip
