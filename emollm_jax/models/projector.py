"""Visual projectors: the vision tower's hidden states -> visual tokens in the LLM's embedding space.

``config.model.projector.type`` picks one (``llava.PROJECTORS``):

- ``mlp``: LLaVA's 2-layer MLP on the selected ViT layer(s), exactly as transformers'
  ``LlavaForConditionalGeneration`` computes it (the baseline, ``LlavaProjector`` here; the
  helpers it shares with the other projector are in ``visual_features.py``);
- ``multi_perspective``: EmoLLM's projector as we design it (``projector_multi.py``).

Every projector offers the same interface to ``Llava``:

- ``vision_layers``: how many ViT layers must run; ``states`` below are the stacked hidden
  states ``[1 + vision_layers, frames, 1 + patches, D_vision]`` (HF's ``hidden_states``);
- ``images(states)``: every frame an independent image -> ``[frames, K, D_text]``;
- ``rows(states, frame_media, batch, frames)``: the frames of the pipeline's ``[B, F]`` layout ->
  each row's visual token sequence ``[B, V, D_text]`` in placeholder order (its first
  ``n`` tokens fill the row's ``n`` image tokens).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
from flax import nnx

from emollm_jax.models.visual_features import (
    MLPProjector,
    feature_layer_indices,
    frames_as_rows,
    select_features,
)

if TYPE_CHECKING:
    from emollm_jax.config.model import ModelConfig


class LlavaProjector(MLPProjector):
    """The baseline: ``MLPProjector`` on HF LLaVA's selected features; a video is its frames."""

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        super().__init__(cfg, rngs=rngs)
        self.model_cfg = cfg
        self.vision_layers = max(feature_layer_indices(cfg))

    def images(self, states: jax.Array) -> jax.Array:
        return self(select_features(states, self.model_cfg))

    def rows(self, states, frame_media, batch: int, frames: int) -> jax.Array:
        del frame_media
        return frames_as_rows(self.images(states), batch, frames)
