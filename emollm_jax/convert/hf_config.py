"""Hugging Face ``config.json`` <-> ``ModelConfig``.

Reading goes through transformers' own config classes, so legacy fields (``rope_theta`` and
``rope_scaling`` at the top level, ``image_token_index``...) are understood exactly as
transformers understands them. Writing starts from the original HF config when the model came
from one, so fields we do not model (``initializer_range``, ``architectures``...) survive a
round trip unchanged.
"""

from __future__ import annotations

import json
from typing import Any

import transformers

from emollm_jax.models.config import (
    ModelConfig,
    ProjectorConfig,
    RopeScaling,
    TextConfig,
    VisionConfig,
)

ARCHITECTURES = {
    "LlavaForConditionalGeneration": "llava",
    "LlamaForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen2",
    "CLIPVisionModel": "clip_vision",
}
_MODEL_TYPES = {
    "llava": "llava",
    "llama": "llama",
    "qwen2": "qwen2",
    "clip_vision_model": "clip_vision",
}


class UnsupportedConfigError(ValueError):
    """The HF config describes something our models do not compute."""


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
    if getattr(text, "hidden_act", "silu") != "silu":
        raise UnsupportedConfigError(f"config.json: hidden_act {text.hidden_act!r} (need silu)")
    if family == "qwen2" and getattr(text, "use_sliding_window", False):
        raise UnsupportedConfigError("config.json: Qwen2 sliding-window attention is not supported")
    theta, scaling = _rope(text)
    eos = text.eos_token_id
    attention_bias = bool(getattr(text, "attention_bias", False))
    return TextConfig(
        family=family,
        vocab_size=text.vocab_size,
        hidden_size=text.hidden_size,
        intermediate_size=text.intermediate_size,
        num_layers=text.num_hidden_layers,
        num_heads=text.num_attention_heads,
        num_kv_heads=text.num_key_value_heads or text.num_attention_heads,
        head_dim=getattr(text, "head_dim", None),
        rope_theta=theta,
        rope_scaling=scaling,
        rms_norm_eps=float(text.rms_norm_eps),
        tie_word_embeddings=bool(text.tie_word_embeddings),
        qkv_bias=True if family == "qwen2" else attention_bias,
        o_bias=False if family == "qwen2" else attention_bias,
        mlp_bias=bool(getattr(text, "mlp_bias", False)),
        max_position_embeddings=text.max_position_embeddings,
        bos_token_id=text.bos_token_id,
        eos_token_id=tuple(eos) if isinstance(eos, list) else eos,
        pad_token_id=text.pad_token_id,
    )


def _vision(vision) -> VisionConfig:
    return VisionConfig(
        hidden_size=vision.hidden_size,
        intermediate_size=vision.intermediate_size,
        num_layers=vision.num_hidden_layers,
        num_heads=vision.num_attention_heads,
        image_size=vision.image_size,
        patch_size=vision.patch_size,
        num_channels=vision.num_channels,
        layer_norm_eps=float(vision.layer_norm_eps),
        hidden_act=vision.hidden_act,
    )


def from_hf(hf_config: transformers.PretrainedConfig, **overrides: Any) -> ModelConfig:
    """Our ModelConfig for a transformers config; ``overrides`` set dtype, scan_layers..."""
    arch = arch_of(hf_config)
    fields: dict[str, Any] = dict(arch=arch)
    if arch == "llava":
        text = hf_config.text_config
        family = text.model_type
        if family not in ("llama", "qwen2"):
            raise UnsupportedConfigError(f"config.json: text_config.model_type {family!r}")
        layer = hf_config.vision_feature_layer
        fields.update(
            vision=_vision(hf_config.vision_config),
            text=_text(text, family),
            projector=ProjectorConfig(
                type="mlp",
                hidden_act=hf_config.projector_hidden_act,
                bias=bool(getattr(hf_config, "multimodal_projector_bias", True)),
            ),
            image_token_id=hf_config.image_token_id,
            vision_feature_layer=tuple(layer) if isinstance(layer, list) else layer,
            vision_feature_select_strategy=hf_config.vision_feature_select_strategy,
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
    fields = dict(
        vocab_size=t.vocab_size,
        hidden_size=t.hidden_size,
        intermediate_size=t.intermediate_size,
        num_hidden_layers=t.num_layers,
        num_attention_heads=t.num_heads,
        num_key_value_heads=t.num_kv_heads,
        rope_parameters=rope,
        rms_norm_eps=t.rms_norm_eps,
        tie_word_embeddings=t.tie_word_embeddings,
        max_position_embeddings=t.max_position_embeddings,
        bos_token_id=t.bos_token_id,
        eos_token_id=list(t.eos_token_id) if isinstance(t.eos_token_id, tuple) else t.eos_token_id,
        pad_token_id=t.pad_token_id,
        hidden_act="silu",
    )
    if t.head_dim is not None:
        fields["head_dim"] = t.head_dim
    if t.family == "llama":
        fields.update(attention_bias=t.qkv_bias, mlp_bias=t.mlp_bias)
    return fields


def _vision_fields(v: VisionConfig) -> dict[str, Any]:
    return dict(
        hidden_size=v.hidden_size,
        intermediate_size=v.intermediate_size,
        num_hidden_layers=v.num_layers,
        num_attention_heads=v.num_heads,
        image_size=v.image_size,
        patch_size=v.patch_size,
        num_channels=v.num_channels,
        layer_norm_eps=v.layer_norm_eps,
        hidden_act=v.hidden_act,
    )


def _merge(base: dict[str, Any] | None, fields: dict[str, Any]) -> dict[str, Any]:
    out = dict(base or {})
    out.update(fields)
    return out


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
            **_merge(original.get("vision_config"), _vision_fields(cfg.vision))
        )
        layer = cfg.vision_feature_layer
        top = _merge(
            {k: v for k, v in original.items() if k not in ("text_config", "vision_config")},
            dict(
                image_token_index=cfg.image_token_id,
                projector_hidden_act=cfg.projector.hidden_act,
                multimodal_projector_bias=cfg.projector.bias,
                vision_feature_layer=list(layer) if isinstance(layer, tuple) else layer,
                vision_feature_select_strategy=cfg.vision_feature_select_strategy,
                tie_word_embeddings=cfg.text.tie_word_embeddings,
                architectures=["LlavaForConditionalGeneration"],
            ),
        )
        top.pop("image_token_id", None)
        config = transformers.LlavaConfig(vision_config=vision, text_config=text, **top)
    elif cfg.arch in ("llama", "qwen2"):
        cls = transformers.LlamaConfig if cfg.arch == "llama" else transformers.Qwen2Config
        arch_name = "LlamaForCausalLM" if cfg.arch == "llama" else "Qwen2ForCausalLM"
        config = cls(**_merge(original, dict(_text_fields(cfg.text), architectures=[arch_name])))
    else:
        config = transformers.CLIPVisionConfig(
            **_merge(original, dict(_vision_fields(cfg.vision), architectures=["CLIPVisionModel"]))
        )
    config.dtype = dtype
    return config


def read_config_json(path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)
