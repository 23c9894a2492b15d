"""Pallas splash attention (TPU) behind the attention seam, sharded with ``jax.shard_map``.

Grouped-query attention runs as the kernel's MQA form once per KV head (the ``group`` query
heads of a KV head share its keys: nothing is repeated in memory), vmapped over KV heads and
rows. Padding, packed examples and the block padding added here are segment ids (0 = padding;
``AttentionMask.segment_ids``). Sequences are padded to a multiple of 128 (the kernel's lane
width) and the block sizes are the largest multiples of 128, at most the configured ones, that
divide the padded length. Queries are scaled before the kernel (it does not scale).

A Mosaic kernel cannot be partitioned automatically: under an active mesh (``use_mesh_rules``)
the kernel runs inside ``jax.shard_map`` over the rows and the KV heads as the rule table places
``batch`` and ``kv_heads`` (the query heads follow their KV head); the sequence stays whole per
device. On a machine without a TPU, ``interpret=True`` runs the same kernel in Pallas interpret
mode (tests).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental.pallas.ops.tpu import splash_attention as splash
from jax.sharding import PartitionSpec

from emollm_jax.models.attention_mask import AttentionMask
from emollm_jax.models.remat import ATTENTION_RESIDUALS
from emollm_jax.sharding import context
from emollm_jax.sharding.rules import logical_to_spec

LANES = 128
# Checkpoint name of the kernel's residuals (its output and log-sum-exp): the "attention" remat
# policy saves them, so the backward pass does not run the forward kernel again.
RESIDUALS = ATTENTION_RESIDUALS


def _block(requested: int, length: int) -> int:
    """The largest multiple of ``LANES`` that is at most ``requested`` and divides ``length``."""
    best = LANES
    for size in range(LANES, min(requested, length) + 1, LANES):
        if length % size == 0:
            best = size
    return best


@functools.lru_cache(maxsize=64)
def _kernel(
    causal: bool,
    length: int,
    group: int,
    block_q: int,
    block_kv: int,
    interpret: bool,
    fused_backward: bool = False,
):
    one = splash.CausalMask((length, length)) if causal else splash.FullMask((length, length))
    # fused_backward: one backward kernel computes dq beside dk and dv (MaxText's
    # sa_use_fused_bwd_kernel), so there are no dq block sizes.
    sizes = splash.BlockSizes(
        block_q=block_q,
        block_kv=block_kv,
        block_kv_compute=block_kv,
        block_q_dkv=block_q,
        block_kv_dkv=block_kv,
        block_kv_dkv_compute=block_kv,
        block_q_dq=None if fused_backward else block_q,
        block_kv_dq=None if fused_backward else block_kv,
        use_fused_bwd_kernel=fused_backward,
    )
    # Built once per shape, outside any trace: its block tables are concrete constants.
    with jax.ensure_compile_time_eval():
        return splash.make_splash_mqa(
            splash.MultiHeadMask([one] * group),
            block_sizes=sizes,
            head_shards=1,
            q_seq_shards=1,
            residual_checkpoint_name=RESIDUALS,
            interpret=interpret,
        )


def splash_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    mask: AttentionMask | None,
    scale: float,
    *,
    block_q: int = 512,
    block_kv: int = 512,
    interpret: bool = False,
    fused_backward: bool = False,
) -> jax.Array:
    """``q [batch, len, heads, head_dim]``, ``k``/``v [batch, len, kv_heads, head_dim]`` ->
    ``[batch, len, heads, head_dim]`` (self-attention: queries and keys are the same tokens)."""
    b, t, h, d = q.shape
    kv = k.shape[2]
    causal = mask is not None and mask.causal
    needs_ids = mask is not None and (mask.kv_valid is not None or mask.kv_segments is not None)
    padded = -(-t // LANES) * LANES
    seg = mask.segment_ids(b, t) if needs_ids else None
    if padded != t:
        seg = jnp.ones((b, t), jnp.int32) if seg is None else seg
        extra = ((0, 0), (0, padded - t), (0, 0), (0, 0))
        q, k, v = (jnp.pad(x, extra) for x in (q, k, v))
        seg = jnp.pad(seg, ((0, 0), (0, padded - t)))
    kernel = _kernel(
        causal,
        padded,
        h // kv,
        _block(block_q, padded),
        _block(block_kv, padded),
        interpret,
        fused_backward,
    )
    q = (q * jnp.asarray(scale, q.dtype)).astype(q.dtype)

    def local(q, k, v, seg):
        """One device's rows and KV heads."""
        b, t, h, d = q.shape
        kv = k.shape[2]
        q5 = q.reshape(b, t, kv, h // kv, d).transpose(0, 2, 3, 1, 4)  # [b, kv, group, t, d]
        k4, v4 = (x.transpose(0, 2, 1, 3) for x in (k, v))  # [b, kv, t, d]

        def row(q_r, k_r, v_r, seg_r):
            ids = None if seg_r is None else splash.SegmentIds(q=seg_r, kv=seg_r)
            per_head = jax.vmap(lambda qh, kh, vh: kernel(qh, kh, vh, segment_ids=ids))
            return per_head(q_r, k_r, v_r)

        out = jax.vmap(row)(q5, k4, v4, seg)  # [b, kv, group, t, d]
        return out.transpose(0, 3, 1, 2, 4).reshape(b, t, h, d)

    current = context.active()
    if current is None:
        out = local(q, k, v, seg)
    else:
        mesh, rules = current
        # Query heads follow their KV head: shard both as the rules shard kv_heads.
        spec = logical_to_spec(("batch", None, "kv_heads", None), k.shape, rules, mesh)
        args, specs = (q, k, v), (spec, spec, spec)
        if seg is not None:
            args, specs = (*args, seg), (*specs, PartitionSpec(spec[0], None))
        sharded = jax.shard_map(
            lambda q, k, v, seg=None: local(q, k, v, seg),
            mesh=mesh,
            in_specs=specs,
            out_specs=spec,
            check_vma=False,
        )
        out = sharded(*args)
    return out[:, :t]
