"""Reading and writing Hugging Face safetensors checkpoints, one tensor at a time.

A checkpoint folder holds ``model.safetensors`` or shards listed by
``model.safetensors.index.json``. Tensors are read lazily (one at a time, with plain file reads)
and written a tensor at a time into shards of bounded size (``ShardWriter``), so a 7B or 13B
checkpoint never needs to sit in memory whole. Pickled checkpoints (``*.bin``, ``*.pt``) are
refused: loading them runs arbitrary code.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator

import ml_dtypes
import numpy as np

from emollm_jax.convert import file_maps
from emollm_jax.paths import COMMIT_MARK, as_path, is_url, rmtree

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


# Safetensors dtype codes (the format's header spelling) and their numpy dtypes.
_DTYPES = {
    "F64": np.dtype(np.float64),
    "F32": np.dtype(np.float32),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
    "I64": np.dtype(np.int64),
    "U64": np.dtype(np.uint64),
    "I32": np.dtype(np.int32),
    "U32": np.dtype(np.uint32),
    "I16": np.dtype(np.int16),
    "U16": np.dtype(np.uint16),
    "I8": np.dtype(np.int8),
    "U8": np.dtype(np.uint8),
    "BOOL": np.dtype(np.bool_),
}
_CODES = {dtype: code for code, dtype in _DTYPES.items()}


@dataclasses.dataclass(frozen=True)
class _Entry:
    """Where one tensor's bytes are: ``nbytes`` from byte ``start`` of ``file``."""

    file: str
    dtype: np.dtype
    shape: tuple[int, ...]
    start: int
    nbytes: int


def read_header(path: pathlib.Path) -> dict[str, _Entry]:
    """The tensors a safetensors file declares, checked against the file's size (so a
    truncated file is reported when opened, not halfway through a conversion)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        length = int.from_bytes(head, "little") if len(head) == 8 else None
        if length is None or length > size - 8:
            raise CheckpointFormatError(
                f"{path}: unreadable safetensors header ({size} bytes; is the file truncated?)"
            )
        try:
            header = json.loads(f.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CheckpointFormatError(f"{path}: unreadable safetensors header ({e})") from e
    entries = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = _DTYPES[info["dtype"]]
            shape = tuple(int(d) for d in info["shape"])
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointFormatError(f"{path}: bad header entry for {name!r} ({e!r})") from e
        if end - begin != math.prod(shape) * dtype.itemsize or begin < 0:
            raise CheckpointFormatError(
                f"{path}: tensor {name!r} {shape} {dtype} does not fit its byte range "
                f"[{begin}, {end})"
            )
        if 8 + length + end > size:
            raise CheckpointFormatError(
                f"{path}: tensor {name!r} ends at byte {8 + length + end} but the file has "
                f"{size} bytes: the file is truncated"
            )
        entries[name] = _Entry(path.name, dtype, shape, 8 + length + begin, end - begin)
    return entries


class TensorSource:
    """Lazy, name-addressed access to the tensors of a safetensors checkpoint folder.

    ``get`` reads a tensor with plain file reads into a fresh array (our choice, not one memory
    map of the whole file as ``safetensors.safe_open`` does: pages of a mapped file stay in the
    process's resident set once touched, so reading a whole checkpoint through one map shows a
    resident size as large as the checkpoint). ``mapped`` maps one tensor's bytes for as long
    as its array lives, for converters that read each tensor once.
    """

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
        self._entries: dict[str, _Entry] = {}
        for name in files:
            self._entries.update(read_header(self.root / name))
        if weight_map is not None:
            absent = sorted(
                k
                for k, f in weight_map.items()
                if k not in self._entries or self._entries[k].file != f
            )
            if absent:
                raise CheckpointFormatError(
                    f"{index_path}: {len(absent)} tensor(s) are not in the shard the index "
                    f"names, e.g. {absent[:5]}"
                )

    def keys(self) -> list[str]:
        return list(self._entries)

    def shape(self, name: str) -> tuple[int, ...]:
        return self._entries[name].shape

    def dtype(self, name: str) -> np.dtype:
        return self._entries[name].dtype

    def get(self, name: str) -> np.ndarray:
        entry = self._entries[name]
        out = np.empty(entry.shape, entry.dtype)
        view = memoryview(out.reshape(-1).view(np.uint8))
        path = self.root / entry.file
        with open(path, "rb", buffering=0) as f:
            f.seek(entry.start)
            done = 0
            while done < entry.nbytes:
                n = f.readinto(view[done:])
                if not n:
                    raise CheckpointFormatError(
                        f"{path}: cannot read tensor {name!r} (got {done} of {entry.nbytes} "
                        "bytes); is the file truncated?"
                    )
                done += n
        return out

    def mapped(self, name: str) -> np.ndarray:
        """Tensor ``name`` as a read-only array over a map of its bytes (``file_maps.mapped``:
        nothing copied, nothing kept resident once the array is dropped); for a converter that
        reads each tensor once, on its way to another layout."""
        entry = self._entries[name]
        return file_maps.mapped(self.root / entry.file, entry.start, entry.shape, entry.dtype)

    def items(self) -> Iterator[tuple[str, np.ndarray]]:
        for name in self._entries:
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


def shard_file_names(n: int, single: str = SINGLE) -> list[str]:
    """transformers' names for ``n`` shards."""
    if n == 1:
        return [single]
    return [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]


@dataclasses.dataclass(frozen=True)
class _Slot:
    """Where ``ShardWriter`` puts one planned tensor: shard ``shard`` at byte ``offset``."""

    shard: int
    offset: int
    shape: tuple[int, ...]
    dtype: np.dtype


class ShardWriter:
    """Writes a list of tensors known in advance straight to their places in the shard files.

    Knowing every name, shape and dtype up front (a converter does), the shards and their
    headers are planned before any data arrives (greedily in order, at most
    ``max_shard_bytes`` each; a tensor larger than that gets a shard of its own), and every
    shard file is created at its full size with its header. ``write`` then puts each tensor's
    bytes at their offset (positional writes), in any order and from several threads at once:
    nothing but the tensors in hand is held. ``single`` names the file when there is one shard
    (``model.safetensors``; a PEFT adapter's is ``adapter_model.safetensors``); with several,
    an index names them as transformers does. The files follow the safetensors format (an
    8-byte little-endian header length, a JSON header padded with spaces to a multiple of 8
    bytes, then the tensors' bytes back to back); writing them ourselves is our choice, because
    the safetensors library only writes from a dict of arrays all in memory at once.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        plan: list[tuple[str, tuple[int, ...], np.dtype]],
        max_shard_bytes: int,
        metadata: dict[str, str] | None = None,
        single: str = SINGLE,
    ):
        self.out_dir = pathlib.Path(out_dir)
        self.metadata = {"format": "pt", **(metadata or {})}
        if not plan:
            raise ValueError("nothing to write: the plan is empty")
        shards: list[list[tuple[str, tuple[int, ...], np.dtype]]] = [[]]
        size = 0
        for name, shape, dtype in plan:
            nbytes = math.prod(shape) * np.dtype(dtype).itemsize
            if shards[-1] and size + nbytes > max_shard_bytes:
                shards.append([])
                size = 0
            shards[-1].append((name, tuple(shape), np.dtype(dtype)))
            size += nbytes
        self._files = shard_file_names(len(shards), single)
        self._shards = shards
        self._slots: dict[str, _Slot] = {}
        self._fds: list[int] = []
        self._mappable: list[bool] = []
        for i, shard in enumerate(shards):
            header = self._header(shard)
            offset = len(header)
            for name, shape, dtype in shard:
                self._slots[name] = _Slot(i, offset, shape, dtype)
                offset += math.prod(shape) * dtype.itemsize
            fd = os.open(self.out_dir / self._files[i], os.O_RDWR | os.O_CREAT | os.O_TRUNC)
            self._fds.append(fd)
            self._mappable.append(file_maps.preallocate(fd, offset))
            file_maps.write_all(fd, memoryview(header), 0)
        self._written: set[str] = set()
        self._lock = threading.Lock()
        self.total_bytes = sum(math.prod(s) * d.itemsize for _, s, d in plan)

    def _header(self, shard: list) -> bytes:
        header: dict = {"__metadata__": self.metadata}
        offset = 0
        for name, shape, dtype in shard:
            end = offset + math.prod(shape) * dtype.itemsize
            header[name] = {
                "dtype": _CODES[dtype],
                "shape": list(shape),
                "data_offsets": [offset, end],
            }
            offset = end
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)
        return len(text).to_bytes(8, "little") + text

    def write(self, name: str, array: np.ndarray) -> None:
        """Put planned tensor ``name``'s bytes in place (thread-safe; each name once)."""
        self.make(name, lambda alloc: array)

    def make(self, name: str, make: file_maps.Make) -> None:
        """Put planned tensor ``name`` in place as ``make(alloc)`` makes it: where ``make``
        moves data into an array from ``alloc``, it is made straight in the file
        (``file_maps``). Thread-safe; each name once."""
        slot = self._slots.get(name)
        if slot is None:
            raise ValueError(f"tensor {name!r} is not in the plan")
        with self._lock:
            if name in self._written:
                raise ValueError(f"tensor {name!r} written twice")
            self._written.add(name)
        try:
            file_maps.fill(
                self._fds[slot.shard],
                slot.offset,
                slot.shape,
                slot.dtype,
                make,
                self._mappable[slot.shard],
            )
        except ValueError as e:
            raise ValueError(f"tensor {name}: {e}") from e

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        """``close`` after success; after an error only the files are closed."""
        if exc_type is None:
            self.close()
        else:
            self._close_files()

    def _close_files(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []

    def close(self) -> list[str]:
        """Checks that every planned tensor was written; writes the index when sharded."""
        self._close_files()
        missing = [name for name in self._slots if name not in self._written]
        if missing:
            raise ValueError(f"{len(missing)} planned tensor(s) not written, e.g. {missing[:3]}")
        if len(self._files) == 1:
            return list(self._files)
        weight_map = {
            name: self._files[i] for i, shard in enumerate(self._shards) for name, _, _ in shard
        }
        index = {"metadata": {"total_size": self.total_bytes}, "weight_map": weight_map}
        (self.out_dir / INDEX).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        return self._files + [INDEX]


class atomic_output_dir:
    """A temporary folder beside ``dest`` that becomes ``dest`` only if the block succeeds, so a
    crash never leaves a half-written checkpoint at ``dest``.

    A cloud storage ``dest`` (``gs://...``, no folder rename there) is staged in a local
    temporary folder and uploaded once the block succeeds, the files that mark the folder
    complete last: ``config.json`` (what makes a Hugging Face folder one) and, per Orbax step,
    a ``commit_success.txt`` (what makes Orbax list the step on cloud storage). An interrupted
    upload thus leaves a folder that reads as unfinished; ``--overwrite`` deletes the old one
    first (not atomic there)."""

    def __init__(self, dest: str | os.PathLike, overwrite: bool = False):
        self.dest = as_path(dest)
        self.overwrite = overwrite

    def __enter__(self) -> pathlib.Path:
        if self.dest.exists() and not self.overwrite:
            raise FileExistsError(
                f"{self.dest} exists; pass overwrite=True (--overwrite) to replace it"
            )
        if is_url(self.dest):
            self.tmp = pathlib.Path(tempfile.mkdtemp(prefix=f"{self.dest.name}.partial-"))
            return self.tmp
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        # Not tempfile.mkdtemp: its 0700 would stay on the result; mkdir honours the umask.
        self.tmp = self.dest.parent / f".{self.dest.name}.partial-{uuid.uuid4().hex[:12]}"
        self.tmp.mkdir()
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        if is_url(self.dest):
            try:
                rmtree(self.dest)
                upload_folder(self.tmp, self.dest)
            finally:
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


def upload_folder(local: pathlib.Path, dest) -> None:
    """Copy folder ``local`` to cloud storage ``dest``, the completion markers last (see
    ``atomic_output_dir``)."""
    files = sorted(p for p in local.rglob("*") if p.is_file())
    last = [p for p in files if p.relative_to(local).as_posix() == "config.json"]
    for path in [p for p in files if p not in last] + last:
        target = dest / path.relative_to(local).as_posix()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    for step in sorted(p for p in local.iterdir() if p.is_dir() and p.name.isdigit()):
        (dest / step.name / COMMIT_MARK).write_text("")
