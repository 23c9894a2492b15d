"""Start-up checks of a training config against the devices; each error names the field and
the numbers."""

from __future__ import annotations

from jax.sharding import Mesh

from emollm_jax.models.config import ModelConfig
from emollm_jax.sharding.mesh import batch_axes, batch_ways
from emollm_jax.sharding.strategies import Rules


class TrainConfigError(ValueError):
    pass


def check(config, model_cfg: ModelConfig, mesh: Mesh, rules: Rules) -> None:
    t = config.train
    if t.steps <= 0:
        raise TrainConfigError(f"config.train.steps: must be positive, got {t.steps}")
    if t.grad_accum_steps <= 0:
        raise TrainConfigError(
            f"config.train.grad_accum_steps: must be positive, got {t.grad_accum_steps}"
        )
    if t.get("loss_chunk", 0) < 0:
        raise TrainConfigError(
            f"config.train.loss_chunk: must be >= 0 (0: no chunking), got {t.loss_chunk}"
        )
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
                raise TrainConfigError(
                    f"config.{field}={heads} is not divisible by the tensor axis "
                    f"(config.mesh.shape.tensor={tensor})"
                )
    axes = batch_axes(rules, mesh)
    data_ways = batch_ways(rules, mesh)
    per_step = config.data.batch_size
    if per_step % (data_ways * t.grad_accum_steps):
        raise TrainConfigError(
            f"config.data.batch_size={per_step} is not divisible by the batch axes "
            f"({' x '.join(axes) or 'none'} = {data_ways}) x train.grad_accum_steps "
            f"({t.grad_accum_steps}) = {data_ways * t.grad_accum_steps}"
        )
