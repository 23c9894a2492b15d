"""The four perspectives of EmoLLM's multi-perspective visual projection, as we design them.

The paper says only that the projection "captures diverse emotional cues from visual data from
multiple perspectives"; every mechanism below is our choice. Each perspective maps the vision
tower's hidden states ``[1 + layers, N, 1 + patches, D_vision]`` to ``[N, tokens, D_text]``
(``visual_tokens.perspective_tokens`` gives the counts):

- ``PatchPerspective`` (spatial detail: faces, gestures): LLaVA's per-patch MLP on the selected
  features, the patch grid optionally average-pooled first (pool 1 = LLaVA exactly).
- ``DepthPerspective`` (low-level colour, texture and brightness beside high-level semantics):
  a learned softmax mix over several ViT layers' patch states, LayerNorm, pooling, MLP.
- ``RelationPerspective`` (relations between people, objects and scene): pooled patch regions
  are graph nodes; each node's edges go to its ``k`` most cosine-similar other nodes, weighted
  by a softmax over those similarities; each round adds ``act(W [node; message])`` to the node;
  then an MLP.
- ``GlobalPerspective`` (overall mood and atmosphere): learned queries cross-attend to all
  patches (the shared ``Attention`` module's projections), then an MLP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
from flax import nnx

from emollm_jax.models.attention import Attention, xla_attention
from emollm_jax.models.layers import ACTIVATIONS, Dense, LayerNorm, normal_init, param, zeros_init
from emollm_jax.models.visual_features import (
    MLPProjector,
    feature_layer_indices,
    feature_width,
    patch_features,
    pool_grid,
    select_features,
)
from emollm_jax.models.visual_tokens import grid_side

if TYPE_CHECKING:
    from emollm_jax.config.model import ModelConfig


def _common(cfg: ModelConfig, rngs: nnx.Rngs) -> dict:
    return dict(param_dtype=cfg.jnp_param_dtype, dtype=cfg.jnp_dtype, rngs=rngs)


class PatchPerspective(nnx.Module):
    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.model_cfg = cfg
        self.mlp = MLPProjector(cfg, rngs=rngs)

    def layers(self) -> tuple[int, ...]:
        return feature_layer_indices(self.model_cfg)

    def __call__(self, states: jax.Array) -> jax.Array:
        cfg = self.model_cfg
        features = select_features(states, cfg)
        pool = cfg.projector.patch_pool
        if pool > 1:
            cls = cfg.vision_feature_select_strategy == "full"
            pooled = pool_grid(features[:, int(cls) :], grid_side(cfg), pool)
            features = jnp.concatenate([features[:, :1], pooled], 1) if cls else pooled
        return self.mlp(features)


class DepthPerspective(nnx.Module):
    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.model_cfg = cfg
        total = cfg.vision.num_layers + 1
        chosen = cfg.projector.depth_layers or tuple(range(total))
        self.indices = tuple(layer % total for layer in chosen)
        d = cfg.vision.hidden_size
        common = _common(cfg, rngs)
        # Mixing logits, zero = a uniform mix at the start.
        self.mix = param(rngs, zeros_init, (len(self.indices),), cfg.jnp_param_dtype, (None,))
        self.norm = LayerNorm(d, eps=cfg.vision.layer_norm_eps, **common)
        self.mlp = MLPProjector(cfg, rngs=rngs, d_in=d)

    def layers(self) -> tuple[int, ...]:
        return self.indices

    def __call__(self, states: jax.Array) -> jax.Array:
        cfg = self.model_cfg
        weights = jax.nn.softmax(self.mix[...].astype(jnp.float32))
        stacked = jnp.stack([states[i][:, 1:] for i in self.indices])  # [layers, N, P, D]
        mixed = jnp.einsum("l,lnpd->npd", weights.astype(stacked.dtype), stacked)
        pooled = pool_grid(self.norm(mixed), grid_side(cfg), cfg.projector.depth_pool)
        return self.mlp(pooled)


def neighbour_messages(x: jax.Array, k: int) -> jax.Array:
    """``x [N, nodes, D]`` -> each node's message: its ``k`` most cosine-similar other nodes,
    averaged with softmax(similarity) weights."""
    x32 = x.astype(jnp.float32)
    unit = x32 * jax.lax.rsqrt(jnp.sum(x32 * x32, -1, keepdims=True) + 1e-6)
    sim = jnp.einsum("nid,njd->nij", unit, unit)
    nodes = x.shape[1]
    sim = jnp.where(jnp.eye(nodes, dtype=bool), -2.0, sim)  # no self-edges (cosine >= -1)
    top, index = jax.lax.top_k(sim, k)  # [N, nodes, k]
    weights = jax.nn.softmax(top, axis=-1)
    adjacency = jnp.einsum("nik,nikj->nij", weights, jax.nn.one_hot(index, nodes))
    return jnp.einsum("nij,njd->nid", adjacency.astype(x.dtype), x)


class RelationPerspective(nnx.Module):
    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.model_cfg = cfg
        d = feature_width(cfg)
        common = _common(cfg, rngs)
        self.act = ACTIVATIONS[cfg.projector.hidden_act]
        self.norm = LayerNorm(d, eps=cfg.vision.layer_norm_eps, **common)
        # One update per round from [node; message] stacked on a new axis of 2.
        self.rounds = nnx.List(
            [
                Dense(
                    (2, d),
                    (d,),
                    in_axes=(None, "embed"),
                    out_axes=("mlp",),
                    use_bias=True,
                    **common,
                )
                for _ in range(cfg.projector.relation_rounds)
            ]
        )
        self.mlp = MLPProjector(cfg, rngs=rngs, d_in=d)

    def layers(self) -> tuple[int, ...]:
        return feature_layer_indices(self.model_cfg)

    def __call__(self, states: jax.Array) -> jax.Array:
        cfg = self.model_cfg
        p = cfg.projector
        nodes = self.norm(pool_grid(patch_features(states, cfg), grid_side(cfg), p.relation_pool))
        for update in self.rounds:
            message = neighbour_messages(nodes, p.relation_k)
            nodes = nodes + self.act(update(jnp.stack([nodes, message], axis=-2)))
        return self.mlp(nodes)


def cross_attend(attn: Attention, queries: jax.Array, context: jax.Array) -> jax.Array:
    """``queries [N, Q, D]`` attend to ``context [N, S, D]`` (no mask) through ``attn``'s
    projections."""
    q, k, v = attn.q(queries), attn.k(context), attn.v(context)
    return attn.o(xla_attention(q, k, v, None, attn.head_dim**-0.5))


class GlobalPerspective(nnx.Module):
    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.model_cfg = cfg
        d = feature_width(cfg)
        heads = cfg.vision.num_heads
        common = _common(cfg, rngs)
        norm = dict(eps=cfg.vision.layer_norm_eps, **common)
        n = cfg.projector.global_queries
        self.queries = param(rngs, normal_init, (n, d), cfg.jnp_param_dtype, (None, "embed"))
        self.query_norm = LayerNorm(d, **norm)
        self.context_norm = LayerNorm(d, **norm)
        self.attn = Attention(d, heads, heads, d // heads, qkv_bias=True, o_bias=True, **common)
        self.mlp = MLPProjector(cfg, rngs=rngs, d_in=d)

    def layers(self) -> tuple[int, ...]:
        return feature_layer_indices(self.model_cfg)

    def __call__(self, states: jax.Array) -> jax.Array:
        context = self.context_norm(patch_features(states, self.model_cfg))
        queries = jnp.broadcast_to(
            self.queries[...].astype(context.dtype), (context.shape[0], *self.queries.shape)
        )
        out = queries + cross_attend(self.attn, self.query_norm(queries), context)
        return self.mlp(out)


# Each perspective's module; the key order is the fixed order of their token sets.
PERSPECTIVE_MODULES = {
    "patch": PatchPerspective,
    "depth": DepthPerspective,
    "relation": RelationPerspective,
    "global": GlobalPerspective,
}
