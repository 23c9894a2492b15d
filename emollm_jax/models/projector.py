"""Visual projectors: the vision tower's hidden states -> visual tokens in the LLM's embedding space.

``config.model.projector.type`` picks one:

- ``mlp``: LLaVA's 2-layer MLP on the selected ViT layer(s), exactly as transformers'
  ``LlavaForConditionalGeneration`` computes it (the baseline);
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

import jax
import jax.numpy as jnp
from flax import nnx

from emollm_jax.models.config import ModelConfig
from emollm_jax.models.layers import ACTIVATIONS, Dense


def feature_layer_indices(cfg: ModelConfig) -> tuple[int, ...]:
    """``vision_feature_layer`` as non-negative indices into the hidden states."""
    total = cfg.vision.num_layers + 1  # embeddings + each layer, as HF's hidden_states
    return tuple(layer % total for layer in cfg.feature_layers)


def select_features(states: jax.Array, cfg: ModelConfig) -> jax.Array:
    """HF LLaVA's feature selection: the chosen layers concatenated on the feature axis, the
    class token dropped under strategy ``default`` -> ``[frames, tokens, D_vision * layers]``."""
    features = jnp.concatenate([states[i] for i in feature_layer_indices(cfg)], axis=-1)
    if cfg.vision_feature_select_strategy == "default":
        features = features[:, 1:]  # drop the class token
    return features


def frames_as_rows(tokens: jax.Array, batch: int, frames: int) -> jax.Array:
    """``[batch * frames, K, D]`` -> ``[batch, frames * K, D]``: with a fixed count per frame
    and padding frames last, a row's visual tokens are its frames' tokens in order."""
    return tokens.reshape(batch, frames * tokens.shape[1], tokens.shape[-1])


class MLPProjector(nnx.Module):
    """``[..., d_in]`` -> ``[..., text_hidden]``: ``linear_2(act(linear_1(x)))``.

    ``d_in`` defaults to LLaVA's input width (``vision_hidden * len(feature_layers)``); the
    multi-perspective projector reuses this block with other widths.
    """

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs, d_in: int | None = None):
        d_in = d_in or cfg.vision.hidden_size * len(cfg.feature_layers)
        d_out = cfg.text.hidden_size
        common = dict(
            param_dtype=cfg.jnp_param_dtype,
            dtype=cfg.jnp_dtype,
            rngs=rngs,
            use_bias=cfg.projector.bias,
        )
        self.act = ACTIVATIONS[cfg.projector.hidden_act]
        self.linear_1 = Dense((d_in,), (d_out,), in_axes=("embed",), out_axes=("mlp",), **common)
        self.linear_2 = Dense((d_out,), (d_out,), in_axes=("mlp",), out_axes=("embed",), **common)

    def __call__(self, features: jax.Array) -> jax.Array:
        return self.linear_2(self.act(self.linear_1(features)))


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


def build_projector(cfg: ModelConfig, rngs: nnx.Rngs) -> nnx.Module:
    if cfg.projector.type == "mlp":
        return LlavaProjector(cfg, rngs=rngs)
    if cfg.projector.type == "multi_perspective":
        from emollm_jax.models.projector_multi import MultiPerspectiveProjector

        return MultiPerspectiveProjector(cfg, rngs=rngs)
    raise ValueError(f"config.model.projector.type: unknown projector {cfg.projector.type!r}")
