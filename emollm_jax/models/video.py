"""Frames -> media items in the pipeline's batch layout, with static shapes throughout.

A row of ``pixel_values [B, F, C, H, W]`` holds its media items' frames in placeholder order;
``frame_media [B, F]`` gives each frame's media index (-1 on padding frames). An image is one
frame; a video is consecutive frames sharing one index. Which media are videos is data, not a
shape, so images and videos mix in one batch under one compiled program.

Our layout for ``projector.video="pooled"`` (the paper does not describe EmoLLM's video
handling): each frame carries ``local`` tokens (the non-global perspectives) and ``global``
tokens. A media item contributes its local tokens averaged over its frames once, at its first
frame, then every frame's global tokens in time order. An image (one frame) therefore gives
local + global tokens; a video of ``T`` frames gives local + ``T`` x global.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def same_media(frame_media: jax.Array) -> jax.Array:
    """``[B, F, F]`` bool: frames ``f`` and ``g`` are real frames of the same media item."""
    valid = frame_media >= 0
    same = frame_media[:, :, None] == frame_media[:, None, :]
    return same & valid[:, :, None] & valid[:, None, :]


def first_frames(frame_media: jax.Array) -> jax.Array:
    """``[B, F]`` bool: the frame is the first of its media item (an image's only frame)."""
    previous = jnp.pad(frame_media[:, :-1], ((0, 0), (1, 0)), constant_values=-1)
    return (frame_media >= 0) & (frame_media != previous)


def time_pool(x: jax.Array, same: jax.Array) -> jax.Array:
    """``x [B, F, K, D]`` -> each frame's tokens averaged over its media item's frames."""
    weights = same.astype(jnp.float32)
    weights = weights / jnp.maximum(weights.sum(-1, keepdims=True), 1.0)
    return jnp.einsum("bfg,bgkd->bfkd", weights.astype(x.dtype), x)


def compact(tokens: jax.Array, start: jax.Array, count: jax.Array) -> jax.Array:
    """Concatenate each frame's slice ``tokens[b, f, start : start + count]`` along the row.

    ``tokens [B, F, K, D]``, ``start`` and ``count [B, F]`` -> ``[B, F * K, D]``: the row's
    ``sum(count)`` tokens first, in frame order; the remaining slots repeat a real token and
    are never read (the row has no image token for them).
    """
    b, f, k, d = tokens.shape
    ends = jnp.cumsum(count, axis=1)  # [B, F]
    slot = jnp.arange(f * k)  # [F * K] position in the row's visual sequence
    frame = jnp.sum(ends[:, None, :] <= slot[None, :, None], axis=-1)  # [B, F * K]
    frame = jnp.minimum(frame, f - 1)
    begin = jnp.take_along_axis(ends - count, frame, axis=1)
    within = jnp.take_along_axis(start, frame, axis=1) + slot[None] - begin
    index = frame * k + jnp.clip(within, 0, k - 1)
    return jnp.take_along_axis(tokens.reshape(b, f * k, d), index[..., None], axis=1)


def pooled_rows(
    local: jax.Array | None, global_: jax.Array | None, frame_media: jax.Array
) -> jax.Array:
    """``local [B, F, S, D]`` and ``global_ [B, F, Q, D]`` (either may be None) -> each row's
    visual token sequence ``[B, F * (S + Q), D]`` in the layout of the module docstring."""
    parts = [x for x in (local, global_) if x is not None]
    first = first_frames(frame_media)
    s = 0 if local is None else local.shape[2]
    q = 0 if global_ is None else global_.shape[2]
    if local is not None:
        parts[0] = time_pool(local, same_media(frame_media))
    tokens = jnp.concatenate(parts, axis=2)
    start = jnp.where(first, 0, s)
    count = jnp.where(frame_media >= 0, jnp.where(first, s + q, q), 0)
    return compact(tokens, start, count)
