"""Whole chunks of a plain zarr array moved as file bytes, beside TensorStore.

A zarr (version 2) array stored uncompressed, unfiltered, in C order and in little-endian
bytes keeps each chunk as one file whose bytes are the chunk's elements as numpy lays them out
(the zarr v2 format: the file is named by the chunk's grid indices joined by the array's
``dimension_separator``, e.g. ``3.0.0``; a chunk at the array's edge is stored at full size).
For such an array on a local disk, a converter makes a chunk straight in its file
(``file_maps``) and reads one through a map of its file, without a copy. TensorStore would
first copy every chunk into a buffer of its own, element by element, and pay a page fault per
4 KiB of it (a profile of the converter with TensorStore writing found most page faults in that copy
loop).

TensorStore still creates and opens every array (its ``.zarray`` metadata, Orbax's spec);
``PlainChunks.of`` says whether a store is such an array, and every other case (a compressed or
OCDBT checkpoint, cloud storage, a missing chunk file) stays with TensorStore.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib

import numpy as np

from emollm_jax.convert import file_maps


@dataclasses.dataclass(frozen=True)
class PlainChunks:
    """The chunk files of a plain zarr v2 array in folder ``root``."""

    root: pathlib.Path
    chunk_shape: tuple[int, ...]
    dtype: np.dtype
    separator: str

    @classmethod
    def of(cls, store) -> PlainChunks | None:
        """The chunk files of TensorStore ``store`` (opened on a whole array), or None where
        its chunks are not plain file bytes."""
        spec = store.spec().to_json()
        meta, kvstore = spec.get("metadata") or {}, spec.get("kvstore") or {}
        dtype = str(meta.get("dtype", ""))
        plain = (
            spec.get("driver") == "zarr"
            and kvstore.get("driver") == "file"
            and meta.get("compressor") is None
            and not meta.get("filters")
            and meta.get("order") == "C"
            and (dtype == "bfloat16" or dtype[:1] in ("<", "|"))
        )
        if not plain or "chunks" not in meta:
            return None
        return cls(
            pathlib.Path(kvstore["path"]),
            tuple(meta["chunks"]),
            np.dtype(store.dtype.numpy_dtype),
            meta.get("dimension_separator", "."),
        )

    def path(self, grid_index: tuple[int, ...]) -> pathlib.Path:
        return self.root / (self.separator.join(map(str, grid_index)) or "0")

    def make(self, grid_index: tuple[int, ...], make: file_maps.Make) -> None:
        """Store the chunk at ``grid_index`` as ``make(alloc)`` makes it (a whole chunk's
        elements; made straight in the file where it moves data, see ``file_maps``)."""
        nbytes = math.prod(self.chunk_shape) * self.dtype.itemsize
        fd = os.open(self.path(grid_index), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            mappable = file_maps.preallocate(fd, nbytes)
            file_maps.fill(fd, 0, self.chunk_shape, self.dtype, make, mappable)
        finally:
            os.close(fd)

    def mapped(self, grid_index: tuple[int, ...]) -> np.ndarray | None:
        """The chunk at ``grid_index`` as a read-only array over a map of its file
        (``file_maps.mapped``); None when the file is absent (a chunk never written reads as
        the fill value: TensorStore's to give) or is not one chunk's size."""
        path = self.path(grid_index)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return None
        if size != math.prod(self.chunk_shape) * self.dtype.itemsize:
            return None
        return file_maps.mapped(path, 0, self.chunk_shape, self.dtype)
