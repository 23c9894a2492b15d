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

# 2-D transposes move the array's bits (a signed integer view of the same size, which numpy and
# torch both copy without looking at the values): with torch (transformers imports it anyway)
# its blocked transpose kernel, else numpy tile by tile so that a tile of both arrays stays in
# cache; both ran faster than numpy's strided copy of the whole array where we measured, and
# both release the GIL, so several threads transpose at once.
TILE = 128


@functools.cache
def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def transpose2d(x: np.ndarray) -> np.ndarray:
    """``x.T`` as a new C-contiguous array, bit for bit."""
    if x.ndim != 2 or x.size < TILE * TILE or x.dtype.itemsize not in (1, 2, 4, 8):
        return np.ascontiguousarray(x.T)
    bits = np.ascontiguousarray(x).view(np.dtype(f"i{x.dtype.itemsize}"))
    torch = _torch()
    if torch is not None:
        return torch.from_numpy(bits).t().contiguous().numpy().view(x.dtype)
    rows, cols = bits.shape
    out = np.empty((cols, rows), bits.dtype)
    for i in range(0, rows, TILE):
        for j in range(0, cols, TILE):
            out[j : j + TILE, i : i + TILE] = bits[i : i + TILE, j : j + TILE].T
    return out.view(x.dtype)


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

    def to_ours(self, x: np.ndarray, ours: tuple[int, ...]) -> np.ndarray:
        if self.kind == "linear":
            return transpose2d(x).reshape(ours)
        if self.kind == "conv":
            return np.ascontiguousarray(np.transpose(x, (2, 3, 1, 0)))
        return x.reshape(ours)

    def to_hf(self, x: np.ndarray, hf: tuple[int, ...]) -> np.ndarray:
        if self.kind == "linear":
            return transpose2d(x.reshape(hf[::-1]))
        if self.kind == "conv":
            return np.ascontiguousarray(np.transpose(x, (3, 2, 0, 1)))
        return x.reshape(hf)


LINEAR = Transform("linear", 1)
LINEAR_IN2 = Transform("linear", 2)
FLAT = Transform("flat")
SAME = Transform("same")
CONV = Transform("conv")
