"""The training state: what a step reads and writes, and what a checkpoint holds."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
from flax import nnx


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar: steps taken
    trainable: nnx.State  # parameters that learn
    frozen: nnx.State  # parameters that do not (no gradient, no optimizer state)
    opt_state: Any  # optax state over `trainable` only
    rng: jax.Array  # base PRNG key; step s uses fold_in(rng, s)
    ema: Any = None  # moving average of `trainable` (train.ema_decay > 0), else None
