"""Decoder-only LLMs: the LLaMA family (LLaMA, Vicuna, Mistral; Arcee's plain MLP) and Qwen2
(q/k/v biases).

RMSNorm, a gated (SwiGLU) or plain MLP, rotary positions (``rope_theta``, llama3 ``rope_scaling``), grouped-query
causal attention, tied or untied output embeddings, and a functional KV cache
(``init_cache``) that generation threads through calls.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.ad_checkpoint import checkpoint_name

from emollm_jax.models import remat, rope, stack
from emollm_jax.models.attention import Attention, AttentionSettings
from emollm_jax.models.attention_mask import cache_mask, self_attention_mask
from emollm_jax.models.layers import ACTIVATIONS, Dense, Embed, RMSNorm, lora_kwargs
from emollm_jax.sharding.context import constrain

if TYPE_CHECKING:
    from emollm_jax.config.model import ModelConfig, TextConfig

_ACT = ("batch", "length", "act_embed")

Cache = dict[str, Any]


def init_cache(cfg: TextConfig, batch: int, max_len: int, dtype=jnp.float32) -> Cache:
    """An empty KV cache: keys/values ``[layers, batch, kv_heads, max_len, head_dim]`` (the
    layout the attention einsums read without transposing the cache at every token), the
    validity of each slot ``[batch, max_len]`` and the next slot to write (``index``)."""
    shape = (cfg.num_layers, batch, cfg.num_kv_heads, max_len, cfg.resolved_head_dim)
    return dict(
        k=jnp.zeros(shape, dtype),
        v=jnp.zeros(shape, dtype),
        mask=jnp.zeros((batch, max_len), bool),
        index=jnp.zeros((), jnp.int32),
    )


class MLP(nnx.Module):
    """Gated ``down(act(gate(x)) * up(x))`` (SwiGLU with silu) or, with ``gated_mlp`` off,
    plain ``down(act(up(x)))``.

    ``chunk`` > 0 runs the MLP over ``[B, chunk]`` slices of the sequence in a ``lax.scan``
    whose body is rematerialised: the backward pass then holds one slice's ``[B, chunk, F]``
    intermediates at a time instead of the whole sequence's (at ``F`` = 14336 and 6 x 8192
    tokens per chip, each full-size intermediate is 1.3 GiB). Under a remat policy that
    recomputes the MLP anyway (``full``, the offload ones) the slices add no work; under
    ``none`` the backward pass runs the MLP's forward once more. A sequence that ``chunk`` does
    not divide runs whole.
    """

    def __init__(
        self, cfg: TextConfig, *, param_dtype, dtype, rngs: nnx.Rngs, lora=None, chunk: int = 0
    ):
        self.chunk = chunk
        common = dict(param_dtype=param_dtype, dtype=dtype, rngs=rngs, use_bias=cfg.mlp_bias)
        d, f = cfg.hidden_size, cfg.intermediate_size
        up = dict(in_axes=("embed",), out_axes=("mlp",), **common)
        self.act = ACTIVATIONS[cfg.hidden_act]
        self.gate = Dense((d,), (f,), **up, **lora_kwargs(lora, "gate")) if cfg.gated_mlp else None
        self.up = Dense((d,), (f,), **up, **lora_kwargs(lora, "up"))
        self.down = Dense(
            (f,),
            (d,),
            in_axes=("mlp",),
            out_axes=("embed",),
            **common,
            **lora_kwargs(lora, "down"),
        )

    def __call__(self, x):
        b, t = x.shape[0], x.shape[-2]
        if not self.chunk or x.ndim != 3 or t <= self.chunk or t % self.chunk:
            return self.apply_whole(x)
        n = t // self.chunk
        graphdef, state = nnx.split(self)

        @functools.partial(jax.checkpoint, prevent_cse=False)
        def body(carry, xc):
            return carry, nnx.merge(graphdef, state).apply_whole(constrain(xc, _ACT))

        slices = jnp.moveaxis(x.reshape(b, n, self.chunk, x.shape[-1]), 1, 0)
        _, ys = jax.lax.scan(body, None, slices)
        return constrain(jnp.moveaxis(ys, 0, 1).reshape(b, t, ys.shape[-1]), _ACT)

    def apply_whole(self, x):
        up = checkpoint_name(self.up(x), remat.MLP_IN)
        if self.gate is None:
            h = self.act(up)
        else:
            h = self.act(checkpoint_name(self.gate(x), remat.MLP_IN)) * up
        return checkpoint_name(self.down(constrain(h, ("batch", "length", "mlp"))), remat.MLP_OUT)


class DecoderLayer(nnx.Module):
    def __init__(
        self,
        cfg: TextConfig,
        *,
        param_dtype,
        dtype,
        rngs: nnx.Rngs,
        lora=None,
        attention: AttentionSettings = AttentionSettings(),
        mlp_chunk: int = 0,
    ):
        common = dict(param_dtype=param_dtype, dtype=dtype, rngs=rngs)
        self.input_norm = RMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps, **common)
        self.attn = Attention(
            cfg.hidden_size,
            cfg.num_heads,
            cfg.num_kv_heads,
            cfg.resolved_head_dim,
            qkv_bias=cfg.qkv_bias,
            o_bias=cfg.o_bias,
            lora=lora,
            settings=attention,
            **common,
        )
        self.post_attn_norm = RMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps, **common)
        self.mlp = MLP(cfg, lora=lora, chunk=mlp_chunk, **common)

    def __call__(self, x, mask, cos_sin, cache=None):
        x = checkpoint_name(x, remat.LAYER_INPUT)
        attn_out, new_cache = self.attn(self.input_norm(x), mask, cos_sin=cos_sin, cache=cache)
        x = x + attn_out
        x = x + self.mlp(self.post_attn_norm(x))
        return constrain(x, _ACT), new_cache


class DecoderLM(nnx.Module):
    """``input_ids [B, T]`` (or ``inputs_embeds [B, T, D]``) -> logits ``[B, T, vocab]``."""

    def __init__(self, model_cfg: ModelConfig, *, rngs: nnx.Rngs):
        cfg = model_cfg.text
        self.config = model_cfg
        self.cfg = cfg
        self.scan_layers = model_cfg.scan_layers
        self.remat = model_cfg.remat
        self.dtype = dtype = model_cfg.jnp_dtype
        common = dict(param_dtype=model_cfg.jnp_param_dtype, dtype=dtype)
        self.embed_tokens = Embed(
            cfg.vocab_size, cfg.hidden_size, rngs=rngs, one_hot=model_cfg.embed_one_hot, **common
        )
        attention = AttentionSettings.of(model_cfg)
        self.layers = stack.create(
            lambda r: DecoderLayer(
                cfg,
                rngs=r,
                lora=model_cfg.lora,
                attention=attention,
                mlp_chunk=model_cfg.mlp_chunk,
                **common,
            ),
            cfg.num_layers,
            rngs,
        )
        self.norm = RMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps, rngs=rngs, **common)
        self.lm_head = (
            None
            if cfg.tie_word_embeddings
            else Dense(
                (cfg.hidden_size,),
                (cfg.vocab_size,),
                in_axes=("embed",),
                out_axes=("vocab",),
                use_bias=False,
                rngs=rngs,
                **common,
            )
        )

    def embed(self, input_ids: jax.Array) -> jax.Array:
        return constrain(self.embed_tokens(input_ids), _ACT)

    def hidden(
        self,
        inputs_embeds: jax.Array,
        *,
        attention_mask: jax.Array | None = None,
        positions: jax.Array | None = None,
        segment_ids: jax.Array | None = None,
        cache: Cache | None = None,
    ) -> tuple[jax.Array, Cache | None]:
        """The final-normed hidden states ``[B, T, D]`` and the updated cache."""
        cfg = self.cfg
        b, t, _ = inputs_embeds.shape
        offset = cache["index"] if cache is not None else 0
        q_slots = offset + jnp.arange(t)
        if positions is None:
            positions = jnp.broadcast_to(q_slots, (b, t))
        inv_freq = rope.inverse_frequencies(cfg.resolved_head_dim, cfg.rope_theta, cfg.rope_scaling)
        cos_sin = rope.cos_sin(positions, inv_freq)
        if cache is None:
            mask = self_attention_mask(attention_mask, segment_ids, causal=True)
            xs = None
        else:
            new_valid = jnp.ones((b, t), bool) if attention_mask is None else attention_mask
            slot_mask = jax.lax.dynamic_update_slice_in_dim(
                cache["mask"], new_valid.astype(bool), offset, 1
            )
            mask = cache_mask(q_slots, slot_mask)
            xs = (cache["k"], cache["v"])

        def body(layer, h, layer_cache):
            kv = None if layer_cache is None else (*layer_cache, offset)
            h, new_kv = layer(h, mask, cos_sin, kv)
            return h, new_kv

        h, new_kv = stack.run(
            self.layers, body, inputs_embeds, xs, scan=self.scan_layers, remat=self.remat
        )
        new_cache = None
        if cache is not None:
            new_cache = dict(k=new_kv[0], v=new_kv[1], mask=slot_mask, index=offset + t)
        return self.norm(h), new_cache

    def logits(self, h: jax.Array) -> jax.Array:
        with jax.named_scope("lm_head"):
            out = self.embed_tokens.attend(h) if self.lm_head is None else self.lm_head(h)
            return constrain(out, ("batch", "length", "vocab"))

    def features(
        self,
        input_ids: jax.Array | None = None,
        attention_mask: jax.Array | None = None,
        *,
        inputs_embeds: jax.Array | None = None,
        positions: jax.Array | None = None,
        segment_ids: jax.Array | None = None,
    ) -> jax.Array:
        """The final-normed hidden states ``[B, T, D]`` that ``logits`` maps to the vocabulary
        (the chunked loss computes logits a few positions at a time from these)."""
        if inputs_embeds is None:
            inputs_embeds = self.embed(input_ids)
        h, _ = self.hidden(
            inputs_embeds,
            attention_mask=attention_mask,
            positions=positions,
            segment_ids=segment_ids,
        )
        return h

    def __call__(
        self,
        input_ids: jax.Array | None = None,
        pixel_values: None = None,
        attention_mask: jax.Array | None = None,
        *,
        inputs_embeds: jax.Array | None = None,
        positions: jax.Array | None = None,
        segment_ids: jax.Array | None = None,
        cache: Cache | None = None,
        last_only: bool = False,
    ):
        """Logits ``[B, T, vocab]`` (``[B, 1, vocab]``, the last position's, with ``last_only``),
        or ``(logits, cache)`` when a cache is passed."""
        if pixel_values is not None:
            raise ValueError("a text-only LLM takes no pixel_values")
        if inputs_embeds is None:
            inputs_embeds = self.embed(input_ids)
        h, new_cache = self.hidden(
            inputs_embeds,
            attention_mask=attention_mask,
            positions=positions,
            segment_ids=segment_ids,
            cache=cache,
        )
        logits = self.logits(h[:, -1:] if last_only else h)
        return logits if cache is None else (logits, new_cache)
