"""Next-token cross-entropy over assistant tokens only.

Returns sums, not means: the train step divides the summed loss of every microbatch on every
device by the number of target tokens of the whole global batch, so each token weighs the same
whatever the microbatching or sharding.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

IGNORE = -100


def loss_sums(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``logits [B, T, V]``, ``labels [B, T]`` (HF convention, unshifted; -100 = ignore) ->
    (sum of cross-entropy over target tokens, number of target tokens)."""
    with jax.named_scope("loss"):
        targets = labels[:, 1:]
        mask = targets != IGNORE
        ce = optax.softmax_cross_entropy_with_integer_labels(
            logits[:, :-1].astype(jnp.float32), jnp.where(mask, targets, 0)
        )
        return jnp.sum(ce * mask), jnp.sum(mask).astype(jnp.float32)
