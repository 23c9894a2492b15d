"""LLaVA's baseline visual projector: a 2-layer MLP from vision features to LLM embeddings."""

from __future__ import annotations

import jax
from flax import nnx

from emollm_jax.models.config import ModelConfig
from emollm_jax.models.layers import ACTIVATIONS, Dense


class MLPProjector(nnx.Module):
    """``[..., vision_hidden * len(feature_layers)]`` -> ``[..., text_hidden]``."""

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        d_in = cfg.vision.hidden_size * len(cfg.feature_layers)
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


def build_projector(cfg: ModelConfig, rngs: nnx.Rngs) -> nnx.Module:
    if cfg.projector.type == "mlp":
        return MLPProjector(cfg, rngs=rngs)
    raise ValueError(f"config.model.projector.type: unknown projector {cfg.projector.type!r}")
