"""The attention seam shared by the vision encoder (bidirectional) and the LLM (causal, GQA,
KV cache), and the multi-head attention module built on it.

``attend(q, k, v, mask, scale, settings)`` picks the implementation that ``settings``
(``config.model.attention``) names:

- ``xla``: the reference: one einsum + softmax in float32 (``xla_attention``); it materialises
  the logits ``[batch, kv_heads, group, q_len, kv_len]``.
- ``splash``: Pallas splash attention for TPUs (``splash_attention.py``), flash-style: no logits
  in memory. ``attention_interpret`` runs it in Pallas interpret mode on any platform (tests).
- ``cudnn``: ``jax.nn.dot_product_attention(implementation="cudnn")`` on NVIDIA GPUs (bfloat16 or
  float16 only).
- ``auto``: splash on TPU, cuDNN on an NVIDIA GPU for 16-bit compute, xla otherwise; never fails.

The platform is that of the active mesh (compile-only TPU devices count as TPUs), else JAX's
default backend. Decoding with a KV cache (queries and keys in different slots) always takes the
XLA path, which works with the preallocated cache on every platform. With one row (batch 1) the
cache is updated and read without its unit batch axis (``one_row_cache_attention``): XLA drops
that axis from the attention dots, and the reshape between the updated cache and the dots made
XLA:CPU copy each layer's keys four times and transpose its values at every decoded token.

Layouts: queries ``[batch, q_len, heads, head_dim]``, keys/values
``[batch, kv_len, kv_heads, head_dim]``; the mask is an ``AttentionMask`` (``attention_mask.py``).
In the XLA path a query that may see no key (a padding position) gets a uniform distribution
instead of NaN; its output is never used.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
from flax import nnx
from jax.ad_checkpoint import checkpoint_name

from emollm_jax.config.model import ATTENTION_KINDS
from emollm_jax.errors import ConfigError
from emollm_jax.models import remat, rope
from emollm_jax.models.attention_mask import AttentionMask
from emollm_jax.models.layers import Dense, lora_kwargs
from emollm_jax.models.splash_attention import splash_attention
from emollm_jax.sharding.context import active, constrain

if TYPE_CHECKING:
    from emollm_jax.config.model import LoraConfig, ModelConfig

_MASKED = -0.7 * float(jnp.finfo(jnp.float32).max)


@dataclasses.dataclass(frozen=True)
class AttentionSettings:
    """The implementation and its options (static: part of the compiled program)."""

    kind: str = "xla"
    interpret: bool = False
    block_q: int = 512
    block_kv: int = 512
    fused_backward: bool = False

    @classmethod
    def of(cls, cfg: ModelConfig) -> AttentionSettings:
        return cls(
            cfg.attention,
            cfg.attention_interpret,
            cfg.attention_block_q,
            cfg.attention_block_kv,
            cfg.attention_fused_backward,
        )


def _is_nvidia(device) -> bool:
    return device.platform == "gpu" and "nvidia" in getattr(device, "device_kind", "").lower()


def _device():
    current = active()
    return current[0].devices.flat[0] if current is not None else jax.devices()[0]


def resolve(settings: AttentionSettings, device, dtype) -> str:
    """The implementation ``settings`` asks for on ``device`` for ``dtype`` compute."""
    if settings.kind != "auto":
        return settings.kind
    if device.platform == "tpu":
        return "splash"
    if _is_nvidia(device) and jnp.dtype(dtype) in (jnp.bfloat16, jnp.float16):
        return "cudnn"
    return "xla"


def check_platform(cfg: ModelConfig, device) -> None:
    """Fail at start-up, naming the field, when ``cfg.attention`` cannot run on ``device``."""
    field = "model.attention"
    if cfg.attention == "splash" and device.platform != "tpu" and not cfg.attention_interpret:
        raise ConfigError(
            field,
            f"'splash' is a TPU kernel and this platform is {device.platform!r}; use 'auto' or "
            "'xla', or set config.model.attention_interpret=True to run it in Pallas interpret "
            "mode (slow: tests only)",
            value=cfg.attention,
        )
    if cfg.attention == "cudnn":
        if not _is_nvidia(device):
            raise ConfigError(
                field,
                f"'cudnn' needs an NVIDIA GPU and this platform is {device.platform!r} "
                f"({getattr(device, 'device_kind', '?')}); use 'auto' or 'xla'",
                value=cfg.attention,
            )
        if cfg.dtype not in ("bfloat16", "float16"):
            raise ConfigError(
                field,
                f"'cudnn' computes in bfloat16 or float16 only, and config.model.dtype is "
                f"{cfg.dtype!r}",
                value=cfg.attention,
            )


def xla_attention(
    q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array | None, scale: float
) -> jax.Array:
    """The reference: grouped-query attention with a dense boolean ``mask``
    ``[batch or 1, 1, q_len, kv_len]``; ``heads`` must be a multiple of ``kv_heads``."""
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


def one_row_cache_attention(
    q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array | None, scale: float
) -> jax.Array:
    """``xla_attention`` for one row over its KV cache, in the cache's own layout and without
    a batch axis: ``q [q_len, heads, head_dim]``, ``k``/``v [kv_heads, max_len, head_dim]``,
    ``mask [q_len, max_len]``. The dots take the cache as it lies (batch over kv heads,
    contracting over head_dim, then over slots), so XLA neither copies nor transposes it."""
    t, h, d = q.shape
    kv, group = k.shape[0], h // k.shape[0]
    q = q.reshape(t, kv, group, d).transpose(1, 2, 0, 3).reshape(kv, group * t, d)
    logits = jnp.einsum("kqd,ksd->kqs", q, k, preferred_element_type=jnp.float32) * scale
    if mask is not None:
        logits = jnp.where(jnp.tile(mask, (group, 1))[None], logits, _MASKED)
    probs = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
    out = jnp.einsum("kqs,ksd->kqd", probs, v)  # [kv, group * q_len, head_dim]
    return out.reshape(kv, group, t, d).transpose(2, 0, 1, 3).reshape(t, h, d)


def _cudnn_attention(q, k, v, mask: AttentionMask | None, scale: float) -> jax.Array:
    dense = None
    if mask is not None:
        dense = AttentionMask(
            kv_valid=mask.kv_valid, q_segments=mask.q_segments, kv_segments=mask.kv_segments
        ).dense(q.shape[1], k.shape[1])
    return jax.nn.dot_product_attention(
        q,
        k,
        v,
        mask=dense,
        scale=scale,
        is_causal=mask is not None and mask.causal,
        implementation="cudnn",
    )


def attend(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    mask: AttentionMask | None,
    scale: float,
    settings: AttentionSettings = AttentionSettings(),
) -> jax.Array:
    """Attention through the implementation ``settings`` picks (see the module docstring)."""
    with jax.named_scope("attention"):  # names its ops in the compiled program (cost reports)
        kind = resolve(settings, _device(), q.dtype)
        if kind == "xla" or (mask is not None and mask.cached):
            dense = None if mask is None else mask.dense(q.shape[1], k.shape[1])
            out = xla_attention(q, k, v, dense, scale)
        elif kind == "splash":
            out = splash_attention(
                q,
                k,
                v,
                mask,
                scale,
                block_q=settings.block_q,
                block_kv=settings.block_kv,
                interpret=settings.interpret,
                fused_backward=settings.fused_backward,
            )
        elif kind == "cudnn":
            out = _cudnn_attention(q, k, v, mask, scale)
        else:
            raise ConfigError.not_one_of("model.attention", kind, ATTENTION_KINDS)
        return checkpoint_name(out, remat.ATTENTION_OUT)


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
        settings: AttentionSettings = AttentionSettings(),
    ):
        self.head_dim = head_dim
        self.settings = settings
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
        mask: AttentionMask | None,
        *,
        cos_sin: tuple[jax.Array, jax.Array] | None = None,
        cache: tuple[jax.Array, jax.Array, jax.Array] | None = None,
    ):
        """``x [batch, len, embed]`` -> (``[batch, len, embed]``, updated (k, v) or None).

        ``cache`` is ``(k_cache, v_cache, index)`` with caches ``[batch, kv_heads, max_len,
        head_dim]``: the new keys and values are written at ``index`` and attention runs over
        the whole cache (the mask hides empty slots). The seam sees the cache through a
        transpose that XLA folds into the attention einsums, so no step copies the cache.
        """
        q = constrain(self.q(x), ("batch", "length", "heads", "head_dim"))
        k = constrain(self.k(x), ("batch", "length", "kv_heads", "head_dim"))
        v = constrain(self.v(x), ("batch", "length", "kv_heads", "head_dim"))
        if cos_sin is not None:
            q = rope.apply(q, *cos_sin)
            k = rope.apply(k, *cos_sin)
        q, k, v = (checkpoint_name(x, name) for x, name in zip((q, k, v), remat.QKV))
        new_cache = None
        if cache is not None and cache[0].shape[0] == 1:
            return self._one_row_cached(q, k, v, mask, cache)
        if cache is not None:
            k_cache, v_cache, index = cache
            new_cache = tuple(
                jax.lax.dynamic_update_slice_in_dim(c, x.swapaxes(1, 2).astype(c.dtype), index, 2)
                for c, x in ((k_cache, k), (v_cache, v))
            )
            k, v = (c.swapaxes(1, 2) for c in new_cache)  # [batch, max_len, kv_heads, head_dim]
        out = attend(q, k, v, mask, self.head_dim**-0.5, self.settings)
        return checkpoint_name(self.o(out), remat.ATTENTION_PROJ), new_cache

    def _one_row_cached(self, q, k, v, mask: AttentionMask | None, cache):
        """``__call__`` with a cache of one row: the cache is written and read as
        ``[kv_heads, max_len, head_dim]`` (``one_row_cache_attention``)."""
        k_cache, v_cache, index = cache
        k1, v1 = (
            jax.lax.dynamic_update_slice_in_dim(c[0], x[0].swapaxes(0, 1).astype(c.dtype), index, 1)
            for c, x in ((k_cache, k), (v_cache, v))
        )
        dense = None if mask is None else mask.dense(q.shape[1], k_cache.shape[2])
        with jax.named_scope("attention"):  # as ``attend`` names it
            out = one_row_cache_attention(
                q[0], k1, v1, None if dense is None else dense[0, 0], self.head_dim**-0.5
            )
        return self.o(out[None]), (k1[None], v1[None])
