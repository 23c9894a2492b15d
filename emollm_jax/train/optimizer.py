"""optax AdamW with warmup + cosine decay, global-norm clipping, and no weight decay on norms,
biases or other vectors; non-finite updates are skipped and counted."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from emollm_jax.sharding.rules import variable_axes


def schedule(train_cfg) -> optax.Schedule:
    """Linear warmup from ``peak / warmup_steps`` (the first update is never wasted at 0) to
    ``peak``, then cosine decay to ``peak * end_lr_ratio`` at ``steps``."""
    peak = train_cfg.learning_rate
    return optax.warmup_cosine_decay_schedule(
        init_value=peak / max(train_cfg.warmup_steps, 1),
        peak_value=peak,
        warmup_steps=train_cfg.warmup_steps,
        decay_steps=max(train_cfg.steps, train_cfg.warmup_steps + 1),
        end_value=peak * train_cfg.end_lr_ratio,
    )


def decay_mask(trainable: nnx.State) -> nnx.State:
    """True where weight decay applies: matrices (2+ dims besides a stacked ``layers`` axis)."""

    def decays(v: nnx.Variable) -> bool:
        axes = variable_axes(v)
        dims = sum(1 for a in axes if a != "layers")
        return dims >= 2 and "norm" not in axes

    return jax.tree.map(
        lambda v: v.replace(decays(v)), trainable, is_leaf=lambda x: isinstance(x, nnx.Variable)
    )


def make_optimizer(train_cfg, trainable: nnx.State) -> optax.GradientTransformation:
    inner = optax.chain(
        optax.clip_by_global_norm(train_cfg.grad_clip_norm),
        optax.adamw(
            schedule(train_cfg),
            b1=train_cfg.b1,
            b2=train_cfg.b2,
            eps=train_cfg.eps,
            weight_decay=train_cfg.weight_decay,
            mask=decay_mask(trainable),
        ),
    )
    return skip_nonfinite(inner)


def skip_nonfinite(inner: optax.GradientTransformation) -> optax.GradientTransformation:
    """``inner``'s update where every gradient is finite; else zero updates and ``inner``'s
    state kept, counted in optax's ``ApplyIfFiniteState`` (what ``optax.apply_if_finite``
    keeps, so checkpoints and ``nonfinite_counts`` read the same state; the host stops the run
    after ``train.max_consecutive_nonfinite``, so this never gives up by itself).

    Unlike ``apply_if_finite``, which branches with ``lax.cond``, the choice is a select on one
    scalar per element: XLA fuses the whole update of each parameter (clip scale, moments,
    parameter) into one pass that writes the donated buffers in place, where the branch made it
    hold the updates and both new moments as full-size temporaries, three extra copies of the
    model in float32 at the end of the step.
    """

    def init(params):
        return optax.ApplyIfFiniteState(
            notfinite_count=jnp.zeros([], jnp.int32),
            last_finite=jnp.array(True, jnp.bool_),
            total_notfinite=jnp.zeros([], jnp.int32),
            inner_state=inner.init(params),
        )

    def update(updates, state, params=None):
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(u)) for u in jax.tree.leaves(updates)]))
        new_updates, new_inner = inner.update(updates, state.inner_state, params)

        def keep(new, old):
            return jnp.where(finite, new, old)

        return jax.tree.map(lambda u: jnp.where(finite, u, 0), new_updates), optax.ApplyIfFiniteState(
            notfinite_count=jnp.where(finite, 0, state.notfinite_count + 1).astype(jnp.int32),
            last_finite=finite,
            total_notfinite=jnp.where(
                finite, state.total_notfinite, state.total_notfinite + 1
            ).astype(jnp.int32),
            inner_state=jax.tree.map(keep, new_inner, state.inner_state),
        )

    return optax.GradientTransformation(init, update)


def nonfinite_counts(opt_state) -> tuple[jax.Array, jax.Array]:
    """(consecutive, total) skipped updates, from ``apply_if_finite``'s state."""
    return opt_state.notfinite_count, opt_state.total_notfinite
