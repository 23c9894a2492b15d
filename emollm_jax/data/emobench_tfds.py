"""EmoBench as a tensorflow-datasets data set: ArrayRecord shards, no TensorFlow needed.

    emollm data tfds SRC_DIR TFDS_DIR [--strict]

turns an EmoBench-format folder (``records.py``) into ``TFDS_DIR/emo_bench/1.0.0/`` with one split
per record file found (``train``, ``validation``, ``test``). Records are read and checked exactly as
the JSONL source reads them (bad ones skipped, counted and logged, or ``--strict``); examples keep
the file order (``disable_shuffling``) so that both sources give the same example at the same
index. Media are stored as the file's encoded bytes and decoded by the Grain pipeline (Pillow,
PyAV), which keeps TensorFlow out.

Features (version 1.0.0)::

    id            Text                 record id
    task          Text                 one of emollm_jax.tasks.TASKS, "" when unscored (LLaVA)
    media_types   Tensor[(None,), str] "image" | "video" per media item, in placeholder order
    media         Tensor[(None,), obj] the encoded bytes (PNG/JPEG, mp4, ...) per media item
    conversations Sequence({from: Text, value: Text})   placeholders already in place
    answer        Text
    options       Sequence(Text)       [] when the task's default labels apply
    rationale     Text                 "" when absent
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import tensorflow_datasets as tfds

from emollm_jax.cli_errors import report_user_errors
from emollm_jax.data import records as records_lib
from emollm_jax.destinations import check_destination

NAME = "emo_bench"
DATA_VERSION = "1.0.0"


class EmoBench(tfds.core.GeneratorBasedBuilder):
    """EmoBench records and media from a local EmoBench-format folder (``manual_dir``)."""

    VERSION = tfds.core.Version(DATA_VERSION)
    RELEASE_NOTES: ClassVar[dict[str, str]] = {
        DATA_VERSION: "Records, media bytes, options, rationales."
    }
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Pass the EmoBench-format folder (e.g. made by emollm_jax.data.mini.make_mini_emobench) as "
        "download_config.manual_dir."
    )

    def __init__(self, *, max_pixels: int = 16_000_000, strict: bool = False, **kwargs):
        self._max_pixels = max_pixels
        self._strict = strict
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        obj = np.object_
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "id": tfds.features.Text(),
                    "task": tfds.features.Text(),
                    "media_types": tfds.features.Tensor(shape=(None,), dtype=obj),
                    "media": tfds.features.Tensor(shape=(None,), dtype=obj),
                    "conversations": tfds.features.Sequence(
                        {"from": tfds.features.Text(), "value": tfds.features.Text()}
                    ),
                    "answer": tfds.features.Text(),
                    "options": tfds.features.Sequence(tfds.features.Text()),
                    "rationale": tfds.features.Text(),
                }
            ),
            disable_shuffling=True,
            homepage="https://arxiv.org/abs/2406.16442",
        )

    def _split_generators(self, dl_manager):
        src = Path(dl_manager.manual_dir)
        splits = {}
        for split in records_lib.SPLITS:
            try:
                records_lib.split_file(src, split)
            except FileNotFoundError:
                continue
            splits[split] = self._generate_examples(src, split)
        if not splits:
            raise FileNotFoundError(f"no split files in {src}")
        return splits

    def _generate_examples(self, src: Path, split: str):
        records, _ = records_lib.read_split(
            src, split, max_pixels=self._max_pixels, strict=self._strict
        )
        for r in records:
            yield r["id"], to_example(r)


def to_example(record: dict) -> dict:
    """A normalised record (media with paths) -> a TFDS example."""
    blobs = [m["bytes"] if "bytes" in m else Path(m["path"]).read_bytes() for m in record["media"]]
    return {
        "id": record["id"],
        "task": record["task"] or "",
        "media_types": _object_array([m["type"] for m in record["media"]]),
        "media": _object_array(blobs),
        "conversations": record["conversations"],
        "answer": record["answer"] or "",
        "options": record["options"] or [],
        "rationale": record["rationale"] or "",
    }


def _object_array(items: list) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _text(x) -> str:
    return x.decode("utf-8") if isinstance(x, bytes) else str(x)


def from_example(ex: dict) -> dict:
    """A decoded TFDS example -> the normalised record (media items carry ``bytes``)."""
    conv = ex["conversations"]
    return {
        "id": _text(ex["id"]),
        "task": _text(ex["task"]) or None,
        "media": [
            {"type": _text(t), "bytes": bytes(b)}
            for t, b in zip(ex["media_types"], ex["media"], strict=True)
        ],
        "conversations": [
            {"from": _text(f), "value": _text(v)}
            for f, v in zip(conv["from"], conv["value"], strict=True)
        ],
        "answer": _text(ex["answer"]) or None,
        "options": [_text(o) for o in ex["options"]] or None,
        "rationale": _text(ex["rationale"]) or None,
    }


class TfdsSource:
    """A Grain random-access source over one split of a built EmoBench TFDS folder.

    Opens the ArrayRecord files lazily, so that pickling it into Grain worker processes carries
    only the path.
    """

    def __init__(self, tfds_dir: str | os.PathLike, split: str):
        self.path = str(Path(tfds_dir) / NAME / DATA_VERSION)
        self.split = split
        self._source = None
        self._len = len(self._open())

    def _open(self):
        if self._source is None:
            builder = tfds.builder_from_directory(self.path)
            self._source = builder.as_data_source(split=self.split)
        return self._source

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> dict:
        return from_example(self._open()[index])

    def __getstate__(self):
        return {"path": self.path, "split": self.split, "_len": self._len, "_source": None}

    def __repr__(self) -> str:
        return f"TfdsSource({self.path!r}, {self.split!r})"


def build(
    src_dir: str | os.PathLike,
    tfds_dir: str | os.PathLike,
    *,
    max_pixels: int = 16_000_000,
    strict: bool = False,
) -> EmoBench:
    """Build (or reuse, when already complete) the ArrayRecord data set under ``tfds_dir``
    (which may lie in ``src_dir``, the default ``<src>/tfds``, but not be or contain it)."""
    check_destination(tfds_dir, src_dir, what="tfds_dir", allow_inside=True)
    builder = EmoBench(
        data_dir=str(tfds_dir), file_format="array_record", max_pixels=max_pixels, strict=strict
    )
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(src_dir))
    )
    return builder


@report_user_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src_dir")
    parser.add_argument("tfds_dir")
    parser.add_argument("--strict", action="store_true")
    parser.add_argument("--max-pixels", type=int, default=16_000_000)
    args = parser.parse_args(argv)
    builder = build(args.src_dir, args.tfds_dir, max_pixels=args.max_pixels, strict=args.strict)
    for name, split in builder.info.splits.items():
        print(f"{name}: {split.num_examples} examples")
    print(f"written to {builder.data_dir}")


if __name__ == "__main__":
    main()
