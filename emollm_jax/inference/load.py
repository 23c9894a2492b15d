"""The one loader of a model to run: a Hugging Face folder or an Orbax training run.

``load_hf_or_run(path, config)`` serves training (``train.init_from``), evaluation
(``python -m emollm_jax.evaluate``) and the EmoPrompt teacher
(``emollm annotate``):

- a folder with a ``config.json`` is a Hugging Face model (``emollm_jax.convert.hf_io.load_hf``),
  built from that config.json;
- anything else is an Orbax training run (or its ``checkpoints`` folder): its latest complete
  checkpoint (or the step asked for) is restored
  (``emollm_jax.checkpoint.restore.restore_model``), the model built from ``config.model`` when
  a config is given, else from the config the checkpoint recorded.

Refused as a ``CheckpointChoiceError`` (a user's mistake: exit status 2): a step the run does
not have; a checkpoint whose parameters do not fit ``config.model`` (the fields in which the
stored config differs are named); a checkpoint that cannot be read (named by step and file,
with the latest earlier step that restores and, through ``pick``, how to choose it).

With a config, the attention implementation is ``config.model``'s (this machine's), not the
stored one, and is checked against the mesh's platform. ``overrides`` replace ModelConfig
fields in both cases (the forward-only ones: attention kernel, dtype...). The step restored is
returned with the model (None for Hugging Face).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import jax
from flax import nnx

from emollm_jax.checkpoint.manager import CheckpointReadError, RunCheckpoints, checkpoint_root
from emollm_jax.checkpoint.restore import restore_model
from emollm_jax.checkpoint.usable import config_differences, unreadable
from emollm_jax.config.model import (
    ATTENTION_FIELDS,
    FORWARD_ONLY,
    ModelConfig,
    from_config_dict,
    to_dict,
)
from emollm_jax.convert.hf_io import load_hf
from emollm_jax.errors import CheckpointChoiceError, ConfigError
from emollm_jax.models.attention import check_platform
from emollm_jax.models.build import abstract_model
from emollm_jax.models.visual_tokens import tokens_per_frame
from emollm_jax.paths import as_path


def is_hf_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a Hugging Face model folder (it has a ``config.json``)."""
    return (as_path(path) / "config.json").exists()


def load_hf_or_run(
    path: str | os.PathLike,
    config=None,
    *,
    step: int | None = None,
    what: str = "--checkpoint",
    pick: Callable[[int], str] | None = None,
    mesh=None,
    rules=(),
    weights: str = "auto",
    **overrides,
) -> tuple[nnx.Module, int | None]:
    """The model of ``path`` and the checkpoint step it was restored from (None for a Hugging
    Face folder); see the module docstring. ``step``: a training run's checkpoint to restore
    (default: the latest complete one). ``what`` names ``path`` in errors (the flag or config
    field it came from); ``pick(step)`` says how to choose another step when the one asked for
    cannot be read (None: the intact step is named only). ``weights``: a run's parameters or
    the moving average it keeps of them (``restore_model``); a Hugging Face folder holds one
    set, which ``ema`` refuses."""
    if config is not None:
        wanted = from_config_dict(config.model)
        if mesh is not None:
            check_platform(wanted, mesh.devices.flat[0])
        overrides = {k: getattr(wanted, k) for k in ATTENTION_FIELDS} | overrides
    if is_hf_folder(path):
        if step is not None:
            raise CheckpointChoiceError(
                f"checkpoint step {step}: {what} {path} is a Hugging Face folder, which holds "
                "one model and no steps"
            )
        if weights == "ema":
            raise ConfigError(
                "eval.weights",
                f"{what} {path} is a Hugging Face folder, which keeps no moving average: pass "
                "eval.weights=params or auto",
                value=weights,
            )
        return load_hf(path, mesh=mesh, rules=rules, **overrides), None
    if not as_path(path).is_dir():
        raise FileNotFoundError(f"{what} {path}: no such folder")
    checkpoints = RunCheckpoints(checkpoint_root(path), read_only=True)
    latest = checkpoints.latest_step()
    if latest is None:
        raise FileNotFoundError(
            f"{what} {path}: neither a Hugging Face folder (no config.json) nor a "
            f"training run with a complete checkpoint"
        )
    if step is None:
        step = latest
    elif step not in checkpoints.all_steps():
        raise CheckpointChoiceError(
            f"checkpoint step {step}: {what} {path} has no checkpoint {step} "
            f"(it has {sorted(checkpoints.all_steps())})"
        )

    def restore(s: int) -> nnx.Module:
        return restore_model(
            path, config, step=s, mesh=mesh, rules=rules, weights=weights, **overrides
        )

    try:
        if config is not None:
            _check_stored_model(checkpoints, step, wanted, f"{what} {path}")
        return restore(step), step
    except CheckpointReadError as e:
        message = unreadable(e, checkpoints, step, pick, probe=restore, none_left="none to pick")
        raise CheckpointChoiceError(message) from e


def _param_shapes(cfg: ModelConfig) -> dict:
    """Every parameter's shape, by path, of a model built from ``cfg`` (nothing allocated)."""
    return jax.tree.map(lambda x: x.shape, nnx.to_pure_dict(nnx.state(abstract_model(cfg))))


def _check_stored_model(checkpoints: RunCheckpoints, step: int, wanted: ModelConfig, where: str):
    """Refuse, naming the fields that differ, a checkpoint whose parameters do not fit the model
    ``wanted`` builds (rather than failing inside the restore on mismatched trees)."""
    try:
        stored = from_config_dict(checkpoints.read_meta(step)["model"])
    except (ConfigError, KeyError):
        return  # no readable model config stored: the restore itself says what does not fit
    forward = {k: getattr(wanted, k) for k in FORWARD_ONLY}  # shape no stored array
    if _param_shapes(dataclasses.replace(stored, **forward)) == _param_shapes(wanted):
        return
    differences = config_differences({"model": to_dict(stored)}, to_dict(wanted))
    raise CheckpointChoiceError(
        f"{where}: checkpoint {step} holds a model of another config, whose parameters do "
        "not fit config.model:\n  " + "\n  ".join(differences) + "\nPass the config the run "
        "was trained with (train_config.json in the run folder records it)."
    )


def check_model_matches(model_cfg: ModelConfig, config_model: ModelConfig) -> None:
    """The prompts (built from ``config.model``) must fit the loaded model."""
    if model_cfg.has_vision != config_model.has_vision:
        raise ConfigError(
            "model.arch",
            f"{config_model.arch!r}, but the checkpoint holds a {model_cfg.arch!r} model",
            value=config_model.arch,
        )
    if not model_cfg.has_vision:
        return
    checks = {
        "image_token_id": (model_cfg.image_token_id, config_model.image_token_id),
        "vision.image_size": (model_cfg.vision.image_size, config_model.vision.image_size),
        "(visual tokens per image)": (tokens_per_frame(model_cfg), tokens_per_frame(config_model)),
    }
    for field, (theirs, ours) in checks.items():
        if theirs != ours:
            raise ConfigError(
                f"model.{field}", f"{ours!r}, but the checkpoint has {theirs!r}", value=ours
            )


__all__ = ["check_model_matches", "is_hf_folder", "load_hf_or_run"]
