"""Which parameters train, by config: the training stage, the vision switch and LoRA.

- stage 1: only the projector learns (vision encoder and LLM frozen), as LLaVA's pre-training;
- stage 2: projector + LLM (+ the vision encoder when ``train.train_vision``);
- with ``model.lora.rank > 0`` the LLM's base weights stay frozen and only its adapters (and
  the projector) learn.

Frozen parameters are split off before differentiation, so they get no gradient and carry no
optimizer state.
"""

from __future__ import annotations

from flax import nnx

from emollm_jax.config.model import ModelConfig
from emollm_jax.errors import ConfigError


def trainable_filter(model_cfg: ModelConfig, stage: int, train_vision: bool = False):
    """An nnx filter selecting the trainable variables."""
    if stage not in (1, 2):
        raise ConfigError("train.stage", value=stage, expected="1 or 2")
    lora = model_cfg.lora.rank > 0
    llm = nnx.LoRAParam if lora else nnx.Param
    if model_cfg.arch == "llava":
        parts = [nnx.All(nnx.Param, nnx.PathContains("projector"))]
        if stage == 2:
            parts.append(nnx.All(llm, nnx.PathContains("language_model")))
            if train_vision:
                parts.append(nnx.All(nnx.Param, nnx.PathContains("vision_tower")))
        return nnx.Any(*parts)
    if model_cfg.arch in ("llama", "qwen2"):
        return llm
    return nnx.Param  # a bare vision tower


def split(model: nnx.Module, trainable):
    """``(graphdef, trainable_state, frozen_state)``."""
    return nnx.split(model, trainable, ...)
