"""Every typed section of a config, built and checked once at load: ``build_sections(config)``
turns the ``ConfigDict`` (what ``--config`` and the ``--config.a.b=v`` overrides make) into
frozen dataclasses, and a bad key or value raises ``ConfigError`` naming the field. ``model``
is ``config/model.py``'s ``ModelConfig``; the others are one module each in this folder."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from emollm_jax.config.checkpoint import CheckpointConfig
from emollm_jax.config.data import DataConfig
from emollm_jax.config.distributed import DistributedConfig
from emollm_jax.config.emoprompt import EmoPromptConfig
from emollm_jax.config.eval import EvalConfig
from emollm_jax.config.log import LogConfig
from emollm_jax.config.mesh import MeshConfig
from emollm_jax.config.recipe import RecipeConfig
from emollm_jax.config.section import build, describe
from emollm_jax.config.train import TrainConfig

# The sections besides ``model``, in the order ``emollm config show`` lists them.
SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "emoprompt": EmoPromptConfig,
    "train": TrainConfig,
    "mesh": MeshConfig,
    "checkpoint": CheckpointConfig,
    "log": LogConfig,
    "recipe": RecipeConfig,
    "distributed": DistributedConfig,
    "eval": EvalConfig,
}


@dataclasses.dataclass(frozen=True)
class Sections:
    """The typed sections of one config (a section the config lacks takes its defaults)."""

    data: DataConfig
    emoprompt: EmoPromptConfig
    train: TrainConfig
    mesh: MeshConfig
    checkpoint: CheckpointConfig
    log: LogConfig
    recipe: RecipeConfig
    distributed: DistributedConfig
    eval: EvalConfig


def build_sections(config) -> Sections:
    """The typed sections of ``config`` (a ``ConfigDict`` or mapping), each field checked."""
    return Sections(
        **{name: build(cls, name, _plain(config.get(name))) for name, cls in SECTIONS.items()}
    )


def _plain(section) -> Any:
    return section.to_dict() if hasattr(section, "to_dict") else section


def fields() -> Iterator[tuple[str, str, Any, str]]:
    """(``section.field``, type, default, meaning) of every field of every section."""
    for name, cls in SECTIONS.items():
        yield from describe(cls, name)
