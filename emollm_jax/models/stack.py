"""A stack of identical layers stored as one module with a leading ``layers`` axis.

Parameters of layer ``i`` are slice ``i`` of every stacked array, so checkpoints and rule
tables see one array per weight, and the forward pass is one ``jax.lax.scan``: rolled
(``scan_layers=True``: compile time independent of depth) or fully unrolled (the default:
what XLA optimises best for shallow models). Rematerialisation wraps the layer body by policy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
from flax import nnx

from emollm_jax.models.remat import policy_for
from emollm_jax.sharding.context import active

def create(make_layer: Callable[[nnx.Rngs], nnx.Module], num: int, rngs: nnx.Rngs) -> nnx.Module:
    """``num`` independently initialised layers, stacked along a new leading ``layers`` axis."""

    @nnx.split_rngs(splits=num)
    @nnx.vmap(
        in_axes=(0,),
        out_axes=0,
        transform_metadata={nnx.PARTITION_NAME: "layers", "logical_axes": "layers"},
    )
    def make(rngs):
        return make_layer(rngs)

    return make(rngs)


def run(
    layers: nnx.Module,
    body: Callable[[nnx.Module, Any, Any], tuple[Any, Any]],
    carry: Any,
    xs: Any = None,
    *,
    num: int | None = None,
    scan: bool = False,
    remat: str = "none",
) -> tuple[Any, Any]:
    """Apply ``body(layer, carry, x) -> (carry, y)`` over the first ``num`` layers.

    ``xs`` (per-layer inputs such as KV caches) has a leading layer axis; the stacked ``y``
    are returned beside the final carry, as ``jax.lax.scan`` does.
    """
    graphdef, state = nnx.split(layers)
    total = jax.tree.leaves(state)[0].shape[0]
    num = total if num is None else num
    if num != total:
        state = jax.tree.map(lambda a: a[:num], state)

    def step(carry, inputs):
        layer_state, x = inputs
        return body(nnx.merge(graphdef, layer_state), carry, x)

    if remat != "none":
        current = active()
        device = current[0].devices.flat[0] if current is not None else jax.devices()[0]
        policy = policy_for(remat, device.platform)
        step = jax.checkpoint(step, policy=policy, prevent_cse=not scan)
    return jax.lax.scan(step, carry, (state, xs), length=num, unroll=1 if scan else max(num, 1))
