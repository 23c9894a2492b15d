"""One jitted training step: microbatches accumulated inside the step, loss normalised by the
global number of target tokens (optionally chunked over the sequence: ``train.loss_chunk``),
clipped AdamW update skipped when not finite."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from emollm_jax.models.forward import forward, model_kwargs
from emollm_jax.sharding.context import use_mesh_rules
from emollm_jax.sharding.rules import state_shardings
from emollm_jax.train.loss import chunked_loss_sums, loss_sums
from emollm_jax.train.optimizer import nonfinite_counts
from emollm_jax.train.state import TrainState

def batch_loss_sums(
    model: nnx.Module, batch: dict[str, jax.Array], loss_chunk: int = 0
) -> tuple[jax.Array, jax.Array]:
    """(summed cross-entropy, target tokens) of a batch: from the full logits, or with
    ``loss_chunk`` > 0 from the hidden states ``loss_chunk`` positions at a time; weighted by
    the batch's ``loss_weights`` when it has them."""
    weights = batch.get("loss_weights")
    if loss_chunk <= 0:
        return loss_sums(forward(model, batch), batch["labels"], weights)
    hidden = model.features(batch["input_ids"], **model_kwargs(model, batch))
    return chunked_loss_sums(hidden, model.logits, batch["labels"], loss_chunk, weights)


def ema_update(ema, params, step: jax.Array, decay: float):
    """The moving average after the update of step ``step`` (counted from 0): ``d * ema + (1 -
    d) * params``, with ``d = min(decay, (1 + step) / (10 + step))`` so that the first steps,
    far from where training ends, soon weigh little. Kept in ``ema``'s dtype."""
    d = jnp.minimum(decay, (1.0 + step) / (10.0 + step))
    averaged = optax.incremental_update(params, ema, 1.0 - d)
    return jax.tree.map(lambda a, e: a.astype(e.dtype), averaged, ema)


def _split_microbatches(batch: dict, accum: int) -> dict:
    """``[B, ...]`` -> ``[accum, B / accum, ...]``, microbatch ``i`` taking rows ``i, i + accum,
    ...``: every device keeps rows of every microbatch, so none idles."""

    def split(x):
        if x.shape[0] % accum:
            raise ValueError(
                f"batch of {x.shape[0]} rows is not divisible by train.grad_accum_steps={accum}"
            )
        x = x.reshape(x.shape[0] // accum, accum, *x.shape[1:])
        return jnp.swapaxes(x, 0, 1)

    return jax.tree.map(split, batch)


def _constrain_like(trainable, mesh, rules):
    """A function constraining a tree shaped like ``trainable`` to the parameters' shardings
    (the identity without a mesh)."""
    if mesh is None:
        return lambda tree: tree
    shardings = state_shardings(trainable, mesh, rules)
    return lambda tree: jax.lax.with_sharding_constraint(tree, shardings)


def make_train_step(
    graphdef: nnx.GraphDef,
    tx: optax.GradientTransformation,
    lr_schedule: optax.Schedule,
    *,
    grad_accum_steps: int = 1,
    loss_chunk: int = 0,
    ema_decay: float = 0.0,
    mesh=None,
    rules=(),
) -> Callable[[TrainState, dict], tuple[TrainState, dict]]:
    """The (unjitted) step function ``(state, batch) -> (state, metrics)``; with ``ema_decay``
    it also moves ``state.ema`` towards the updated parameters (``ema_update``)."""

    def loss_fn(trainable, frozen, batch):
        model = nnx.merge(graphdef, trainable, frozen)
        return batch_loss_sums(model, batch, loss_chunk)

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
        with use_mesh_rules(mesh, rules) if mesh is not None else contextlib.nullcontext():
            # Gradients live where their parameters do: left to itself, XLA may keep an
            # accumulator (or the whole gradient) replicated, a full copy of the model per chip.
            like_params = _constrain_like(state.trainable, mesh, rules)
            if grad_accum_steps == 1:
                (loss_sum, count), grads = grad_fn(state.trainable, state.frozen, batch)
                grads = like_params(grads)
            else:
                micro = _split_microbatches(batch, grad_accum_steps)
                zeros = like_params(jax.tree.map(jnp.zeros_like, state.trainable))

                def accumulate(carry, mb):
                    grads, loss_sum, count = carry
                    (s, n), g = grad_fn(state.trainable, state.frozen, mb)
                    grads = like_params(jax.tree.map(jnp.add, grads, like_params(g)))
                    return (grads, loss_sum + s, count + n), None

                init = (zeros, jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32))
                (grads, loss_sum, count), _ = jax.lax.scan(accumulate, init, micro)
            denom = jnp.maximum(count, 1.0)
            loss = loss_sum / denom
            # Divided by the token count, or by NaN when the loss is not finite (which poisons
            # the gradient, so the optimizer skips the update): one elementwise pass.
            divisor = jnp.where(jnp.isfinite(loss), denom, jnp.nan)
            grads = jax.tree.map(lambda g: g / divisor, grads)
            with jax.named_scope("optimizer"):
                grad_norm = optax.tree.norm(grads)
                updates, opt_state = tx.update(grads, state.opt_state, state.trainable)
                trainable = optax.apply_updates(state.trainable, updates)
            consecutive, total = nonfinite_counts(opt_state)
            metrics = dict(
                loss=loss,
                grad_norm=grad_norm,
                target_tokens=count,
                tokens=jnp.sum(batch["attention_mask"]).astype(jnp.float32),
                learning_rate=lr_schedule(state.step),
                nonfinite_consecutive=consecutive,
                nonfinite_total=total,
            )
            new_state = state.replace(step=state.step + 1, trainable=trainable, opt_state=opt_state)
            if ema_decay:
                with jax.named_scope("ema"):
                    ema = like_params(ema_update(state.ema, trainable, state.step, ema_decay))
                new_state = new_state.replace(ema=ema)
            return new_state, metrics

    return step
