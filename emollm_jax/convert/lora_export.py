"""LoRA adapters on export: merged into the base weights, or written as a PEFT adapter folder.

Our adapters are ``lora_a [in..., r]`` / ``lora_b [r, out...]`` beside a Dense ``kernel
[in..., out...]`` (``models/layers.py``), adding ``x @ a @ b * alpha / rank``.

- Merging computes ``kernel + a @ b * alpha / rank`` in float32, in our layout, before the
  name table's transform to HF's layout, then casts to the output dtype.
- A PEFT folder holds ``adapter_config.json`` (LoRA, ``r``, ``lora_alpha``: PEFT scales by
  ``lora_alpha / r`` too) and ``adapter_model.safetensors`` with ``lora_A.weight [r, in]`` and
  ``lora_B.weight [out, r]`` per targeted projection, named by transformers' in-memory module
  paths (``base_model.model.<module>.lora_A.weight``: the names PEFT itself saves). The target
  modules are given as a regular expression over those paths that matches only the LLM's
  projections (a LLaVA vision tower also has ``q_proj`` modules, which our adapters never
  touch).
"""

from __future__ import annotations

import json
import os
import pathlib
import re

import numpy as np

from emollm_jax.config.model import ModelConfig
from emollm_jax.convert.name_table import Row
from emollm_jax.convert.transforms import Transform

ADAPTER_DIR = "adapter"
ADAPTER_FILE = "adapter_model.safetensors"
# On-disk prefix -> transformers 5's in-memory module prefix, where they differ.
_IN_MEMORY = {"llava": ("language_model.model.", "model.language_model.")}


def adapters(params: dict) -> dict[str, tuple[str, str]]:
    """``{kernel path: (lora_a path, lora_b path)}`` for every Dense that has an adapter."""
    out = {}
    for path in params:
        if path.endswith("/lora_a"):
            base = path[: -len("lora_a")]
            out[base + "kernel"] = (path, base + "lora_b")
    return out


def merged_kernel(kernel: np.ndarray, a: np.ndarray, b: np.ndarray, scale: float) -> np.ndarray:
    """``kernel + a @ b * scale`` in float32 (one layer: no leading ``layers`` axis)."""
    delta = np.tensordot(a.astype(np.float32), b.astype(np.float32), axes=1)
    return kernel.astype(np.float32) + delta * np.float32(scale)


def module_name(cfg: ModelConfig, hf_weight: str) -> str:
    """transformers' in-memory module path of an on-disk ``....weight`` name (our EmoLLM
    export's modules are named as its files)."""
    name = hf_weight.removesuffix(".weight")
    emollm = cfg.projector is not None and cfg.projector.type == "multi_perspective"
    if cfg.arch in _IN_MEMORY and not emollm:
        disk, memory = _IN_MEMORY[cfg.arch]
        if name.startswith(disk):
            name = memory + name[len(disk) :]
    return name


def peft_tensors(
    cfg: ModelConfig, row: Row, hf_weight: str, a: np.ndarray, b: np.ndarray
) -> list[tuple[str, np.ndarray]]:
    """PEFT's two tensors for one projection's adapter (one layer)."""
    rank = a.shape[-1]
    to_a = Transform("linear", row.transform.n_in)
    lora_a = to_a.to_hf(a, to_a.hf_shape(a.shape))  # [r, in]
    lora_b = Transform("linear", 1).to_hf(b, (int(np.prod(b.shape[1:])), rank))  # [out, r]
    prefix = f"base_model.model.{module_name(cfg, hf_weight)}"
    return [(f"{prefix}.lora_A.weight", lora_a), (f"{prefix}.lora_B.weight", lora_b)]


def peft_shapes(cfg: ModelConfig, row: Row, hf_weight: str, kernel_shape: tuple[int, ...]):
    """Names and shapes of ``peft_tensors`` for a kernel of ``kernel_shape`` (one layer)."""
    n_in, rank = row.transform.n_in, cfg.lora.rank
    fan_in = int(np.prod(kernel_shape[:n_in]))
    fan_out = int(np.prod(kernel_shape[n_in:]))
    prefix = f"base_model.model.{module_name(cfg, hf_weight)}"
    return [
        (f"{prefix}.lora_A.weight", (rank, fan_in)),
        (f"{prefix}.lora_B.weight", (fan_out, rank)),
    ]


def target_pattern(cfg: ModelConfig, hf_weights: list[str]) -> str:
    """A regular expression (PEFT full-matches it) for exactly these weights' modules."""
    layered = sorted({re.sub(r"\.\d+\.", r".{i}.", module_name(cfg, w)) for w in hf_weights})
    return "|".join(re.escape(m).replace(r"\{i\}", r"\d+") for m in layered)


def write_adapter_config(
    folder: str | os.PathLike, cfg: ModelConfig, hf_weights: list[str], base_model: str
) -> None:
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM" if cfg.arch in ("llama", "qwen2") else None,
        "base_model_name_or_path": base_model,
        "r": cfg.lora.rank,
        "lora_alpha": cfg.lora.alpha,
        "lora_dropout": 0.0,
        "target_modules": target_pattern(cfg, hf_weights),
        "bias": "none",
        "fan_in_fan_out": False,
        "use_rslora": False,
        "inference_mode": True,
    }
    path = pathlib.Path(folder) / "adapter_config.json"
    path.write_text(json.dumps(config, indent=2) + "\n")
