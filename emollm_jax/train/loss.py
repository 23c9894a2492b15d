"""Next-token cross-entropy over assistant tokens only, optionally weighted per token.

Returns sums, not means: the train step divides the summed loss of every microbatch on every
device by the number of target tokens of the whole global batch, so each token weighs the same
whatever the microbatching or sharding. With per-token ``weights`` (the batch's
``loss_weights``, aligned with the labels) the sums are ``sum(w * ce)`` and ``sum(w)``: the loss
is the weighted mean over target tokens, and the "target tokens" are the summed weights.

``loss_sums`` takes the logits ``[B, T, vocab]``. ``chunked_loss_sums`` takes the final hidden
states and the LM head instead and never holds more than ``[B, chunk, vocab]`` logits: a scan
over chunks of the sequence computes each chunk's logits and cross-entropy, and its backward
pass recomputes them chunk by chunk (the chunk body is rematerialised), so the float32
``[B, T, vocab]`` logits of a 32k vocabulary never exist, forward or backward.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

IGNORE = -100


def _target_sums(
    logits: jax.Array, targets: jax.Array, weights: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """(summed cross-entropy, number of targets) of ``logits [B, n, V]`` against already
    shifted ``targets [B, n]``; with ``weights [B, n]`` each target's term and count weighted."""
    mask = targets != IGNORE
    ce = optax.softmax_cross_entropy_with_integer_labels(
        logits.astype(jnp.float32), jnp.where(mask, targets, 0)
    )
    w = mask.astype(jnp.float32)
    if weights is not None:
        w = jnp.where(mask, weights.astype(jnp.float32), 0.0)
    return jnp.sum(ce * w), jnp.sum(w)


def loss_sums(
    logits: jax.Array, labels: jax.Array, weights: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """``logits [B, T, V]``, ``labels [B, T]`` (HF convention, unshifted; -100 = ignore) ->
    (sum of cross-entropy over target tokens, number of target tokens); ``weights [B, T]``
    (aligned with ``labels``) weigh each target."""
    with jax.named_scope("loss"):
        shifted = None if weights is None else weights[:, 1:]
        return _target_sums(logits[:, :-1], labels[:, 1:], shifted)


def chunked_loss_sums(
    hidden: jax.Array,
    logits_fn: Callable[[jax.Array], jax.Array],
    labels: jax.Array,
    chunk: int,
    weights: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """What ``loss_sums(logits_fn(hidden), labels, weights)`` returns, ``chunk`` positions at a
    time.

    ``hidden [B, T, D]`` are the final hidden states and ``logits_fn`` the LM head
    (``[B, n, D] -> [B, n, V]``). The sequence's last ``T - 1`` predicting positions are padded
    with ignored targets up to a multiple of ``chunk``.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    with jax.named_scope("loss"):
        b, t, d = hidden.shape
        n = -(-(t - 1) // chunk)
        pad = n * chunk - (t - 1)
        h = jnp.pad(hidden[:, :-1], ((0, 0), (0, pad), (0, 0)))
        targets = jnp.pad(labels[:, 1:], ((0, 0), (0, pad)), constant_values=IGNORE)
        if weights is None:
            weights = jnp.ones(labels.shape, jnp.float32)
        w = jnp.pad(weights[:, 1:].astype(jnp.float32), ((0, 0), (0, pad)))
        h_chunks = h.reshape(b, n, chunk, d).swapaxes(0, 1)  # [n, B, chunk, D]
        t_chunks = targets.reshape(b, n, chunk).swapaxes(0, 1)  # [n, B, chunk]
        w_chunks = w.reshape(b, n, chunk).swapaxes(0, 1)  # [n, B, chunk]

        # Saves nothing but its inputs: the backward pass recomputes one chunk's logits.
        @jax.checkpoint
        def chunk_sums(h_c, t_c, w_c):
            return _target_sums(logits_fn(h_c), t_c, w_c)

        def body(carry, xs):
            s, c = chunk_sums(*xs)
            return (carry[0] + s, carry[1] + c), None

        zero = jnp.zeros((), jnp.float32)
        (total, count), _ = jax.lax.scan(body, (zero, zero), (h_chunks, t_chunks, w_chunks))
        return total, count
