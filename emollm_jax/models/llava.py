"""The LLaVA composite: CLIP ViT -> visual projector -> decoder LLM.

Each image placeholder token in ``input_ids`` is replaced, in order, by one projected visual
token: the data pipeline expands a media item's placeholder to exactly
``visual_tokens.tokens_per_media`` tokens.

``pixel_values`` comes in two layouts:
- ``[num_images, C, H, W]`` (Hugging Face's): images fill the placeholders of the whole batch in
  order, as ``LlavaForConditionalGeneration`` does;
- ``[batch, frames, C, H, W]`` (our pipeline's): row ``b``'s frames fill row ``b``'s
  placeholders, padding frames last, so a data-parallel shard never reaches across rows.
  ``frame_media [batch, frames]`` (each frame's media index, -1 on padding) tells a projector
  which frames form one video (``projector.video="pooled"`` needs it).

All frames go through the vision tower as one batch; the projector (``projector.py``) receives
the hidden states of every ViT layer it needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
from flax import nnx

from emollm_jax.models.clip_vision import CLIPVision
from emollm_jax.models.decoder import Cache, DecoderLM
from emollm_jax.models.projector import LlavaProjector
from emollm_jax.models.projector_multi import MultiPerspectiveProjector

if TYPE_CHECKING:
    from emollm_jax.config.model import ModelConfig

# config.model.projector.type -> the projector (every one offers the interface of projector.py).
PROJECTORS = {"mlp": LlavaProjector, "multi_perspective": MultiPerspectiveProjector}


def merge_visual_tokens(
    embeds: jax.Array, input_ids: jax.Array, visual: jax.Array, image_token_id: int
) -> jax.Array:
    """Put ``visual [B, V, D]`` at the image tokens of ``input_ids [B, T]``, in order per row."""
    is_image = input_ids == image_token_id
    index = jnp.clip(jnp.cumsum(is_image, axis=1) - 1, 0, visual.shape[1] - 1)
    gathered = jnp.take_along_axis(visual, index[..., None], axis=1).astype(embeds.dtype)
    return jnp.where(is_image[..., None], gathered, embeds)


class Llava(nnx.Module):
    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.config = cfg
        self.vision_tower = CLIPVision(cfg, rngs=rngs)
        self.projector = PROJECTORS[cfg.projector.type](cfg, rngs=rngs)
        self.language_model = DecoderLM(cfg, rngs=rngs)

    def vision_states(self, pixel_values: jax.Array) -> jax.Array:
        """``[N, C, H, W]`` -> hidden states ``[1 + layers, N, tokens, D_vision]`` of the ViT
        layers the projector reads (later layers are not computed)."""
        with jax.named_scope("vision_tower"):
            return self.vision_tower.hidden_states(
                pixel_values, num_layers=self.projector.vision_layers
            )

    def image_features(self, pixel_values: jax.Array) -> jax.Array:
        """``[N, C, H, W]`` -> projected visual tokens ``[N, tokens, D_text]``."""
        states = self.vision_states(pixel_values)
        with jax.named_scope("projector"):
            return self.projector.images(states)

    def embed(
        self,
        input_ids: jax.Array,
        pixel_values: jax.Array | None,
        frame_media: jax.Array | None = None,
    ) -> jax.Array:
        embeds = self.language_model.embed(input_ids)
        if pixel_values is None:
            return embeds
        image_token_id = self.config.image_token_id
        if pixel_values.ndim == 4:
            visual = self.image_features(pixel_values)
            b, t, d = embeds.shape
            merged = merge_visual_tokens(
                embeds.reshape(1, b * t, d),
                input_ids.reshape(1, b * t),
                visual.reshape(1, -1, visual.shape[-1]),
                image_token_id,
            )
            return merged.reshape(b, t, d)
        if pixel_values.ndim == 5:
            b, f = pixel_values.shape[:2]
            states = self.vision_states(pixel_values.reshape(b * f, *pixel_values.shape[2:]))
            visual = self.projector.rows(states, frame_media, b, f)
            return merge_visual_tokens(embeds, input_ids, visual, image_token_id)
        raise ValueError(
            f"pixel_values must be [images, C, H, W] or [batch, frames, C, H, W], "
            f"got shape {pixel_values.shape}"
        )

    def features(
        self,
        input_ids: jax.Array,
        pixel_values: jax.Array | None = None,
        attention_mask: jax.Array | None = None,
        *,
        frame_media: jax.Array | None = None,
        positions: jax.Array | None = None,
        segment_ids: jax.Array | None = None,
    ) -> jax.Array:
        """The LLM's final-normed hidden states ``[B, T, D_text]`` (``logits`` maps them to the
        vocabulary)."""
        embeds = self.embed(input_ids, pixel_values, frame_media)
        return self.language_model.features(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            positions=positions,
            segment_ids=segment_ids,
        )

    def logits(self, h: jax.Array) -> jax.Array:
        return self.language_model.logits(h)

    def __call__(
        self,
        input_ids: jax.Array,
        pixel_values: jax.Array | None = None,
        attention_mask: jax.Array | None = None,
        *,
        frame_media: jax.Array | None = None,
        positions: jax.Array | None = None,
        segment_ids: jax.Array | None = None,
        cache: Cache | None = None,
        last_only: bool = False,
    ):
        """Logits ``[B, T, vocab]`` (the last position's only with ``last_only``), or
        ``(logits, cache)`` when a cache is passed.

        ``frame_media`` (which media item each frame is; -1 for padding) goes with the
        ``[batch, frames, C, H, W]`` layout; the baseline projector needs no more than the frame
        order, a pooled-video projector needs it whenever a row holds more than one frame.
        """
        embeds = self.embed(input_ids, pixel_values, frame_media)
        return self.language_model(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            positions=positions,
            segment_ids=segment_ids,
            cache=cache,
            last_only=last_only,
        )
