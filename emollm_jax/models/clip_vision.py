"""CLIP ViT vision encoder, computed as transformers' ``CLIPVisionModel`` computes it.

Class token + patch convolution (no bias) + learned position embeddings, a pre-LayerNorm
(``pre_layrnorm`` in HF), pre-norm encoder layers (bidirectional attention, quick_gelu MLP), and
a post-LayerNorm applied to the class token only (the pooled output).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
from flax import nnx

from emollm_jax.models import stack
from emollm_jax.models.attention import Attention, AttentionSettings
from emollm_jax.models.attention_mask import AttentionMask
from emollm_jax.models.layers import ACTIVATIONS, Dense, LayerNorm, normal_init, param
from emollm_jax.sharding.context import constrain

if TYPE_CHECKING:
    from emollm_jax.config.model import ModelConfig, VisionConfig

_ACT = ("batch", "length", "act_embed")
_BIDIRECTIONAL = AttentionMask(causal=False)  # every patch sees every patch


class VisionMLP(nnx.Module):
    def __init__(self, cfg: VisionConfig, *, param_dtype, dtype, rngs: nnx.Rngs):
        common = dict(param_dtype=param_dtype, dtype=dtype, rngs=rngs, use_bias=True)
        self.act = ACTIVATIONS[cfg.hidden_act]
        self.fc1 = Dense(
            (cfg.hidden_size,),
            (cfg.intermediate_size,),
            in_axes=("embed",),
            out_axes=("mlp",),
            **common,
        )
        self.fc2 = Dense(
            (cfg.intermediate_size,),
            (cfg.hidden_size,),
            in_axes=("mlp",),
            out_axes=("embed",),
            **common,
        )

    def __call__(self, x):
        h = constrain(self.act(self.fc1(x)), ("batch", "length", "mlp"))
        return self.fc2(h)


class VisionLayer(nnx.Module):
    def __init__(
        self,
        cfg: VisionConfig,
        *,
        param_dtype,
        dtype,
        rngs: nnx.Rngs,
        attention: AttentionSettings = AttentionSettings(),
    ):
        common = dict(param_dtype=param_dtype, dtype=dtype, rngs=rngs)
        norm = dict(eps=cfg.layer_norm_eps, **common)
        self.norm1 = LayerNorm(cfg.hidden_size, **norm)
        self.attn = Attention(
            cfg.hidden_size,
            cfg.num_heads,
            cfg.num_heads,
            cfg.head_dim,
            qkv_bias=True,
            o_bias=True,
            settings=attention,
            **common,
        )
        self.norm2 = LayerNorm(cfg.hidden_size, **norm)
        self.mlp = VisionMLP(cfg, **common)

    def __call__(self, x):
        x = x + self.attn(self.norm1(x), _BIDIRECTIONAL)[0]
        x = x + self.mlp(self.norm2(x))
        return constrain(x, _ACT)


class CLIPVision(nnx.Module):
    """``pixel_values [N, C, H, W]`` -> hidden states of chosen layers ``[N, 1 + patches, D]``."""

    def __init__(self, model_cfg: ModelConfig, *, rngs: nnx.Rngs):
        cfg = model_cfg.vision
        self.config = model_cfg
        self.cfg = cfg
        self.scan_layers = model_cfg.scan_layers
        self.remat = model_cfg.remat
        self.dtype = dtype = model_cfg.jnp_dtype
        param_dtype = model_cfg.jnp_param_dtype
        common = dict(param_dtype=param_dtype, dtype=dtype)
        d, p = cfg.hidden_size, cfg.patch_size
        self.class_embedding = param(rngs, normal_init, (d,), param_dtype, ("embed",))
        # HWIO convolution kernel [patch, patch, channels, embed].
        self.patch_embedding = param(
            rngs,
            normal_init,
            (p, p, cfg.num_channels, d),
            param_dtype,
            (None, None, None, "embed"),
        )
        self.position_embedding = param(
            rngs, normal_init, (cfg.num_positions, d), param_dtype, (None, "embed")
        )
        self.pre_norm = LayerNorm(d, eps=cfg.layer_norm_eps, rngs=rngs, **common)
        attention = AttentionSettings.of(model_cfg)
        self.layers = stack.create(
            lambda r: VisionLayer(cfg, rngs=r, attention=attention, **common), cfg.num_layers, rngs
        )
        self.post_norm = LayerNorm(d, eps=cfg.layer_norm_eps, rngs=rngs, **common)

    def embed(self, pixel_values: jax.Array) -> jax.Array:
        """Class token + patch embeddings + positions, then the pre-LayerNorm."""
        x = jnp.transpose(pixel_values, (0, 2, 3, 1)).astype(self.dtype)  # NCHW -> NHWC
        p = self.cfg.patch_size
        patches = jax.lax.conv_general_dilated(
            x,
            self.patch_embedding[...].astype(self.dtype),
            (p, p),
            "VALID",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        n = patches.shape[0]
        patches = patches.reshape(n, -1, self.cfg.hidden_size)
        cls = jnp.broadcast_to(
            self.class_embedding[...].astype(self.dtype), (n, 1, patches.shape[-1])
        )
        h = jnp.concatenate([cls, patches], axis=1)
        h = h + self.position_embedding[...].astype(self.dtype)[None]
        return self.pre_norm(constrain(h, _ACT))

    def hidden_states(self, pixel_values: jax.Array, num_layers: int | None = None) -> jax.Array:
        """Stacked ``[1 + num_layers, N, tokens, D]``: the embeddings, then each layer's output
        (HF's ``hidden_states`` tuple). Only the first ``num_layers`` layers are computed."""
        h0 = self.embed(pixel_values)

        def body(layer, h, _):
            h = layer(h)
            return h, h

        _, per_layer = stack.run(
            self.layers, body, h0, num=num_layers, scan=self.scan_layers, remat=self.remat
        )
        return jnp.concatenate([h0[None], per_layer], axis=0)

    def __call__(self, pixel_values: jax.Array):
        """HF ``CLIPVisionModel`` outputs: (last_hidden_state, pooler_output, hidden_states)."""
        states = self.hidden_states(pixel_values)
        last = states[-1]
        return last, self.post_norm(last[:, 0]), states
