"""Tensors made straight into their place in an output file, through a shared memory map.

A converter's output files have a known size and every tensor a known place in them (a shard
of a safetensors folder, a chunk file of a zarr array). Such a file is created at its full
size with its disk blocks allocated up front (``posix_fallocate``: a full disk is reported
then, never as a fault halfway through), and each tensor is made (transposed, cast) directly
into a shared map of its bytes, unmapped as soon as it is done: no buffer to copy from and no
``pwrite`` copy into the page cache, and the process's resident size holds only the tensors in
hand. (On the virtual machine we develop on, ``pwrite``'s copy into the page cache was at
times ten times slower than its usual speed, and writing through a map was not.)

Where blocks cannot be allocated (a file system without ``fallocate``, a platform without
``posix_fallocate``) or the host is big-endian, tensors are made in the running task's
``scratch`` and written with ``pwrite``.
"""

from __future__ import annotations

import errno
import math
import mmap
import os
import sys
from collections.abc import Callable

import numpy as np

from emollm_jax.convert.bounded import Alloc, scratch

Make = Callable[[Alloc], np.ndarray]  # makes a tensor, moving data into arrays from its Alloc


def preallocate(fd: int, size: int) -> bool:
    """Give open file ``fd`` ``size`` bytes; whether its blocks are allocated (then its
    tensors may be made in a map of it), else it is only extended (``ftruncate``)."""
    if sys.byteorder == "little" and size > 0 and hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(fd, 0, size)
            return True
        except OSError as e:
            if e.errno == errno.ENOSPC:  # the disk is full: say so now
                raise
    os.ftruncate(fd, size)
    return False


def fill(fd: int, offset: int, shape, dtype, make: Make, mappable: bool) -> None:
    """Put the tensor ``make`` makes (``shape``, ``dtype``, C order, little-endian) at byte
    ``offset`` of ``fd``: made in a shared map of those bytes where ``mappable``, else made
    in scratch memory and written."""
    dtype = np.dtype(dtype)
    shape = tuple(shape)
    nbytes = math.prod(shape) * dtype.itemsize
    if not mappable or nbytes == 0:
        _write_all(fd, _checked(make(scratch), shape, dtype), offset)
        return
    start = offset - offset % mmap.ALLOCATIONGRANULARITY
    region = mmap.mmap(fd, offset - start + nbytes, offset=start)
    try:
        place = np.frombuffer(region, np.uint8, nbytes, offset - start).view(dtype)

        def alloc(want, want_dtype) -> np.ndarray:
            if np.dtype(want_dtype) == dtype and math.prod(want) == place.size:
                return place.reshape(want)
            return scratch(want, want_dtype)

        made = _checked(make(alloc), shape, dtype)
        if made.__array_interface__["data"][0] != place.__array_interface__["data"][0]:
            np.copyto(place.reshape(shape), made)
        del made, place, alloc
    finally:
        try:
            region.close()
        except BufferError:  # a view outlived its use: the map closes when it goes
            pass


def mapped(path: str | os.PathLike, offset: int, shape, dtype) -> np.ndarray:
    """An array over the bytes of ``path`` at ``offset`` (C order, little-endian), through a
    private (copy-on-write, never written) map of them: no copy, the whole range read ahead
    at once (``MADV_WILLNEED``), and its pages leave the resident set when the array (and
    every view of it) is dropped. The file must not shrink meanwhile."""
    dtype = np.dtype(dtype).newbyteorder("<")
    count = math.prod(shape)
    if count == 0:
        return np.empty(shape, dtype)
    start = offset - offset % mmap.ALLOCATIONGRANULARITY
    fd = os.open(path, os.O_RDONLY)
    try:
        length = offset - start + count * dtype.itemsize
        region = mmap.mmap(fd, length, access=mmap.ACCESS_COPY, offset=start)
    finally:
        os.close(fd)
    if hasattr(region, "madvise") and hasattr(mmap, "MADV_WILLNEED"):
        region.madvise(mmap.MADV_WILLNEED)
    return np.frombuffer(region, dtype, count, offset - start).reshape(shape)


def _checked(made: np.ndarray, shape: tuple, dtype: np.dtype) -> np.ndarray:
    if tuple(made.shape) != shape or made.dtype != dtype:
        raise ValueError(f"made {tuple(made.shape)} {made.dtype}, expected {shape} {dtype}")
    return made


def _write_all(fd: int, array: np.ndarray, offset: int) -> None:
    little = np.ascontiguousarray(array, array.dtype.newbyteorder("<"))
    write_all(fd, memoryview(little.reshape(-1).view(np.uint8)), offset)


def write_all(fd: int, data: memoryview, offset: int) -> None:
    """``pwrite`` all of ``data`` at ``offset``."""
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], offset + done)
