"""What an attention kernel is told about which keys a query may see.

Not a dense ``[batch, q_len, kv_len]`` array but the few facts kernels take: causal or not,
the validity of each key (left or right padding, filled KV-cache slots), segment ids that keep
packed examples apart, and, for a KV cache, the slot of each query and key. The plain XLA path
builds the dense mask from these (``dense``); kernels (``splash_attention.py``) take segment ids.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class AttentionMask:
    """``kv_valid [batch, kv_len]`` (bool) marks real keys; ``q_segments [batch, q_len]`` and
    ``kv_segments [batch, kv_len]`` (int) keep packed examples apart; ``q_slots [q_len]`` and
    ``kv_slots [kv_len]`` are positions in the (cached) sequence, used for causality (``None``:
    ``arange``, a query's slot equal to its index)."""

    causal: bool = False
    kv_valid: jax.Array | None = None
    q_segments: jax.Array | None = None
    kv_segments: jax.Array | None = None
    q_slots: jax.Array | None = None
    kv_slots: jax.Array | None = None

    @property
    def cached(self) -> bool:
        """Queries and keys live in different slots (a KV cache): kernels fall back to XLA."""
        return self.q_slots is not None or self.kv_slots is not None

    def dense(self, q_len: int, kv_len: int) -> jax.Array | None:
        """The boolean ``[batch or 1, 1, q_len, kv_len]`` mask, or None when every key is seen."""
        mask = None

        def both(a, b):
            return b if a is None else a & b

        if self.causal:
            q = jnp.arange(q_len) if self.q_slots is None else self.q_slots
            k = jnp.arange(kv_len) if self.kv_slots is None else self.kv_slots
            mask = (k[None, :] <= q[:, None])[None, None]
        if self.kv_valid is not None:
            mask = both(mask, self.kv_valid[:, None, None, :].astype(bool))
        if self.q_segments is not None and self.kv_segments is not None:
            same = self.q_segments[:, None, :, None] == self.kv_segments[:, None, None, :]
            mask = both(mask, same)
        return mask

    def segment_ids(self, batch: int, length: int) -> jax.Array:
        """Kernel segment ids ``[batch, length]`` (int32) of a batch attending to itself: a
        packed example's id (1 when there is no packing), 0 for padding. A padding query then
        sees padding keys only: its output differs from the XLA path's (which gives it every
        valid key, or a uniform average), and is never used."""
        if self.cached:
            raise ValueError("segment ids describe a batch attending to itself, not a KV cache")
        seg = jnp.ones((batch, length), jnp.int32)
        if self.kv_segments is not None:
            seg = self.kv_segments.astype(jnp.int32)
        if self.kv_valid is not None:
            seg = jnp.where(self.kv_valid.astype(bool), seg, 0)
        return seg


def self_attention_mask(
    attention_mask: jax.Array | None, segment_ids: jax.Array | None, *, causal: bool
) -> AttentionMask:
    """The mask of a (packed, padded) batch attending to itself: ``attention_mask [B, T]``
    (1 real, 0 padding) and ``segment_ids [B, T]`` as the data pipeline makes them."""
    return AttentionMask(
        causal=causal,
        kv_valid=None if attention_mask is None else attention_mask.astype(bool),
        q_segments=segment_ids,
        kv_segments=segment_ids,
    )


def cache_mask(q_slots: jax.Array, slot_valid: jax.Array) -> AttentionMask:
    """New queries at ``q_slots [q_len]`` attending to a KV cache whose filled slots are
    ``slot_valid [batch, max_len]`` (causal over slots)."""
    return AttentionMask(
        causal=True,
        kv_valid=slot_valid,
        q_slots=q_slots,
        kv_slots=jnp.arange(slot_valid.shape[1]),
    )
