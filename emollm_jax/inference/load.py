"""The one loader of a model to run: a Hugging Face folder or an Orbax training run.

``load_hf_or_run(path, config)`` serves training (``train.init_from``), evaluation
(``python -m emollm_jax.evaluate``) and the EmoPrompt teacher
(``emollm annotate``):

- a folder with a ``config.json`` is a Hugging Face model (``emollm_jax.convert.hf_io.load_hf``),
  built from that config.json;
- anything else is an Orbax training run (or its ``checkpoints`` folder): its latest complete
  checkpoint is restored (``emollm_jax.checkpoint.restore.restore_model``), the model built from
  ``config.model`` when a config is given, else from the config the checkpoint recorded.

With a config, the attention implementation is ``config.model``'s (this machine's), not the
stored one, and is checked against the mesh's platform. ``overrides`` replace ModelConfig
fields in both cases (the forward-only ones: attention kernel, dtype...). The step restored is
returned with the model (None for Hugging Face).
"""

from __future__ import annotations

import os

from flax import nnx

from emollm_jax.checkpoint.manager import RunCheckpoints, checkpoint_root
from emollm_jax.checkpoint.restore import restore_model
from emollm_jax.config.model import ATTENTION_FIELDS, ModelConfig, from_config_dict
from emollm_jax.convert.hf_io import load_hf
from emollm_jax.errors import ConfigError
from emollm_jax.models.attention import check_platform
from emollm_jax.models.visual_tokens import tokens_per_frame
from emollm_jax.paths import as_path


def is_hf_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a Hugging Face model folder (it has a ``config.json``)."""
    return (as_path(path) / "config.json").exists()


def load_hf_or_run(
    path: str | os.PathLike,
    config=None,
    *,
    what: str = "--checkpoint",
    mesh=None,
    rules=(),
    **overrides,
) -> tuple[nnx.Module, int | None]:
    """The model of ``path`` and the checkpoint step it was restored from (None for a Hugging
    Face folder); see the module docstring. ``what`` names ``path`` in errors (the flag or
    config field it came from)."""
    if config is not None:
        wanted = from_config_dict(config.model)
        if mesh is not None:
            check_platform(wanted, mesh.devices.flat[0])
        overrides = {k: getattr(wanted, k) for k in ATTENTION_FIELDS} | overrides
    if is_hf_folder(path):
        return load_hf(path, mesh=mesh, rules=rules, **overrides), None
    if not as_path(path).is_dir():
        raise FileNotFoundError(f"{what} {path}: no such folder")
    step = RunCheckpoints(checkpoint_root(path), read_only=True).latest_step()
    if step is None:
        raise FileNotFoundError(
            f"{what} {path}: neither a Hugging Face folder (no config.json) nor a "
            f"training run with a complete checkpoint"
        )
    return restore_model(path, config, step=step, mesh=mesh, rules=rules, **overrides), step


def check_model_matches(model_cfg: ModelConfig, config_model: ModelConfig) -> None:
    """The prompts (built from ``config.model``) must fit the loaded model."""
    if model_cfg.has_vision != config_model.has_vision:
        raise ConfigError(
            f"config.model.arch: {config_model.arch!r}, but the checkpoint holds a "
            f"{model_cfg.arch!r} model"
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
            raise ConfigError(f"config.model.{field}: {ours!r}, but the checkpoint has {theirs!r}")


__all__ = ["check_model_matches", "is_hf_folder", "load_hf_or_run"]
