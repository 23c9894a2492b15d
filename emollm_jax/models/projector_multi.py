"""EmoLLM's multi-perspective visual projection, as we design it.

The paper states that the projection "captures diverse emotional cues from visual data from
multiple perspectives" and publishes no mechanism: everything here is our choice, and every
part is a switch in ``config.model.projector`` (``ProjectorConfig``) so that it can be ablated:

- ``perspectives``: which of ``patch``, ``depth``, ``relation``, ``global``
  (``perspectives.py``) run; their token sets are concatenated in that fixed order;
- ``perspective_embedding``: a learned vector per perspective (zero at the start) added to
  each of its tokens, so the LLM can tell the token sets apart;
- ``video``: ``frames`` (each frame as an image) or ``pooled`` (``video.py``: per-frame global
  tokens plus the other perspectives' tokens averaged over the frames: a bounded count).

Token counts follow from the config alone (``visual_tokens.py``, which the data pipeline reads
too); tracing checks each perspective's output against them. With ``perspectives=("patch",)``,
``patch_pool=1`` and no perspective embedding, this projector computes LLaVA's MLP projector.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
from flax import nnx

from emollm_jax.models import video
from emollm_jax.models.layers import param, zeros_init
from emollm_jax.models.perspectives import PERSPECTIVE_MODULES
from emollm_jax.models.visual_features import frames_as_rows
from emollm_jax.models.visual_tokens import perspective_tokens

if TYPE_CHECKING:
    from emollm_jax.config.model import ModelConfig


class MultiPerspectiveProjector(nnx.Module):
    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.model_cfg = cfg
        self.names = cfg.projector.active_perspectives
        self.perspectives = nnx.Dict(
            {name: PERSPECTIVE_MODULES[name](cfg, rngs=rngs) for name in self.names}
        )
        shape = (len(self.names), cfg.text.hidden_size)
        self.embedding = (
            param(rngs, zeros_init, shape, cfg.jnp_param_dtype, (None, "embed"))
            if cfg.projector.perspective_embedding
            else None
        )
        self.vision_layers = max(max(self.perspectives[name].layers()) for name in self.names)

    def parts(self, states: jax.Array) -> tuple[jax.Array | None, jax.Array | None]:
        """Per frame: the non-global perspectives' tokens ``[N, S, D_text]`` and the global
        tokens ``[N, Q, D_text]`` (None when no such perspective is on)."""
        expected = perspective_tokens(self.model_cfg)
        local, global_ = [], None
        for k, name in enumerate(self.names):
            tokens = self.perspectives[name](states)
            if tokens.shape[1] != expected[name]:
                raise AssertionError(
                    f"perspective {name!r} gives {tokens.shape[1]} tokens, "
                    f"visual_tokens says {expected[name]}"
                )
            if self.embedding is not None:
                tokens = tokens + self.embedding[k].astype(tokens.dtype)
            if name in self.model_cfg.zeroed_perspectives:
                tokens = jnp.zeros_like(tokens)
            if name == "global":
                global_ = tokens
            else:
                local.append(tokens)
        return (jnp.concatenate(local, axis=1) if local else None), global_

    def images(self, states: jax.Array) -> jax.Array:
        """Every frame an independent image: ``[N, K, D_text]``."""
        return jnp.concatenate([x for x in self.parts(states) if x is not None], axis=1)

    def rows(self, states, frame_media, batch: int, frames: int) -> jax.Array:
        """The frames of ``[batch, frames]`` rows -> ``[batch, V, D_text]`` per row."""
        pooled = self.model_cfg.projector.video == "pooled"
        if not pooled or frames == 1:
            return frames_as_rows(self.images(states), batch, frames)
        if frame_media is None:
            raise ValueError(
                "projector.video='pooled' needs frame_media (which media item each frame is) "
                "for pixel_values with more than one frame per row"
            )
        local, global_ = self.parts(states)

        def per_row(x):
            return None if x is None else x.reshape(batch, frames, *x.shape[1:])

        return video.pooled_rows(per_row(local), per_row(global_), frame_media)
