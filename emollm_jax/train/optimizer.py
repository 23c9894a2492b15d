"""optax AdamW with warmup + cosine decay, global-norm clipping, and no weight decay on norms,
biases or other vectors; non-finite updates are skipped and counted."""

from __future__ import annotations

import jax
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
    # The host stops the run after max_consecutive_nonfinite; never let optax give up first.
    return optax.apply_if_finite(inner, max_consecutive_errors=2**30)


def nonfinite_counts(opt_state) -> tuple[jax.Array, jax.Array]:
    """(consecutive, total) skipped updates, from ``apply_if_finite``'s state."""
    return opt_state.notfinite_count, opt_state.total_notfinite
