"""The training program built from a config and a mesh alone: no data, no weights.

``build_train_program(config, mesh, rules)`` returns the abstract ``TrainState`` (shapes, dtypes
and shardings of every leaf), the batch sharding, and the jitted step with explicit in/out
shardings and the state donated. The Trainer runs exactly this step, and
``python -m emollm_jax.compile`` lowers it for a TPU topology from shapes
(``program.lower(program.abstract_batch(...))``), so what is compiled ahead of time is what trains.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from emollm_jax.config.model import ModelConfig, from_config_dict
from emollm_jax.data.global_batch import batch_sharding
from emollm_jax.models.attention import check_platform
from emollm_jax.models.build import abstract_model
from emollm_jax.sharding.rules import state_shardings, tree_shardings, warn_indivisible
from emollm_jax.sharding.strategies import Rules
from emollm_jax.train import partition
from emollm_jax.train.optimizer import make_optimizer, schedule
from emollm_jax.train.state import TrainState
from emollm_jax.train.step import make_train_step

TOKEN_KEYS = ("input_ids", "attention_mask", "labels", "positions", "segment_ids")


def with_shardings(tree, shardings):
    """``ShapeDtypeStruct``s of ``tree``'s leaves carrying the matching ``shardings``."""
    return jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings
    )


def abstract_batch(
    model_cfg: ModelConfig, sharding, batch_size: int, seq_len: int, frames: int, token_keys
) -> dict:
    """``token_keys`` as ``[batch, seq]`` int32 and, for a LLaVA model with ``frames``, the
    frames ``[batch, frames, C, H, W]`` and their media index, all split by ``sharding``."""
    tokens = jax.ShapeDtypeStruct((batch_size, seq_len), jnp.int32, sharding=sharding)
    batch = {k: tokens for k in token_keys}
    if model_cfg.arch == "llava" and frames:
        v = model_cfg.vision
        pixels = (batch_size, frames, v.num_channels, v.image_size, v.image_size)
        batch["pixel_values"] = jax.ShapeDtypeStruct(pixels, jnp.float32, sharding=sharding)
        batch["frame_media"] = jax.ShapeDtypeStruct(
            (batch_size, frames), jnp.int32, sharding=sharding
        )
    return batch


@dataclasses.dataclass
class TrainProgram:
    model_cfg: ModelConfig
    mesh: Mesh
    rules: Rules
    graphdef: nnx.GraphDef
    trainable_filter: Any
    tx: Any
    abstract_params: nnx.State  # every parameter (trainable and frozen), abstract
    abstract_state: TrainState  # ShapeDtypeStructs with their shardings
    state_shardings: TrainState
    batch_sharding: NamedSharding
    replicated: NamedSharding
    step: Any  # jax.jit(step, in/out shardings, donate state): (state, batch) -> (state, metrics)

    def abstract_batch(self, batch_size: int, seq_len: int, frames: int = 1) -> dict:
        """A global batch of ``batch_size`` rows as ``ShapeDtypeStruct``s (the pipeline's keys)."""
        return abstract_batch(
            self.model_cfg, self.batch_sharding, batch_size, seq_len, frames, TOKEN_KEYS
        )

    def lower(self, batch: dict):
        """The step lowered for ``batch`` (arrays or ``ShapeDtypeStruct``s)."""
        return self.step.lower(self.abstract_state, batch)


def build_train_program(config, mesh: Mesh, rules: Rules, *, warn: bool = True) -> TrainProgram:
    """Everything about the training step that the config and the mesh decide."""
    model_cfg = from_config_dict(config.model)
    check_platform(model_cfg, mesh.devices.flat[0])
    tc = config.train
    model = abstract_model(model_cfg)
    abstract_params = nnx.state(model)
    if warn:
        warn_indivisible(abstract_params, mesh, rules)
    trainable_filter = partition.trainable_filter(model_cfg, tc.stage, tc.train_vision)
    graphdef, abstract_trainable, abstract_frozen = partition.split(model, trainable_filter)
    trainable_sh = state_shardings(abstract_trainable, mesh, rules)
    frozen_sh = state_shardings(abstract_frozen, mesh, rules)
    tx = make_optimizer(tc, abstract_trainable)
    replicated = NamedSharding(mesh, PartitionSpec())
    trainable_sds = with_shardings(abstract_trainable, trainable_sh)
    opt_shapes = jax.eval_shape(tx.init, trainable_sds)
    opt_sh = tree_shardings(opt_shapes, mesh, rules)
    ema = tc.get("ema_decay", 0.0) > 0  # a moving average sharded as the parameters
    shardings = TrainState(
        step=replicated,
        trainable=trainable_sh,
        frozen=frozen_sh,
        opt_state=opt_sh,
        rng=replicated,
        ema=trainable_sh if ema else None,
    )
    key = jax.eval_shape(lambda: jax.random.key(0))
    abstract_state = TrainState(
        step=jax.ShapeDtypeStruct((), jnp.int32, sharding=replicated),
        trainable=trainable_sds,
        frozen=with_shardings(abstract_frozen, frozen_sh),
        opt_state=with_shardings(opt_shapes, opt_sh),
        rng=jax.ShapeDtypeStruct(key.shape, key.dtype, sharding=replicated),
        ema=trainable_sds if ema else None,
    )
    data_sharding = batch_sharding(mesh, rules)
    step_fn = make_train_step(
        graphdef,
        tx,
        schedule(tc),
        grad_accum_steps=tc.grad_accum_steps,
        loss_chunk=tc.get("loss_chunk", 0),
        ema_decay=tc.get("ema_decay", 0.0),
        mesh=mesh,
        rules=rules,
    )
    step = jax.jit(
        step_fn,
        in_shardings=(shardings, data_sharding),
        out_shardings=(shardings, replicated),
        donate_argnums=(0,),
    )
    return TrainProgram(
        model_cfg=model_cfg,
        mesh=mesh,
        rules=rules,
        graphdef=graphdef,
        trainable_filter=trainable_filter,
        tx=tx,
        abstract_params=abstract_params,
        abstract_state=abstract_state,
        state_shardings=shardings,
        batch_sharding=data_sharding,
        replicated=replicated,
        step=step,
    )
