"""What every visual projector shares: which ViT hidden states it reads, the patch features,
grid pooling, the frames-as-rows layout and the 2-layer MLP.

A leaf of the projector modules (``projector.py``, ``projector_multi.py``, ``perspectives.py``
import it; it imports none of them). ``states`` are the vision tower's stacked hidden states
``[1 + layers, N, 1 + patches, D_vision]`` (HF's ``hidden_states``: index 0 = embeddings).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
from flax import nnx

from emollm_jax.models.layers import ACTIVATIONS, Dense

if TYPE_CHECKING:
    from emollm_jax.config.model import ModelConfig


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


def patch_features(states: jax.Array, cfg: ModelConfig) -> jax.Array:
    """The selected features of the patches only (no class token) ``[N, patches, D_in]``."""
    features = select_features(states, cfg)
    return features[:, 1:] if cfg.vision_feature_select_strategy == "full" else features


def feature_width(cfg: ModelConfig) -> int:
    """Width of the selected features: ``vision_hidden * len(feature_layers)``."""
    return cfg.vision.hidden_size * len(cfg.feature_layers)


def pool_grid(x: jax.Array, side: int, pool: int) -> jax.Array:
    """Average ``pool x pool`` patches: ``[N, side * side, D]`` -> ``[N, (side / pool)^2, D]``
    (row-major, as the ViT orders patches)."""
    if pool == 1:
        return x
    n, _, d = x.shape
    s = side // pool
    return x.reshape(n, s, pool, s, pool, d).mean(axis=(2, 4)).reshape(n, s * s, d)


def frames_as_rows(tokens: jax.Array, batch: int, frames: int) -> jax.Array:
    """``[batch * frames, K, D]`` -> ``[batch, frames * K, D]``: with a fixed count per frame
    and padding frames last, a row's visual tokens are its frames' tokens in order."""
    return tokens.reshape(batch, frames * tokens.shape[1], tokens.shape[-1])


class MLPProjector(nnx.Module):
    """``[..., d_in]`` -> ``[..., text_hidden]``: ``linear_2(act(linear_1(x)))``.

    ``d_in`` defaults to LLaVA's input width (``feature_width``); the multi-perspective
    projector reuses this block with other widths.
    """

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs, d_in: int | None = None):
        d_in = d_in or feature_width(cfg)
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
