"""CLIP preprocessing, as transformers' ``CLIPImageProcessor`` does it, for frames of any size.

Resize the shortest side to ``image_size`` (bicubic), centre-crop ``image_size`` x ``image_size``,
scale to [0, 1], normalise with the vision config's mean and std, and lay out channels first.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def _resize_and_crop(frame: np.ndarray, size: int) -> np.ndarray:
    h, w = frame.shape[:2]
    # The long side is floored, as transformers' get_resize_output_image_size does.
    new_w, new_h = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
    img = Image.fromarray(frame)
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), Image.Resampling.BICUBIC)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)))


def preprocess(
    frames: np.ndarray, image_size: int, mean: tuple[float, ...], std: tuple[float, ...]
) -> np.ndarray:
    """uint8 [N, H, W, 3] -> float32 [N, 3, image_size, image_size]."""
    out = np.stack([_resize_and_crop(f, image_size) for f in frames]).astype(np.float32)
    out = (out / 255.0 - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))
