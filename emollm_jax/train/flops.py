"""Model FLOPs per training step, counted analytically, for MFU.

Counted: every matmul of the vision encoder (patch embedding, attention projections, attention
scores and values, MLP), the projector and the LLM (incl. the LM head), for the tokens actually
present (padding included, as the hardware computes it). The multi-perspective projector has no
closed form here: its count per frame is XLA's cost analysis of its forward pass, lowered once
from shapes alone (nothing allocated or compiled). A multiply-add is 2 FLOPs. Training
costs 3x the forward pass (forward, backward to activations, backward to weights) for the
projector and LLM; the frozen vision encoder costs its forward pass only (no gradient reaches
it: it sits before every trainable parameter) unless ``train_vision`` is on.

MFU = model FLOPs per second / (devices x peak FLOP/s per device).
"""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
from flax import nnx

from emollm_jax.config.model import ModelConfig
from emollm_jax.models.build import abstract_model

# Dense bf16 peak per chip, from vendors' data sheets (FLOP/s).
PEAK_FLOPS = {
    "TPU v4": 275e12,
    "TPU v5 lite": 197e12,
    "TPU v5e": 197e12,
    "TPU v5p": 459e12,
    "TPU v6 lite": 918e12,
    "NVIDIA A100": 312e12,
    "NVIDIA H100": 989e12,
}


def vision_forward_flops(cfg: ModelConfig, num_images: int) -> float:
    v = cfg.vision
    n = v.num_positions
    d, f = v.hidden_size, v.intermediate_size
    patch = 2 * v.num_patches * (v.patch_size**2 * v.num_channels) * d
    per_layer = 2 * n * (4 * d * d + 2 * d * f) + 2 * 2 * n * n * d
    return num_images * (patch + v.num_layers * per_layer)


def projector_forward_flops(cfg: ModelConfig, num_images: int) -> float:
    if cfg.projector.type != "mlp":
        lowered = _lowered_projector_flops(cfg)
        if lowered is not None:
            return num_images * lowered
    # LLaVA's MLP (also the floor for a projector XLA gives no count for: its patch MLP).
    tokens = cfg.vision.num_patches + (cfg.vision_feature_select_strategy == "full")
    d_in = cfg.vision.hidden_size * len(cfg.feature_layers)
    d = cfg.text.hidden_size
    return num_images * 2 * tokens * (d_in * d + d * d)


def xla_flops(fn, *args) -> float | None:
    """XLA's FLOP count of ``jax.jit(fn)`` on ``args`` (arrays or ``ShapeDtypeStruct``s), from
    the lowered program; None where the backend gives no count."""
    cost = jax.jit(fn).lower(*args).cost_analysis()
    if isinstance(cost, list | tuple):
        cost = cost[0] if cost else None
    return float(cost["flops"]) if cost and "flops" in cost else None


@functools.cache
def _lowered_projector_flops(cfg: ModelConfig) -> float | None:
    """XLA's FLOP count of the projector's forward pass on one frame."""
    projector = abstract_model(cfg).projector
    v = cfg.vision
    # The stacked ViT hidden states it reads: [1 + layers, frames, 1 + patches, D_vision].
    states = jax.ShapeDtypeStruct(
        (1 + projector.vision_layers, 1, v.num_positions, v.hidden_size), cfg.jnp_dtype
    )
    graphdef, state = nnx.split(projector)
    return xla_flops(lambda s, x: nnx.merge(graphdef, s).images(x), state, states)


def llm_forward_flops(cfg: ModelConfig, batch: int, seq: int) -> float:
    t = cfg.text
    hd = t.resolved_head_dim
    d = t.hidden_size
    proj = d * hd * (2 * t.num_heads + 2 * t.num_kv_heads)
    mlp = (3 if t.gated_mlp else 2) * d * t.intermediate_size
    attn = 2 * 2 * seq * t.num_heads * hd  # scores + weighted values, per token
    per_token = 2 * t.num_layers * (proj + mlp) + t.num_layers * attn + 2 * d * t.vocab_size
    return batch * seq * per_token


def train_step_flops(cfg: ModelConfig, batch: int, seq: int, frames: int, train_vision: bool):
    """Model FLOPs of one training step on a ``[batch, seq]`` batch with ``frames`` frames per
    row."""
    total = 3 * llm_forward_flops(cfg, batch, seq)
    if cfg.arch == "llava" and frames:
        images = batch * frames
        total += 3 * projector_forward_flops(cfg, images)
        total += (3 if train_vision else 1) * vision_forward_flops(cfg, images)
    return total


def peak_flops_per_device() -> tuple[float, str]:
    """(peak FLOP/s, how it was found) for this process's first device."""
    device = jax.devices()[0]
    kind = getattr(device, "device_kind", "")
    for name, peak in PEAK_FLOPS.items():
        if kind.startswith(name):
            return peak, f"data sheet ({kind})"
    if device.platform == "cpu":
        return measure_matmul_flops(), "measured float32 matmul"
    return float("nan"), f"unknown device kind {kind!r}"


def measure_matmul_flops(n: int = 1024, repeats: int = 5) -> float:
    """Float32 matmul throughput of the host's devices (the CPU has no data sheet peak)."""
    x = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    f(x).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        f(x).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / max(1, jax.local_device_count())
