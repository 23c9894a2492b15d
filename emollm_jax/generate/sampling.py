"""Choosing the next token from logits: greedy, or sampling with temperature, top-k and top-p.

Our choices:

- ``temperature == 0`` means greedy (argmax; ties go to the lowest id, as ``torch.argmax``
  does), and then the PRNG key is not used. Any other setting samples, and the caller passes an
  explicit key: the same key gives the same tokens.
- Filters apply in Hugging Face's order: temperature scaling, then top-k, then top-p. ``top_k
  == 0`` and ``top_p == 1.0`` switch the filter off. Top-p keeps the smallest set of most
  probable tokens whose mass reaches ``top_p`` (always at least the most probable token).
- Filtering and sampling run in float32 whatever the model's compute dtype.
- ``SamplingConfig`` is a frozen dataclass: it is static under ``jax.jit`` (the branches and
  ``top_k`` shape the program), so changing it compiles a new program, changing the key does not.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 0.0  # 0 = greedy
    top_k: int = 0  # 0 = no top-k filter
    top_p: float = 1.0  # 1.0 = no nucleus filter

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


def filter_logits(logits: jax.Array, cfg: SamplingConfig) -> jax.Array:
    """``logits [B, V]`` scaled by temperature, with tokens outside top-k / top-p set to -inf."""
    logits = logits.astype(jnp.float32) / cfg.temperature
    vocab = logits.shape[-1]
    if 0 < cfg.top_k < vocab:
        kth = jax.lax.top_k(logits, cfg.top_k)[0][:, -1:]  # [B, 1] the k-th largest
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    if cfg.top_p < 1.0:
        order = jnp.argsort(-logits, axis=-1)  # most probable first
        sorted_logits = jnp.take_along_axis(logits, order, axis=-1)
        probs = jax.nn.softmax(sorted_logits, axis=-1)
        mass_before = jnp.cumsum(probs, axis=-1) - probs  # mass of strictly better tokens
        keep_sorted = mass_before < cfg.top_p  # the first token always has mass_before 0
        keep = (
            jnp.zeros_like(keep_sorted)
            .at[jnp.arange(logits.shape[0])[:, None], order]
            .set(keep_sorted)
        )
        logits = jnp.where(keep, logits, -jnp.inf)
    return logits


def next_token(logits: jax.Array, key: jax.Array | None, cfg: SamplingConfig) -> jax.Array:
    """The chosen token per row: ``logits [B, V]`` -> ``int32 [B]``."""
    if cfg.greedy:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    if key is None:
        raise ValueError("sampling (temperature > 0) needs a PRNG key")
    return jax.random.categorical(key, filter_logits(logits, cfg), axis=-1).astype(jnp.int32)
