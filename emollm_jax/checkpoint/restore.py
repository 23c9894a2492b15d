"""Load a model from a training run's Orbax checkpoint (the latest complete one by default)."""

from __future__ import annotations

import dataclasses
import logging
import os

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding

from emollm_jax.checkpoint.manager import RunCheckpoints, checkpoint_root
from emollm_jax.config.eval import WEIGHTS
from emollm_jax.config.model import ModelConfig, from_config_dict
from emollm_jax.errors import ConfigError
from emollm_jax.models.build import abstract_model
from emollm_jax.sharding.rules import state_shardings
from emollm_jax.sharding.strategies import Rules

log = logging.getLogger(__name__)


def params_target(abstract_state: nnx.State, mesh: Mesh | None, rules: Rules = ()) -> dict:
    """The ``params`` item's restore target: a pure dict of ``ShapeDtypeStruct``s carrying the
    shardings wanted now (one device without a mesh)."""
    if mesh is None:
        device = jax.devices()[0]
        mesh = jax.sharding.Mesh(np.asarray([device]), ("d",))
        rules = ()
    shardings = nnx.to_pure_dict(state_shardings(abstract_state, mesh, rules))
    shapes = nnx.to_pure_dict(abstract_state)
    return jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
        shapes,
        shardings,
        is_leaf=lambda x: isinstance(x, NamedSharding),
    )


def model_config_from(path: str | os.PathLike, step: int | None = None) -> ModelConfig:
    """The ModelConfig a checkpoint was written with (from its ``meta`` item)."""
    meta = RunCheckpoints(checkpoint_root(path), read_only=True).read_meta(step)
    return from_config_dict(meta["model"])


def restore_model(
    path: str | os.PathLike,
    config=None,
    *,
    step: int | None = None,
    mesh: Mesh | None = None,
    rules: Rules = (),
    weights: str = "auto",
    **overrides,
) -> nnx.Module:
    """A model with the parameters of ``path`` (a run folder, its ``checkpoints`` folder).

    The model is built from ``config.model`` when a config is given, else from the config the
    checkpoint recorded; ``overrides`` replace ModelConfig fields (e.g. ``dtype``). ``weights``:
    ``params`` (the parameters training goes on from), ``ema`` (the moving average a run with
    ``train.ema_decay`` keeps of its learning parameters; the frozen ones are the parameters)
    or ``auto`` (the moving average when the checkpoint keeps one).
    """
    if weights not in WEIGHTS:
        raise ConfigError("eval.weights", value=weights, expected=" or ".join(WEIGHTS))
    ckpts = RunCheckpoints(checkpoint_root(path), read_only=True)
    if config is not None:
        cfg = from_config_dict(config.model)
    else:
        cfg = from_config_dict(ckpts.read_meta(step)["model"])
    if overrides:
        cfg = dataclasses.replace(cfg, **overrides)
    graphdef, abstract_state = nnx.split(abstract_model(cfg))
    target = params_target(abstract_state, mesh, rules)
    step = ckpts.latest_step() if step is None else step
    stored = None if weights == "params" or step is None else ckpts.ema_tree(step)
    if weights == "ema" and stored is None and step is not None:
        raise ConfigError(
            "eval.weights",
            f"checkpoint {step} of {path} keeps no moving average (its run had "
            "train.ema_decay=0): pass eval.weights=params or auto",
            value=weights,
        )
    ema = None if stored is None else _like(target, stored)
    restored = ckpts.restore(step, params=target, ema=ema)
    state = abstract_state
    nnx.replace_by_pure_dict(state, restored["params"])
    if ema is not None:
        nnx.replace_by_pure_dict(state, restored["ema"])
        log.info("checkpoint %d: the moving average of its learning parameters", restored["step"])
    return nnx.merge(graphdef, state)


def weights_read(path: str | os.PathLike, step: int, weights: str = "auto") -> str:
    """Which weights ``restore_model(path, step=step, weights=weights)`` reads: ``ema`` (the
    moving average) or ``params``; ``auto`` resolved by whether the step keeps an average."""
    if weights == "params":
        return "params"
    ckpts = RunCheckpoints(checkpoint_root(path), read_only=True)
    return "ema" if ckpts.ema_tree(step) is not None else "params"


def _like(target: dict, stored: dict) -> dict:
    """The part of ``target`` (a pure dict of every parameter) whose paths ``stored`` holds
    (a stored tree, whose keys Orbax keeps as strings)."""
    keys = {str(k): k for k in target}
    return {
        keys[k]: _like(target[keys[k]], v) if isinstance(v, dict) else target[keys[k]]
        for k, v in stored.items()
    }


__all__ = ["restore_model", "model_config_from", "params_target", "weights_read"]
