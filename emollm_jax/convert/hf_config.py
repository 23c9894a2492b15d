"""Hugging Face ``config.json`` <-> ``ModelConfig``.

Reading goes through transformers' own config classes, so legacy fields (``rope_theta`` and
``rope_scaling`` at the top level, ``image_token_index``...) are understood exactly as
transformers understands them. Writing starts from the original HF config when the model came
from one, so fields we do not model (``initializer_range``, ``architectures``...) survive a
round trip unchanged.

Fields that only change name (or type: lists in JSON, tuples in ours) are listed once, in
``TEXT_FIELDS``, ``VISION_FIELDS`` and ``LLAVA_FIELDS``; ``read_fields`` and ``write_fields`` use
the same table for both directions (the EmoLLM layout, ``emollm_layout.py``, too). What is more
than a rename (RoPE, the family's bias switches) is code beside them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import transformers

from emollm_jax.config.model import (
    ModelConfig,
    ProjectorConfig,
    RopeScaling,
    TextConfig,
    VisionConfig,
)
from emollm_jax.models.layers import ACTIVATIONS

ARCHITECTURES = {
    "LlavaForConditionalGeneration": "llava",
    "LlamaForCausalLM": "llama",
    # Arcee is LLaMA with a plain (not gated) MLP: our llama family with gated_mlp off.
    "ArceeForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen2",
    "CLIPVisionModel": "clip_vision",
}
_MODEL_TYPES = {
    "llava": "llava",
    "llama": "llama",
    "arcee": "llama",
    "qwen2": "qwen2",
    "clip_vision_model": "clip_vision",
}


class UnsupportedConfigError(ValueError):
    """The HF config describes something our models do not compute."""


_REQUIRED = object()


def _same(value):
    return value


def _tuple(value):
    return tuple(value) if isinstance(value, list) else value


def _list(value):
    return list(value) if isinstance(value, tuple) else value


@dataclasses.dataclass(frozen=True)
class Field:
    """One field of ``config.json``: our name, HF's name, and the value's conversion each way
    (applied to values that are not None). ``default``: the value when the HF config lacks the
    field; a field whose default is None is left out of ``config.json`` when ours is None."""

    ours: str
    hf: str
    to_ours: Callable[[Any], Any] = _same
    to_hf: Callable[[Any], Any] = _same
    default: Any = _REQUIRED


TEXT_FIELDS = (  # TextConfig <-> a LlamaConfig / Qwen2Config (LLaVA's text_config)
    Field("vocab_size", "vocab_size"),
    Field("hidden_size", "hidden_size"),
    Field("intermediate_size", "intermediate_size"),
    Field("num_layers", "num_hidden_layers"),
    Field("num_heads", "num_attention_heads"),
    Field("num_kv_heads", "num_key_value_heads"),  # None when reading: num_heads
    Field("head_dim", "head_dim", default=None),
    Field("rms_norm_eps", "rms_norm_eps", float),
    Field("tie_word_embeddings", "tie_word_embeddings", bool),
    Field("max_position_embeddings", "max_position_embeddings"),
    Field("bos_token_id", "bos_token_id"),
    Field("eos_token_id", "eos_token_id", _tuple, _list),
    Field("pad_token_id", "pad_token_id"),
)
VISION_FIELDS = (  # VisionConfig <-> a CLIPVisionConfig (LLaVA's vision_config)
    Field("hidden_size", "hidden_size"),
    Field("intermediate_size", "intermediate_size"),
    Field("num_layers", "num_hidden_layers"),
    Field("num_heads", "num_attention_heads"),
    Field("image_size", "image_size"),
    Field("patch_size", "patch_size"),
    Field("num_channels", "num_channels"),
    Field("layer_norm_eps", "layer_norm_eps", float),
    Field("hidden_act", "hidden_act"),
)
LLAVA_FIELDS = (  # ModelConfig <-> the top level of a LLaVA (or EmoLLM) config.json
    Field("image_token_id", "image_token_index"),
    Field("vision_feature_layer", "vision_feature_layer", _tuple, _list),
    Field("vision_feature_select_strategy", "vision_feature_select_strategy"),
)
PROJECTOR_FIELDS = (  # ProjectorConfig <-> the top level of a LLaVA config.json
    Field("hidden_act", "projector_hidden_act"),
    Field("bias", "multimodal_projector_bias", bool, default=True),
)


def read_fields(table: tuple[Field, ...], hf: Any) -> dict[str, Any]:
    """``{our name: value}`` from a transformers config (or any object with HF's names)."""
    out = {}
    for f in table:
        value = getattr(hf, f.hf) if f.default is _REQUIRED else getattr(hf, f.hf, f.default)
        out[f.ours] = None if value is None else f.to_ours(value)
    return out


def write_fields(table: tuple[Field, ...], ours: Any) -> dict[str, Any]:
    """``{HF name: value}`` for ``config.json`` from one of our config dataclasses."""
    out = {}
    for f in table:
        value = getattr(ours, f.ours)
        if value is None and f.default is None:
            continue
        out[f.hf] = None if value is None else f.to_hf(value)
    return out


def arch_of(hf_config: transformers.PretrainedConfig) -> str:
    for name in hf_config.architectures or ():
        if name in ARCHITECTURES:
            return ARCHITECTURES[name]
    if hf_config.model_type in _MODEL_TYPES:
        return _MODEL_TYPES[hf_config.model_type]
    raise UnsupportedConfigError(
        f"config.json: architectures {hf_config.architectures} / model_type "
        f"{hf_config.model_type!r} are not supported (supported: {', '.join(ARCHITECTURES)})"
    )


def _rope(text) -> tuple[float, RopeScaling | None]:
    params = dict(getattr(text, "rope_parameters", None) or {})
    theta = float(params.get("rope_theta", getattr(text, "rope_theta", 10000.0) or 10000.0))
    rope_type = params.get("rope_type", params.get("type", "default"))
    if rope_type == "default":
        return theta, None
    if rope_type != "llama3":
        raise UnsupportedConfigError(f"config.json: rope_type {rope_type!r} is not supported")
    return theta, RopeScaling(
        rope_type="llama3",
        factor=float(params["factor"]),
        low_freq_factor=float(params["low_freq_factor"]),
        high_freq_factor=float(params["high_freq_factor"]),
        original_max_position_embeddings=int(params["original_max_position_embeddings"]),
    )


def _text(text, family: str) -> TextConfig:
    hidden_act = getattr(text, "hidden_act", "silu")
    if hidden_act not in ACTIVATIONS:
        raise UnsupportedConfigError(
            f"config.json: hidden_act {hidden_act!r} is not one of {', '.join(ACTIVATIONS)}"
        )
    if family == "qwen2" and getattr(text, "use_sliding_window", False):
        raise UnsupportedConfigError("config.json: Qwen2 sliding-window attention is not supported")
    theta, scaling = _rope(text)
    fields = read_fields(TEXT_FIELDS, text)
    fields["num_kv_heads"] = fields["num_kv_heads"] or fields["num_heads"]
    attention_bias = bool(getattr(text, "attention_bias", False))
    return TextConfig(
        family=family,
        **fields,
        rope_theta=theta,
        rope_scaling=scaling,
        qkv_bias=True if family == "qwen2" else attention_bias,
        o_bias=False if family == "qwen2" else attention_bias,
        mlp_bias=bool(getattr(text, "mlp_bias", False)),
        gated_mlp=text.model_type != "arcee",
        hidden_act=hidden_act,
    )


def _vision(vision) -> VisionConfig:
    return VisionConfig(**read_fields(VISION_FIELDS, vision))


def from_hf(hf_config: transformers.PretrainedConfig, **overrides: Any) -> ModelConfig:
    """Our ModelConfig for a transformers config; ``overrides`` set dtype, scan_layers..."""
    arch = arch_of(hf_config)
    fields: dict[str, Any] = dict(arch=arch)
    if arch == "llava":
        text = hf_config.text_config
        family = text.model_type
        if family not in ("llama", "qwen2"):
            raise UnsupportedConfigError(f"config.json: text_config.model_type {family!r}")
        fields.update(
            vision=_vision(hf_config.vision_config),
            text=_text(text, family),
            projector=ProjectorConfig(type="mlp", **read_fields(PROJECTOR_FIELDS, hf_config)),
            **read_fields(LLAVA_FIELDS, hf_config),
        )
    elif arch in ("llama", "qwen2"):
        fields.update(vision=None, projector=None, text=_text(hf_config, arch))
    else:
        fields.update(text=None, projector=None, vision=_vision(hf_config))
    fields.update(overrides)
    return ModelConfig(**fields)


def _text_fields(t: TextConfig) -> dict[str, Any]:
    rope: dict[str, Any] = {"rope_theta": t.rope_theta, "rope_type": "default"}
    if t.rope_scaling is not None:
        s = t.rope_scaling
        rope.update(
            rope_type=s.rope_type,
            factor=s.factor,
            low_freq_factor=s.low_freq_factor,
            high_freq_factor=s.high_freq_factor,
            original_max_position_embeddings=s.original_max_position_embeddings,
        )
    fields = dict(write_fields(TEXT_FIELDS, t), rope_parameters=rope, hidden_act=t.hidden_act)
    if t.family == "llama":
        fields.update(attention_bias=t.qkv_bias, mlp_bias=t.mlp_bias)
    return fields


def _merge(base: dict[str, Any] | None, fields: dict[str, Any]) -> dict[str, Any]:
    out = dict(base or {})
    out.update(fields)
    return out


# (arch, gated MLP) -> the transformers config class and architecture of a bare LLM.
_TEXT_CLASSES = {
    ("llama", True): (transformers.LlamaConfig, "LlamaForCausalLM"),
    ("llama", False): (transformers.ArceeConfig, "ArceeForCausalLM"),
    ("qwen2", True): (transformers.Qwen2Config, "Qwen2ForCausalLM"),
}


def to_hf(
    cfg: ModelConfig, original: dict[str, Any] | None = None
) -> transformers.PretrainedConfig:
    """A transformers config for ``cfg``, layered over ``original`` (the config it came from)."""
    original = dict(original or {})
    for key in ("transformers_version",):
        original.pop(key, None)
    dtype = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}[cfg.param_dtype]
    if cfg.arch == "llava":
        text_cls = (
            transformers.LlamaConfig if cfg.text.family == "llama" else transformers.Qwen2Config
        )
        text = text_cls(**_merge(original.get("text_config"), _text_fields(cfg.text)))
        vision = transformers.CLIPVisionConfig(
            **_merge(original.get("vision_config"), write_fields(VISION_FIELDS, cfg.vision))
        )
        top = _merge(
            {k: v for k, v in original.items() if k not in ("text_config", "vision_config")},
            dict(
                **write_fields(LLAVA_FIELDS, cfg),
                **write_fields(PROJECTOR_FIELDS, cfg.projector),
                tie_word_embeddings=cfg.text.tie_word_embeddings,
                architectures=["LlavaForConditionalGeneration"],
            ),
        )
        top.pop("image_token_id", None)
        config = transformers.LlavaConfig(vision_config=vision, text_config=text, **top)
    elif cfg.arch in ("llama", "qwen2"):
        cls, arch_name = _TEXT_CLASSES[cfg.arch, cfg.text.gated_mlp]
        config = cls(**_merge(original, dict(_text_fields(cfg.text), architectures=[arch_name])))
    else:
        fields = dict(write_fields(VISION_FIELDS, cfg.vision), architectures=["CLIPVisionModel"])
        config = transformers.CLIPVisionConfig(**_merge(original, fields))
    config.dtype = dtype
    return config


def read_config_json(path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)
