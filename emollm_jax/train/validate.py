"""Start-up checks of a training config against the devices; each error names the field and
the numbers."""

from __future__ import annotations

from jax.sharding import Mesh

from emollm_jax.config.errors import ConfigError
from emollm_jax.data.data_config import check_data_config
from emollm_jax.models.config import ModelConfig
from emollm_jax.sharding.mesh import batch_axes, batch_ways
from emollm_jax.sharding.strategies import Rules


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
