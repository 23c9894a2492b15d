"""Reading and writing Hugging Face safetensors checkpoints, one tensor at a time.

A checkpoint folder holds ``model.safetensors`` or shards listed by
``model.safetensors.index.json``. Tensors are read lazily (memory-mapped, one at a time) and
written in shards of bounded size, so a 7B or 13B checkpoint never needs to sit in memory
whole. Pickled checkpoints (``*.bin``, ``*.pt``) are refused: loading them runs arbitrary code.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import tempfile
from collections.abc import Iterator

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

SINGLE = "model.safetensors"
INDEX = "model.safetensors.index.json"
_PICKLE_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.ckpt")


class CheckpointFormatError(ValueError):
    """The checkpoint folder is not a readable safetensors checkpoint."""


class PickledCheckpointError(CheckpointFormatError):
    """Only pickled weights (``pytorch_model.bin``...) were found."""


def _refuse_pickles(root: pathlib.Path) -> None:
    pickles = sorted(p.name for pat in _PICKLE_PATTERNS for p in root.glob(pat))
    raise PickledCheckpointError(
        f"{root}: found only pickled weights ({', '.join(pickles)}), which we do not load "
        "(unpickling runs arbitrary code). Convert them to safetensors first, e.g. with "
        "transformers: `AutoModel.from_pretrained(src).save_pretrained(dst)` (transformers "
        "writes safetensors), or safetensors' own converter "
        "(https://huggingface.co/spaces/safetensors/convert)."
    )


class TensorSource:
    """Lazy, name-addressed access to the tensors of a safetensors checkpoint folder."""

    def __init__(self, root: str | os.PathLike):
        self.root = pathlib.Path(root)
        if not self.root.is_dir():
            raise CheckpointFormatError(f"{self.root}: not a directory")
        index_path = self.root / INDEX
        if index_path.exists():
            try:
                weight_map = json.loads(index_path.read_text())["weight_map"]
            except (json.JSONDecodeError, KeyError) as e:
                raise CheckpointFormatError(f"{index_path}: not a safetensors index ({e})") from e
            files = sorted(set(weight_map.values()))
            missing = [f for f in files if not (self.root / f).exists()]
            if missing:
                raise CheckpointFormatError(
                    f"{index_path} names shard(s) that do not exist: {', '.join(missing)}"
                )
        elif (self.root / SINGLE).exists():
            files = [SINGLE]
            weight_map = None
        else:
            singles = sorted(p.name for p in self.root.glob("*.safetensors"))
            if len(singles) == 1:
                files, weight_map = singles, None
            elif any(any(self.root.glob(p)) for p in _PICKLE_PATTERNS):
                _refuse_pickles(self.root)
            else:
                raise CheckpointFormatError(
                    f"{self.root}: no {SINGLE}, no {INDEX} and no single *.safetensors file"
                )
        self._handles = {}
        self._where: dict[str, str] = {}
        for name in files:
            try:
                handle = safe_open(str(self.root / name), framework="numpy")
            except Exception as e:  # safetensors raises its own error types for bad headers
                raise CheckpointFormatError(
                    f"{self.root / name}: unreadable safetensors ({e})"
                ) from e
            self._handles[name] = handle
            for key in handle.keys():
                self._where[key] = name
        if weight_map is not None:
            absent = sorted(k for k, f in weight_map.items() if self._where.get(k) != f)
            if absent:
                raise CheckpointFormatError(
                    f"{index_path}: {len(absent)} tensor(s) are not in the shard the index "
                    f"names, e.g. {absent[:5]}"
                )

    def keys(self) -> list[str]:
        return list(self._where)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._handles[self._where[name]].get_slice(name).get_shape())

    def get(self, name: str) -> np.ndarray:
        try:
            return self._handles[self._where[name]].get_tensor(name)
        except Exception as e:
            raise CheckpointFormatError(
                f"{self.root / self._where[name]}: cannot read tensor {name!r} ({e}); is the "
                "file truncated?"
            ) from e

    def items(self) -> Iterator[tuple[str, np.ndarray]]:
        for name in self._where:
            yield name, self.get(name)


def parse_size(size: int | str) -> int:
    """``"5GB"``, ``"500MB"``, ``"2GiB"`` or a byte count -> bytes."""
    if isinstance(size, int):
        return size
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)B?\s*", size, re.IGNORECASE)
    if not m:
        raise ValueError(f"max shard size {size!r} is not like '5GB' or '500MiB'")
    base = 1024 if m.group(3) else 1000
    power = " KMGT".index(m.group(2).upper() or " ")
    return int(float(m.group(1)) * base**power)


class ShardedWriter:
    """Writes tensors into shards of at most ``max_shard_bytes`` (a single tensor larger than
    that gets a shard of its own) and, when there are several, an index as transformers does."""

    def __init__(self, out_dir: str | os.PathLike, max_shard_bytes: int, metadata=None):
        self.out_dir = pathlib.Path(out_dir)
        self.max_shard_bytes = max_shard_bytes
        self.metadata = {"format": "pt", **(metadata or {})}
        self._pending: dict[str, np.ndarray] = {}
        self._pending_bytes = 0
        self._shards: list[list[str]] = []
        self.total_bytes = 0

    def add(self, name: str, array: np.ndarray) -> None:
        if self._pending and self._pending_bytes + array.nbytes > self.max_shard_bytes:
            self._flush()
        self._pending[name] = np.ascontiguousarray(array)
        self._pending_bytes += array.nbytes
        self.total_bytes += array.nbytes

    def _flush(self) -> None:
        index = len(self._shards)
        save_file(
            self._pending, str(self.out_dir / f"shard-{index:05d}.tmp"), metadata=self.metadata
        )
        self._shards.append(list(self._pending))
        self._pending, self._pending_bytes = {}, 0

    def close(self) -> list[str]:
        """Name the shards as transformers does; returns the file names written."""
        if self._pending or not self._shards:
            self._flush()
        n = len(self._shards)
        if n == 1:
            os.replace(self.out_dir / "shard-00000.tmp", self.out_dir / SINGLE)
            return [SINGLE]
        weight_map, names = {}, []
        for i, keys in enumerate(self._shards):
            name = f"model-{i + 1:05d}-of-{n:05d}.safetensors"
            os.replace(self.out_dir / f"shard-{i:05d}.tmp", self.out_dir / name)
            names.append(name)
            weight_map.update({k: name for k in keys})
        index = {"metadata": {"total_size": self.total_bytes}, "weight_map": weight_map}
        (self.out_dir / INDEX).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        return names + [INDEX]


class atomic_output_dir:
    """A temporary folder beside ``dest`` that becomes ``dest`` only if the block succeeds, so a
    crash never leaves a half-written checkpoint at ``dest``."""

    def __init__(self, dest: str | os.PathLike, overwrite: bool = False):
        self.dest = pathlib.Path(dest)
        self.overwrite = overwrite

    def __enter__(self) -> pathlib.Path:
        if self.dest.exists() and not self.overwrite:
            raise FileExistsError(
                f"{self.dest} exists; pass overwrite=True (--overwrite) to replace it"
            )
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = pathlib.Path(
            tempfile.mkdtemp(prefix=f".{self.dest.name}.partial-", dir=self.dest.parent)
        )
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        if self.dest.exists():
            old = self.dest.with_name(f".{self.dest.name}.old-{os.getpid()}")
            os.replace(self.dest, old)
            os.replace(self.tmp, self.dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.tmp, self.dest)
        return False
