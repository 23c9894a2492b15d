"""Sharding strategies as data: one logical-axis -> mesh-axes rule table per strategy.

Parameters and activations name their dimensions logically (``emollm_jax/models/layers.py``);
a strategy says where each name goes on the mesh (axes ``data``, ``fsdp``, ``tensor``). A name
absent from a table, or mapped to ``None``, is replicated. A config picks a table by name
(``config.mesh.strategy``) and may override single entries (``config.mesh.rules``), so a new
strategy is a new table, never a new code path.

Logical names: ``batch``, ``length`` (activations); ``embed`` (parameters' model dimension),
``act_embed`` (activations' model dimension), ``mlp``, ``heads``, ``kv_heads``, ``head_dim``,
``vocab``, ``layers`` (the stacked-layer axis), ``norm`` (norm scales and biases).

A rule may be scoped to one top-level part of the model: ``("vision_tower/embed", None)``
applies to the vision tower's parameters only and wins over the plain ``embed`` rule there.

Besides its table, a strategy names the mesh it is meant for (``preset_shape``: the sizes
within one slice, used by ``aot.compare``) and the axis that spans slices in a
multi-slice run (``dcn_axis``: the slow data-centre network carries only that axis).
"""

from __future__ import annotations

import dataclasses

from emollm_jax.errors import ConfigError

Rules = tuple[tuple[str, str | tuple[str, ...] | None], ...]

_BATCH = ("batch", ("data", "fsdp"))
_TENSOR = (
    ("heads", "tensor"),
    ("kv_heads", "tensor"),
    ("mlp", "tensor"),
    ("vocab", "tensor"),
)


@dataclasses.dataclass(frozen=True)
class Strategy:
    rules: Rules
    # Mesh sizes within a slice (-1 fills); "tensor" is capped by what the heads divide.
    preset_shape: tuple[tuple[str, int], ...]
    dcn_axis: str
    summary: str


STRATEGIES: dict[str, Strategy] = {
    "dp": Strategy(
        (_BATCH,),
        (("data", -1),),
        "data",
        "data parallel: every parameter replicated, the batch split over all chips",
    ),
    "fsdp": Strategy(
        (_BATCH, ("embed", "fsdp")),
        (("fsdp", -1),),
        "fsdp",
        "fully sharded data parallel: parameters split along their model dimension over all "
        "chips (across slices too)",
    ),
    "tp": Strategy(
        (_BATCH, *_TENSOR),
        (("data", -1), ("tensor", 8)),
        "data",
        "tensor parallel (Megatron-style) over groups of up to 8 chips, data parallel across",
    ),
    "fsdp_tp": Strategy(
        (_BATCH, ("embed", "fsdp"), *_TENSOR),
        (("fsdp", -1), ("tensor", 4)),
        "fsdp",
        "the model dimension over fsdp, heads / MLP / vocabulary over groups of up to 4 chips",
    ),
    "hsdp": Strategy(
        (_BATCH, ("embed", "fsdp")),
        (("data", -1), ("fsdp", 16)),
        "data",
        "hybrid: FSDP within groups of up to 16 chips of a slice, data parallel across groups "
        "and across slices",
    ),
    "fsdp_vision_dp": Strategy(
        (_BATCH, ("embed", "fsdp"), ("vision_tower/embed", None)),
        (("fsdp", -1),),
        "fsdp",
        "FSDP for the LLM and projector; the vision tower replicated (no all-gathers for it)",
    ),
}


def get_rules(strategy: str, overrides=None) -> Rules:
    """The rule table of ``strategy`` with ``overrides`` (a mapping or pairs) applied."""
    table = dict(get_strategy(strategy).rules)
    if overrides:
        items = overrides.items() if hasattr(overrides, "items") else overrides
        for name, axes in items:
            table[name] = tuple(axes) if isinstance(axes, list) else axes
    return tuple(table.items())


def get_strategy(strategy: str) -> Strategy:
    if strategy not in STRATEGIES:
        raise ConfigError.not_one_of("mesh.strategy", strategy, STRATEGIES)
    return STRATEGIES[strategy]
