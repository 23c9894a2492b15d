"""EmoSet-118K (Yang et al., ICCV 2023): visual emotion, eight classes, images.

Layout read (``PATH`` is the unpacked ``EmoSet-118K`` folder)::

    train.json  val.json  test.json     each a JSON list, one entry per image
    image/<emotion>/<name>.jpg          (annotation/<emotion>/<name>.json: attributes, unused)

An entry is ``[emotion, image_id, image_path, annotation_path]`` as the issue describes it;
third-party loaders disagree on the form (one unpacks four items, another three:
``[emotion, image_path, annotation_path]``), so both are accepted: the emotion is the first
item and the image path the first item ending in an image suffix. Confirmed against loaders
found by the search tool (``EmoSetDataset`` classes indexing ``data_root/{phase}.json``); the
official README (project page vcc.tech/EmoSet) could not be read here, so the entry form is
unconfirmed at the source.

Splits: train.json -> train, val.json -> validation, test.json -> test. The eight emotions
(amusement, awe, contentment, excitement, anger, disgust, fear, sadness) are kept as the
record's ``options``: three of them have no equivalent among EmoBench's seven.
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
    json_list_items,
    require_any,
)
from emollm_jax.data.sources.source import EMOTION, Source

EMOSET_EMOTIONS = (
    "amusement", "awe", "contentment", "excitement", "anger", "disgust", "fear", "sadness",
)  # fmt: skip
SPLIT_FILES = {TRAIN: "train.json", VALIDATION: "val.json", TEST: "test.json"}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def _entry(item, where: str) -> tuple[str, str, str]:
    """(emotion, image id, image path) of one list entry."""
    if not isinstance(item, list) or len(item) < 2 or not all(isinstance(x, str) for x in item):
        raise BadRecord("malformed_record", f"{where}: expected a list of strings")
    paths = [x for x in item[1:] if x.lower().endswith(IMAGE_SUFFIXES)]
    if not paths:
        raise BadRecord("malformed_record", f"{where}: no image path in {item!r}")
    image_id = item[1] if len(item) >= 4 else Path(paths[0]).stem
    return item[0], image_id, paths[0]


def read(root: Path) -> Iterator[SourceRow | BadRow]:
    files = {s: root / n for s, n in SPLIT_FILES.items() if (root / n).exists()}
    require_any(root, list(files.values()), "EmoSet train.json/val.json/test.json")
    for split, path in files.items():
        for entry in json_list_items(path):
            if isinstance(entry, BadRow):
                yield entry
                continue
            where, item = entry
            try:
                emotion, image_id, image_path = _entry(item, where)
            except BadRecord as e:
                yield BadRow(where, e)
                continue
            yield SourceRow(split, image_id, where, EMOTION, emotion, "image", image_path)


SOURCE = Source(
    name="emoset",
    read=read,
    labels={EMOTION: {e: e for e in EMOSET_EMOTIONS}},
    options={EMOTION: EMOSET_EMOTIONS},
)
