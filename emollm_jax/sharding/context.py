"""The active mesh and rule table, for sharding constraints on activations inside models.

Models call ``constrain(x, ("batch", "length", "act_embed"))``; outside ``use_mesh_rules`` that
is a no-op, so the same model code runs on one CPU and on a pod.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence

import jax
from jax.sharding import Mesh, NamedSharding

from emollm_jax.sharding.rules import logical_to_spec
from emollm_jax.sharding.strategies import Rules

_local = threading.local()


@contextlib.contextmanager
def use_mesh_rules(mesh: Mesh, rules: Rules):
    """Within this block, ``constrain`` shards activations over ``mesh`` by ``rules``."""
    previous = getattr(_local, "active", None)
    _local.active = (mesh, rules)
    try:
        yield
    finally:
        _local.active = previous


def active() -> tuple[Mesh, Rules] | None:
    return getattr(_local, "active", None)


def constrain(x: jax.Array, axes: Sequence[str | None]) -> jax.Array:
    current = active()
    if current is None:
        return x
    mesh, rules = current
    spec = logical_to_spec(axes, x.shape, rules, mesh)
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))
