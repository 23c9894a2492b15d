"""MMSD2.0 (Qin et al., ACL 2023): is a tweet (image and text) sarcastic, images.

Layout read (``PATH`` is the repository's ``data/`` folder with the images unpacked into it)::

    text_json_final/train.json  valid.json  test.json   each a JSON list of
                                                        {"image_id", "text", "label"}
    dataset_image/{image_id}.jpg

as JoeYing1019/MMSD2.0 README.md (text_json_final, dataset_image) and src/data_set.py (the
keys image_id, text, label; images ``dataset_image/<image_id>.jpg``) read them. The split
files directly under ``PATH`` are accepted too. label 1 -> yes, 0 -> no.

Splits: train -> train, valid -> validation, test -> test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from emollm_jax.data.bad_input import BadRecord
from emollm_jax.data.sources.rows import (
    TEST,
    TRAIN,
    VALIDATION,
    BadRow,
    SourceRow,
    field,
    first_existing,
    json_list_items,
    require_any,
)
from emollm_jax.data.sources.source import Source

SPLIT_FILES = {TRAIN: "train.json", VALIDATION: "valid.json", TEST: "test.json"}


def read(root: Path) -> Iterator[SourceRow | BadRow]:
    files = {
        s: first_existing(root, (f"text_json_final/{n}", n)) for s, n in SPLIT_FILES.items()
    }
    require_any(root, list(files.values()), "MMSD2.0 text_json_final/{train,valid,test}.json")
    for split, path in files.items():
        if path is None:
            continue
        for item in json_list_items(path):
            if isinstance(item, BadRow):
                yield item
                continue
            where, obj = item
            try:
                image_id = str(field(obj, "image_id", where))
                text, label = field(obj, "text", where), field(obj, "label", where)
            except BadRecord as e:
                yield BadRow(where, e)
                continue
            yield SourceRow(
                split, image_id, where, "sarcasm", str(label), "image",
                f"dataset_image/{image_id}.jpg", text=str(text),
            )  # fmt: skip


SOURCE = Source(name="mmsd2", read=read, labels={"sarcasm": {"1": "yes", "0": "no"}})
