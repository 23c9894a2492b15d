"""Sharding strategies as data: one logical-axis -> mesh-axes rule table per strategy.

Parameters and activations name their dimensions logically (``emollm_jax/models/layers.py``);
a strategy says where each name goes on the mesh (axes ``data``, ``fsdp``, ``tensor``). A name
absent from a table, or mapped to ``None``, is replicated. A config picks a table by name
(``config.mesh.strategy``) and may override single entries (``config.mesh.rules``), so a new
strategy is a new table, never a new code path.

Logical names: ``batch``, ``length`` (activations); ``embed`` (parameters' model dimension),
``act_embed`` (activations' model dimension), ``mlp``, ``heads``, ``kv_heads``, ``head_dim``,
``vocab``, ``layers`` (the stacked-layer axis), ``norm`` (norm scales and biases).
"""

from __future__ import annotations

Rules = tuple[tuple[str, str | tuple[str, ...] | None], ...]

_BATCH = ("batch", ("data", "fsdp"))

STRATEGIES: dict[str, Rules] = {
    # Data parallel: every parameter replicated, the batch split over all devices.
    "dp": (_BATCH,),
    # Fully sharded data parallel: parameters split along their model dimension over `fsdp`.
    "fsdp": (_BATCH, ("embed", "fsdp")),
    # Tensor parallel (Megatron-style): heads, MLP width and vocabulary split over `tensor`.
    "tp": (
        _BATCH,
        ("heads", "tensor"),
        ("kv_heads", "tensor"),
        ("mlp", "tensor"),
        ("vocab", "tensor"),
    ),
    # Both: the model dimension over `fsdp`, heads / MLP / vocabulary over `tensor`.
    "fsdp_tp": (
        _BATCH,
        ("embed", "fsdp"),
        ("heads", "tensor"),
        ("kv_heads", "tensor"),
        ("mlp", "tensor"),
        ("vocab", "tensor"),
    ),
}


def get_rules(strategy: str, overrides=None) -> Rules:
    """The rule table of ``strategy`` with ``overrides`` (a mapping or pairs) applied."""
    if strategy not in STRATEGIES:
        raise ValueError(
            f"config.mesh.strategy: {strategy!r} is not one of {', '.join(STRATEGIES)}"
        )
    table = dict(STRATEGIES[strategy])
    if overrides:
        items = overrides.items() if hasattr(overrides, "items") else overrides
        for name, axes in items:
            table[name] = tuple(axes) if isinstance(axes, list) else axes
    return tuple(table.items())
