"""Hateful Memes (Kiela et al., NeurIPS 2020): is a meme (image and its text) hateful, images.

Layout read (``PATH`` is the unpacked challenge folder)::

    img/<id>.png
    train.jsonl  dev_seen.jsonl (or dev.jsonl)  test_seen.jsonl (or test.jsonl)
        one JSON object per line: {"id": 42953, "img": "img/42953.png", "label": 0,
        "text": "..."}

The file names and line fields are as the challenge README ("img/ - the PNG images,
train.jsonl - the training set, dev.jsonl ...", found by the search tool) and
sahajps/Labels-or-Input Data/README.md (dev_seen, dev_unseen, test_seen, test_unseen) state.
The ``img`` path is taken from the line and must stay inside ``PATH``. A line without a label
(the phase-1 test.jsonl has none) is skipped as ``unknown_label``. The *_unseen files are not
read (they overlap the seen ones).

Splits: train -> train, dev_seen -> validation, test_seen -> test. label 1 -> yes, 0 -> no.
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
    jsonl_lines,
    require_any,
)
from emollm_jax.data.sources.source import Source

SPLIT_FILES = {
    TRAIN: ("train.jsonl",),
    VALIDATION: ("dev_seen.jsonl", "dev.jsonl"),
    TEST: ("test_seen.jsonl", "test.jsonl"),
}


def read(root: Path) -> Iterator[SourceRow | BadRow]:
    files = {s: first_existing(root, names) for s, names in SPLIT_FILES.items()}
    require_any(root, list(files.values()), "Hateful Memes train.jsonl/dev_seen.jsonl")
    for split, path in files.items():
        if path is None:
            continue
        for item in jsonl_lines(path):
            if isinstance(item, BadRow):
                yield item
                continue
            where, obj = item
            try:
                rid, img = str(field(obj, "id", where)), field(obj, "img", where)
                text = obj.get("text")
                if not isinstance(img, str) or not isinstance(text, (str, type(None))):
                    raise BadRecord("malformed_record", f"{where}: img and text must be strings")
            except BadRecord as e:
                yield BadRow(where, e)
                continue
            label = "" if obj.get("label") is None else str(obj["label"])
            yield SourceRow(split, rid, where, "hate", label, "image", img, text=text)


SOURCE = Source(name="hateful_memes", read=read, labels={"hate": {"1": "yes", "0": "no"}})
