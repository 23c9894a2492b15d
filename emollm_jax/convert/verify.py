"""``--verify``: run both sides of a conversion on one random prompt and compare their outputs.

Ours runs in JAX from the Orbax checkpoint, theirs through transformers' PyTorch class from
the HF folder (for EmoLLM, our PyTorch export's class: ``emollm_jax/export/hf_emollm``), with
the PEFT adapter on top when one was written. Both compute in float32
from the same stored weights: when a conversion casts (``--dtype``), the side that still has
the original weights is rounded through the output dtype first, so the difference measures
the conversion and the two implementations, not the cast. The prompt is random token ids
(with one random image, and its image tokens, for LLaVA); a CLIP vision tower compares its
last hidden state instead of logits.

Both models are loaded whole: verifying a 7B conversion needs memory for two 7B models.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import torch
import transformers

from emollm_jax.config.model import ModelConfig
from emollm_jax.export.hf_emollm import EmoLLMForConditionalGeneration
from emollm_jax.models.visual_tokens import tokens_per_frame


def random_inputs(cfg: ModelConfig, seed: int = 0, length: int = 16) -> dict[str, np.ndarray]:
    """``input_ids [1, T]`` (and ``pixel_values [1, C, H, W]`` for models with vision)."""
    rng = np.random.default_rng(seed)
    out = {}
    if cfg.has_vision:
        v = cfg.vision
        shape = (1, v.num_channels, v.image_size, v.image_size)
        out["pixel_values"] = rng.standard_normal(shape).astype(np.float32)
    if cfg.has_text:
        ids = rng.integers(0, cfg.text.vocab_size, size=(1, length))
        if cfg.arch == "llava":
            ids = np.where(ids == cfg.image_token_id, (ids + 1) % cfg.text.vocab_size, ids)
            image = np.full((1, tokens_per_frame(cfg)), cfg.image_token_id)
            ids = np.concatenate([ids[:, :1], image, ids[:, 1:]], axis=1)
        out["input_ids"] = ids
    return out


def ours_output(model, cfg: ModelConfig, inputs: dict) -> np.ndarray:
    with jax.default_matmul_precision("highest"):
        if cfg.arch == "clip_vision":
            return np.asarray(model(jnp.asarray(inputs["pixel_values"]))[0], np.float32)
        pixels = inputs.get("pixel_values")
        out = model(
            jnp.asarray(inputs["input_ids"]),
            pixel_values=None if pixels is None else jnp.asarray(pixels),
        )
    return np.asarray(out, np.float32)


def load_torch(
    path: str | os.PathLike,
    cfg: ModelConfig,
    *,
    round_to: str | None = None,
    adapter: str | os.PathLike | None = None,
):
    """transformers' model for a HF folder in float32 (weights first rounded through
    ``round_to``), with a PEFT ``adapter`` folder applied if given."""
    transformers.utils.logging.disable_progress_bar()
    cls = {
        "llava": transformers.LlavaForConditionalGeneration,
        "llama": transformers.AutoModelForCausalLM,
        "qwen2": transformers.AutoModelForCausalLM,
        "clip_vision": transformers.CLIPVisionModel,
    }[cfg.arch]
    if cfg.arch == "llava" and cfg.projector.type == "multi_perspective":
        cls = EmoLLMForConditionalGeneration
    model = cls.from_pretrained(path, dtype=torch.float32).eval()
    if round_to is not None:  # parameters only: buffers (RoPE frequencies) stay float32
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.to(getattr(torch, round_to)).to(torch.float32))
    if adapter is not None:
        import peft

        model = peft.PeftModel.from_pretrained(model, adapter).eval()
    return model


def theirs_output(model, cfg: ModelConfig, inputs: dict) -> np.ndarray:
    with torch.no_grad():
        tensors = {k: torch.from_numpy(np.asarray(v)) for k, v in inputs.items()}
        if cfg.arch == "clip_vision":
            return model(pixel_values=tensors["pixel_values"]).last_hidden_state.numpy()
        return model(**tensors).logits.float().numpy()


def max_difference(ours_model, theirs_model, cfg: ModelConfig, seed: int = 0) -> float:
    """Max |ours - theirs| over the outputs for one random prompt."""
    inputs = random_inputs(cfg, seed)
    ours = ours_output(ours_model, cfg, inputs)
    theirs = theirs_output(theirs_model, cfg, inputs)
    if ours.shape != theirs.shape:
        raise ValueError(f"output shapes differ: ours {ours.shape}, theirs {theirs.shape}")
    return float(np.abs(ours - theirs).max())
