"""Tiny random Hugging Face reference models, built with transformers' PyTorch classes.

Weights are redrawn with a larger spread than HF's initialiser (std 0.02 makes every logit
near zero, so a wrong layer could still "match"); outputs are then O(1) and a 1e-4 bound
means something.
"""

from __future__ import annotations

import torch
import transformers

VISION = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    image_size=32,
    patch_size=8,
    projection_dim=16,
)
LLAMA = dict(
    vocab_size=128,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)
IMAGE_TOKEN = 120


def randomize(model: torch.nn.Module, seed: int = 0, std: float = 0.15) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen) * std
            is_norm = ("norm" in name or "layrnorm" in name) and name.endswith("weight")
            p.copy_(1.0 + noise if is_norm else noise)
    return model.eval()


def clip_vision(**overrides) -> transformers.CLIPVisionModel:
    torch.manual_seed(0)
    return randomize(
        transformers.CLIPVisionModel(transformers.CLIPVisionConfig(**{**VISION, **overrides}))
    )


def arcee(**overrides) -> transformers.ArceeForCausalLM:
    """LLaMA with a plain (not gated) MLP."""
    torch.manual_seed(0)
    return randomize(
        transformers.ArceeForCausalLM(transformers.ArceeConfig(**{**LLAMA, **overrides}))
    )


def llama(**overrides) -> transformers.LlamaForCausalLM:
    torch.manual_seed(0)
    return randomize(
        transformers.LlamaForCausalLM(transformers.LlamaConfig(**{**LLAMA, **overrides}))
    )


def qwen2(**overrides) -> transformers.Qwen2ForCausalLM:
    torch.manual_seed(0)
    cfg = transformers.Qwen2Config(**{**LLAMA, **overrides})
    return randomize(transformers.Qwen2ForCausalLM(cfg))


def llava(text: str = "llama", **overrides) -> transformers.LlavaForConditionalGeneration:
    torch.manual_seed(0)
    text_cfg = (transformers.LlamaConfig if text == "llama" else transformers.Qwen2Config)(**LLAMA)
    cfg = transformers.LlavaConfig(
        vision_config=transformers.CLIPVisionConfig(**VISION).to_dict(),
        text_config=text_cfg.to_dict(),
        image_token_index=IMAGE_TOKEN,
        **overrides,
    )
    return randomize(transformers.LlavaForConditionalGeneration(cfg))


def save(model: torch.nn.Module, path) -> str:
    model.save_pretrained(path)
    return str(path)


def image_tokens(vision_feature_select_strategy: str = "default") -> int:
    n = (VISION["image_size"] // VISION["patch_size"]) ** 2
    return n + (vision_feature_select_strategy == "full")
