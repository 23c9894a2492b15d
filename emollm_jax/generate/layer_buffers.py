"""One buffer per layer for what the decoding loop reads or carries (CPU only).

Parameters of the layer stack are stored stacked (``[layers, ...]``, ``models/stack.py``) and so
is the KV cache. XLA:CPU gives a slice its own buffer: inside ``jax.lax.while_loop`` every
decoding step copied every layer's weights out of the stacked arrays and the whole cache out of
(and back into) the stacked cache before any matmul ran, ~3x the memory traffic that reading
the weights once costs. Handing the loop one array per layer and stacking them again inside the
loop body lets XLA fold ``slice(stack(pieces))`` back to the pieces: the body reads each weight
where it lies and updates each layer's cache in place. The pieces are cut once per call, before
the loop.

TPU and GPU compilers read such slices in place (fused into their consumers), and cutting the
pieces would hold a second copy of the weights for the call; ``wanted`` says where to do it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from emollm_jax.sharding.rules import variable_axes


def wanted(platform: str) -> bool:
    return platform == "cpu"


def unstack(x: jax.Array) -> tuple[jax.Array, ...]:
    """``[layers, ...]`` -> one ``[...]`` array per layer."""
    return tuple(x[i] for i in range(x.shape[0]))


def _stacked(v) -> bool:
    return isinstance(v, nnx.Variable) and variable_axes(v)[:1] == ("layers",)


def _is_variable(x) -> bool:
    return isinstance(x, nnx.Variable)


def split_state(state: nnx.State):
    """Per-layer pieces of ``state``'s stacked variables (None for the others)."""
    return jax.tree.map(
        lambda v: unstack(v[...]) if _stacked(v) else None, state, is_leaf=_is_variable
    )


def join_state(state: nnx.State, pieces) -> nnx.State:
    """``state`` with each stacked variable rebuilt from its ``pieces`` (``split_state``)."""
    return jax.tree.map(
        lambda v, p: v.replace(jnp.stack(p)) if p is not None else v,
        state,
        pieces,
        is_leaf=_is_variable,
    )


def split_cache(cache: dict) -> dict:
    """The KV cache with keys and values ``[layers, batch, ...]`` as one array per layer; with
    one row, without the batch axis (``[kv_heads, max_len, head_dim]``: the shape in which the
    attention updates and reads it, ``models/attention.py``; another shape costs copies)."""

    def pieces(x):
        return tuple(p[0] if p.shape[0] == 1 else p for p in unstack(x))

    return {**cache, "k": pieces(cache["k"]), "v": pieces(cache["v"])}


def join_cache(cache: dict) -> dict:
    """``split_cache`` undone."""
    one_row = cache["mask"].shape[0] == 1

    def stack(pieces):
        return jnp.stack([p[None] if one_row else p for p in pieces])

    return {**cache, "k": stack(cache["k"]), "v": stack(cache["v"])}
