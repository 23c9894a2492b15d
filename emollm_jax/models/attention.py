"""One attention implementation for the vision encoder (bidirectional) and the LLM (causal, GQA,
KV cache).

Layouts: queries ``[batch, q_len, heads, head_dim]``, keys/values
``[batch, kv_len, kv_heads, head_dim]``; a boolean mask ``[batch, 1, q_len, kv_len]`` says which
keys a query may see. Logits and softmax run in float32. A query that may see no key (a padding
position) gets a uniform distribution instead of NaN; its output is never used.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from emollm_jax.models import rope
from emollm_jax.models.config import LoraConfig
from emollm_jax.models.layers import Dense, lora_kwargs
from emollm_jax.sharding.context import constrain

_MASKED = -0.7 * float(jnp.finfo(jnp.float32).max)


def dot_product_attention(
    q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array | None, scale: float
) -> jax.Array:
    """Grouped-query attention: ``heads`` must be a multiple of ``kv_heads``."""
    with jax.named_scope("attention"):  # names its ops in the compiled program (cost reports)
        b, tq, h, d = q.shape
        kv = k.shape[2]
        q = q.reshape(b, tq, kv, h // kv, d)  # [batch, q_len, kv_heads, group, head_dim]
        logits = jnp.einsum("bqkgd,bskd->bkgqs", q, k, preferred_element_type=jnp.float32)
        logits = logits * scale
        if mask is not None:
            logits = jnp.where(mask[:, :, None, :, :], logits, _MASKED)
        probs = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
        out = jnp.einsum("bkgqs,bskd->bqkgd", probs, v)
        return out.reshape(b, tq, h, d)


def make_mask(
    q_slots: jax.Array,
    k_slots: jax.Array,
    *,
    causal: bool,
    k_valid: jax.Array | None = None,
    q_segments: jax.Array | None = None,
    k_segments: jax.Array | None = None,
) -> jax.Array:
    """A ``[batch, 1, q_len, kv_len]`` boolean mask.

    ``q_slots [q_len]`` and ``k_slots [kv_len]`` are the positions of queries and keys in the
    (cached) sequence, used for causality; ``k_valid [batch, kv_len]`` marks real keys;
    segment ids ``[batch, len]`` keep packed examples apart.
    """
    mask = jnp.ones((1, 1, q_slots.shape[0], k_slots.shape[0]), bool)
    if causal:
        mask = mask & (k_slots[None, :] <= q_slots[:, None])[None, None]
    if k_valid is not None:
        mask = mask & k_valid[:, None, None, :].astype(bool)
    if q_segments is not None and k_segments is not None:
        mask = mask & (q_segments[:, None, :, None] == k_segments[:, None, None, :])
    return mask


class Attention(nnx.Module):
    """Multi-head attention with optional RoPE, grouped KV heads and a functional KV cache."""

    def __init__(
        self,
        hidden: int,
        num_heads: int,
        num_kv_heads: int,
        head_dim: int,
        *,
        qkv_bias: bool,
        o_bias: bool,
        param_dtype,
        dtype,
        rngs: nnx.Rngs,
        lora: LoraConfig | None = None,
    ):
        self.head_dim = head_dim
        common = dict(param_dtype=param_dtype, dtype=dtype, rngs=rngs)
        adapters = {name: lora_kwargs(lora, name) for name in ("q", "k", "v", "o")}
        self.q = Dense(
            (hidden,),
            (num_heads, head_dim),
            in_axes=("embed",),
            out_axes=("heads", "head_dim"),
            use_bias=qkv_bias,
            **common,
            **adapters["q"],
        )
        self.k = Dense(
            (hidden,),
            (num_kv_heads, head_dim),
            in_axes=("embed",),
            out_axes=("kv_heads", "head_dim"),
            use_bias=qkv_bias,
            **common,
            **adapters["k"],
        )
        self.v = Dense(
            (hidden,),
            (num_kv_heads, head_dim),
            in_axes=("embed",),
            out_axes=("kv_heads", "head_dim"),
            use_bias=qkv_bias,
            **common,
            **adapters["v"],
        )
        self.o = Dense(
            (num_heads, head_dim),
            (hidden,),
            in_axes=("heads", "head_dim"),
            out_axes=("embed",),
            use_bias=o_bias,
            **common,
            **adapters["o"],
        )

    def __call__(
        self,
        x: jax.Array,
        mask: jax.Array | None,
        *,
        cos_sin: tuple[jax.Array, jax.Array] | None = None,
        cache: tuple[jax.Array, jax.Array, jax.Array] | None = None,
    ):
        """``x [batch, len, embed]`` -> (``[batch, len, embed]``, updated (k, v) or None).

        ``cache`` is ``(k_cache, v_cache, index)`` with caches ``[batch, max_len, kv_heads,
        head_dim]``: the new keys and values are written at ``index`` and attention runs over
        the whole cache (the mask hides empty slots).
        """
        q = constrain(self.q(x), ("batch", "length", "heads", "head_dim"))
        k = constrain(self.k(x), ("batch", "length", "kv_heads", "head_dim"))
        v = constrain(self.v(x), ("batch", "length", "kv_heads", "head_dim"))
        if cos_sin is not None:
            q = rope.apply(q, *cos_sin)
            k = rope.apply(k, *cos_sin)
        new_cache = None
        if cache is not None:
            k_cache, v_cache, index = cache
            k = jax.lax.dynamic_update_slice_in_dim(k_cache, k.astype(k_cache.dtype), index, 1)
            v = jax.lax.dynamic_update_slice_in_dim(v_cache, v.astype(v_cache.dtype), index, 1)
            new_cache = (k, v)
        out = dot_product_attention(q, k, v, mask, self.head_dim**-0.5)
        return self.o(out), new_cache
