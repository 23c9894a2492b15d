"""Start-up checks of a training config: ``check_before_start`` (the config alone, before
anything is created in the workdir) and ``check`` (against the devices); each error names the
field and the numbers."""

from __future__ import annotations

import os

from jax.sharding import Mesh

from emollm_jax.config.model import ModelConfig
from emollm_jax.config.sections import Sections, build_sections
from emollm_jax.data.data_config import check_data_config
from emollm_jax.errors import ConfigError
from emollm_jax.paths import is_url
from emollm_jax.sharding.mesh import batch_axes, batch_ways
from emollm_jax.sharding.strategies import STRATEGIES, Rules


def check_fields(config) -> Sections:
    """Fields every config-taking command can check before it loads anything: every typed
    section (``config/sections.py``: an unknown key, a wrong type, a bad value such as a save
    or log interval that is not positive), and the sharding strategy. Returns the typed
    sections."""
    sections = build_sections(config)
    if config.mesh.strategy not in STRATEGIES:
        raise ConfigError.not_one_of("mesh.strategy", config.mesh.strategy, STRATEGIES)
    return sections


def check_before_start(config) -> Sections:
    """What a training run refuses before it creates anything: ``check_fields``, and a
    ``data.dir`` that is not there. Returns the typed sections."""
    sections = check_fields(config)
    d = config.data
    local_jsonl = d.get("source", "jsonl") == "jsonl" and d.dir and not is_url(d.dir)
    if local_jsonl and not d.get("make_mini_if_missing", False):
        if not os.path.isdir(d.dir):
            where = os.path.abspath(d.dir)
            relative = "" if os.path.isabs(d.dir) else ", relative to the current folder"
            raise ConfigError(
                "data.dir",
                f"no folder {d.dir} (looked in {where}{relative}); build the mini EmoBench "
                f"with `emollm data mini {d.dir}` (or set data.make_mini_if_missing) or point "
                "data.dir at an EmoBench-format folder",
                value=d.dir,
            )
    return sections


def check(config, model_cfg: ModelConfig, mesh: Mesh, rules: Rules) -> None:
    check_data_config(config.data)
    t = config.train
    if t.steps <= 0:
        raise ConfigError("train.steps", value=t.steps, expected="positive")
    if t.grad_accum_steps <= 0:
        raise ConfigError("train.grad_accum_steps", value=t.grad_accum_steps, expected="positive")
    if t.get("loss_chunk", 0) < 0:
        raise ConfigError("train.loss_chunk", value=t.loss_chunk, expected=">= 0 (0: no chunking)")
    tensor = mesh.shape["tensor"]
    if tensor > 1:
        checks = []
        if model_cfg.has_text:
            checks += [
                ("model.text.num_heads", model_cfg.text.num_heads),
                ("model.text.num_kv_heads", model_cfg.text.num_kv_heads),
            ]
        if model_cfg.has_vision:
            checks.append(("model.vision.num_heads", model_cfg.vision.num_heads))
        for field, heads in checks:
            if heads % tensor:
                raise ConfigError(
                    field,
                    f"{heads} is not divisible by the tensor axis "
                    f"(config.mesh.shape.tensor={tensor})",
                    value=heads,
                    expected=f"a multiple of {tensor}",
                )
    axes = batch_axes(rules, mesh)
    data_ways = batch_ways(rules, mesh)
    per_step = config.data.batch_size
    if per_step % (data_ways * t.grad_accum_steps):
        raise ConfigError(
            "data.batch_size",
            f"{per_step} is not divisible by the batch axes "
            f"({' x '.join(axes) or 'none'} = {data_ways}) x train.grad_accum_steps "
            f"({t.grad_accum_steps}) = {data_ways * t.grad_accum_steps}",
            value=per_step,
            expected=f"a multiple of {data_ways * t.grad_accum_steps}",
        )
