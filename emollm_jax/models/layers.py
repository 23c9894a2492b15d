"""Building blocks with logical axis names on every parameter.

Every ``nnx.Param`` here carries ``logical_axes`` metadata (a tuple of names such as ``embed``,
``mlp``, ``heads``, ``kv_heads``, ``head_dim``, ``vocab``, ``norm``); ``emollm_jax/sharding``
maps those names to mesh axes through a rule table. Parameters are stored in ``param_dtype``
and cast to the compute ``dtype`` at use; norms and softmax run in float32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

Axes = tuple[str | None, ...]


def param(rngs: nnx.Rngs, init, shape: Sequence[int], dtype, axes: Axes) -> nnx.Param:
    """A parameter initialised by ``init(key, shape, dtype)`` and tagged with logical axes."""
    if len(axes) != len(shape):
        raise ValueError(f"logical axes {axes} do not match shape {tuple(shape)}")
    return nnx.Param(init(rngs.params(), tuple(shape), dtype), logical_axes=tuple(axes))


normal_init = jax.nn.initializers.normal(stddev=0.02)
zeros_init = jax.nn.initializers.zeros
ones_init = jax.nn.initializers.ones


class Dense(nnx.Module):
    """``y = x . kernel + bias`` contracting the trailing ``len(in_shape)`` dims of ``x``.

    The kernel keeps head structure explicit (``[embed, heads, head_dim]`` for a query
    projection, ``[heads, head_dim, embed]`` for the output one), so tensor parallelism can
    split heads by name.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        out_shape: Sequence[int],
        *,
        in_axes: Axes,
        out_axes: Axes,
        use_bias: bool,
        param_dtype,
        dtype,
        rngs: nnx.Rngs,
        lora_rank: int = 0,
        lora_alpha: float = 16.0,
    ):
        self.in_shape = tuple(in_shape)
        self.out_shape = tuple(out_shape)
        self.dtype = dtype
        # Fan-in scaled (LeCun) initialisation: unit-variance outputs whatever the width, which
        # models trained from scratch need; pretrained weights replace it anyway.
        n_in = len(self.in_shape)
        kernel_init = jax.nn.initializers.variance_scaling(
            1.0,
            "fan_in",
            "truncated_normal",
            in_axis=tuple(range(n_in)),
            out_axis=tuple(range(n_in, n_in + len(self.out_shape))),
        )
        self.kernel = param(
            rngs, kernel_init, self.in_shape + self.out_shape, param_dtype, in_axes + out_axes
        )
        self.bias = (
            param(rngs, zeros_init, self.out_shape, param_dtype, out_axes) if use_bias else None
        )
        if not lora_rank:
            self.lora_a = self.lora_b = None
        else:
            # A ~ N(0, 1/fan_in), B = 0: a fresh adapter changes nothing.
            fan_in = math.prod(self.in_shape)
            a = jax.nn.initializers.normal(stddev=fan_in**-0.5)
            shape_a, shape_b = self.in_shape + (lora_rank,), (lora_rank,) + self.out_shape
            self.lora_a = nnx.LoRAParam(
                a(rngs.lora(), shape_a, param_dtype), logical_axes=in_axes + (None,)
            )
            self.lora_b = nnx.LoRAParam(
                zeros_init(rngs.lora(), shape_b, param_dtype), logical_axes=(None,) + out_axes
            )
            self.lora_scale = lora_alpha / lora_rank

    def __call__(self, x: jax.Array) -> jax.Array:
        n_in = len(self.in_shape)
        contract = (tuple(range(x.ndim - n_in, x.ndim)), tuple(range(n_in)))
        y = jax.lax.dot_general(
            x.astype(self.dtype), self.kernel[...].astype(self.dtype), (contract, ((), ()))
        )
        if self.lora_a is not None:
            low = jax.lax.dot_general(
                x.astype(self.dtype), self.lora_a[...].astype(self.dtype), (contract, ((), ()))
            )
            delta = jnp.tensordot(low, self.lora_b[...].astype(self.dtype), axes=1)
            y = y + delta * jnp.asarray(self.lora_scale, self.dtype)
        if self.bias is not None:
            y = y + self.bias[...].astype(self.dtype)
        return y


class LayerNorm(nnx.Module):
    """LayerNorm with scale and bias, computed in float32."""

    def __init__(self, dim: int, *, eps: float, param_dtype, dtype, rngs: nnx.Rngs):
        self.eps = eps
        self.dtype = dtype
        self.scale = param(rngs, ones_init, (dim,), param_dtype, ("norm",))
        self.bias = param(rngs, zeros_init, (dim,), param_dtype, ("norm",))

    def __call__(self, x: jax.Array) -> jax.Array:
        x32 = x.astype(jnp.float32)
        mean = x32.mean(-1, keepdims=True)
        var = jnp.square(x32 - mean).mean(-1, keepdims=True)
        y = (x32 - mean) * jax.lax.rsqrt(var + self.eps)
        y = y * self.scale[...].astype(jnp.float32) + self.bias[...].astype(jnp.float32)
        return y.astype(self.dtype)


class RMSNorm(nnx.Module):
    """RMSNorm as LLaMA computes it: normalise in float32, cast back, then scale."""

    def __init__(self, dim: int, *, eps: float, param_dtype, dtype, rngs: nnx.Rngs):
        self.eps = eps
        self.dtype = dtype
        self.scale = param(rngs, ones_init, (dim,), param_dtype, ("norm",))

    def __call__(self, x: jax.Array) -> jax.Array:
        x32 = x.astype(jnp.float32)
        y = x32 * jax.lax.rsqrt(jnp.square(x32).mean(-1, keepdims=True) + self.eps)
        return self.scale[...].astype(self.dtype) * y.astype(self.dtype)


class Embed(nnx.Module):
    """A token embedding table ``[vocab, embed]``; ``attend`` gives tied output logits."""

    def __init__(
        self, num: int, dim: int, *, param_dtype, dtype, rngs: nnx.Rngs, one_hot: bool = False
    ):
        self.dtype = dtype
        self.one_hot = one_hot
        self.embedding = param(rngs, normal_init, (num, dim), param_dtype, ("vocab", "embed"))

    def __call__(self, ids: jax.Array) -> jax.Array:
        if self.one_hot:  # a matmul (see ModelConfig.embed_one_hot); XLA fuses the one-hot in
            table = self.embedding[...].astype(self.dtype)
            return jnp.einsum("...v,vd->...d", jax.nn.one_hot(ids, table.shape[0], dtype=self.dtype), table)
        return jnp.take(self.embedding[...], ids, axis=0).astype(self.dtype)

    def attend(self, x: jax.Array) -> jax.Array:
        return jnp.einsum(
            "...d,vd->...v", x.astype(self.dtype), self.embedding[...].astype(self.dtype)
        )


def lora_kwargs(lora, name: str) -> dict:
    """Dense's adapter arguments for projection ``name`` under a ``LoraConfig`` (or None)."""
    if lora is None or not lora.rank or name not in lora.targets:
        return {}
    return {"lora_rank": lora.rank, "lora_alpha": lora.alpha}


def quick_gelu(x: jax.Array) -> jax.Array:
    return x * jax.nn.sigmoid(1.702 * x)


ACTIVATIONS = {
    "quick_gelu": quick_gelu,
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "gelu_pytorch_tanh": lambda x: jax.nn.gelu(x, approximate=True),
    "silu": jax.nn.silu,
    "relu": jax.nn.relu,
    "relu2": lambda x: jnp.square(jax.nn.relu(x)),
}
