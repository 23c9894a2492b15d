"""Reversible per-tensor layout transforms between PyTorch (HF) and our kernels.

Each transform maps an HF tensor to our layout given our shape, maps back given the HF shape,
and derives the HF shape from ours (to check a checkpoint before reading it).

- ``LINEAR``: ``nn.Linear`` weight ``[out, in]`` -> kernel ``[in, *out]`` (transpose, then split
  the output into heads where ours has them, e.g. ``[embed, heads, head_dim]``).
- ``LINEAR_IN2``: the same with two input dims (``o_proj [embed, heads*head_dim]`` ->
  ``[heads, head_dim, embed]``).
- ``FLAT``: 1-D in HF, reshaped in ours (biases ``[heads*head_dim]`` -> ``[heads, head_dim]``).
- ``SAME``: the same array (embedding tables).
- ``CONV``: ``Conv2d`` weight ``[out, in, kh, kw]`` -> ``[kh, kw, in, out]`` (HWIO).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from emollm_jax.convert.bounded import Alloc

# 2-D transposes move the array's bits (a signed integer view of the same size, which numpy and
# torch both copy without looking at the values): with torch (transformers imports it anyway)
# its blocked copy kernel, else numpy tile by tile so that a tile of both arrays stays in cache;
# both ran faster than numpy's strided copy of the whole array where we measured, and both
# release the GIL, so several threads transpose at once. The result is allocated by numpy, not
# torch: numpy asks for transparent huge pages on large arrays, so a fresh result costs a few
# page faults instead of one per 4 KiB page (torch's own ``contiguous()`` took twice as long as
# its copy into a numpy array, on a [5632, 2048] bfloat16 weight, for that reason).
TILE = 128


@functools.cache
def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def transpose2d(x: np.ndarray, alloc: Alloc = np.empty) -> np.ndarray:
    """``x.T`` as a C-contiguous array from ``alloc``, bit for bit."""
    if x.ndim != 2 or x.size < TILE * TILE or x.dtype.itemsize not in (1, 2, 4, 8):
        out = alloc(x.shape[::-1], x.dtype)
        np.copyto(out, x.T)
        return out
    bits = np.ascontiguousarray(x).view(np.dtype(f"i{x.dtype.itemsize}"))
    rows, cols = bits.shape
    result = alloc((cols, rows), x.dtype)
    out = result.view(bits.dtype)
    torch = _torch()
    if torch is not None:
        torch.from_numpy(out).copy_(torch.from_numpy(bits).t())
        return result
    for i in range(0, rows, TILE):
        for j in range(0, cols, TILE):
            out[j : j + TILE, i : i + TILE] = bits[i : i + TILE, j : j + TILE].T
    return result


@dataclasses.dataclass(frozen=True)
class Transform:
    kind: str  # "linear" | "flat" | "same" | "conv"
    n_in: int = 1  # input dims of our kernel (linear only)

    def hf_shape(self, ours: tuple[int, ...]) -> tuple[int, ...]:
        if self.kind == "linear":
            return (math.prod(ours[self.n_in :]), math.prod(ours[: self.n_in]))
        if self.kind == "conv":
            kh, kw, cin, cout = ours
            return (cout, cin, kh, kw)
        if self.kind == "flat":
            return (math.prod(ours),)
        return tuple(ours)

    # ``alloc`` gives the arrays a transform moves data into (a reshape moves none).
    def to_ours(self, x: np.ndarray, ours: tuple[int, ...], alloc: Alloc = np.empty):
        if self.kind == "linear":
            return transpose2d(x, alloc).reshape(ours)
        if self.kind == "conv":
            return _permuted(x, (2, 3, 1, 0), alloc)
        return x.reshape(ours)

    def to_hf(self, x: np.ndarray, hf: tuple[int, ...], alloc: Alloc = np.empty):
        if self.kind == "linear":
            return transpose2d(x.reshape(hf[::-1]), alloc)
        if self.kind == "conv":
            return _permuted(x, (3, 2, 0, 1), alloc)
        return x.reshape(hf)


def _permuted(x: np.ndarray, axes: tuple[int, ...], alloc: Alloc) -> np.ndarray:
    moved = np.transpose(x, axes)
    out = alloc(moved.shape, x.dtype)
    np.copyto(out, moved)
    return out


LINEAR = Transform("linear", 1)
LINEAR_IN2 = Transform("linear", 2)
FLAT = Transform("flat")
SAME = Transform("same")
CONV = Transform("conv")
