"""Turn logical axis names into ``PartitionSpec``s and parameter shardings."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import jax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from emollm_jax.sharding.strategies import Rules


def _mesh_axes(entry) -> tuple[str, ...]:
    if entry is None:
        return ()
    return (entry,) if isinstance(entry, str) else tuple(entry)


def logical_to_spec(
    axes: Sequence[str | None], shape: Sequence[int] | None, rules: Rules, mesh: Mesh
) -> PartitionSpec:
    """Map logical ``axes`` to mesh axes.

    A mesh axis is used at most once per array (the first dimension claiming it wins), and a
    dimension whose size is not divisible by its mesh axes' size stays replicated.
    """
    table = dict(rules)
    used: set[str] = set()
    spec = []
    for i, name in enumerate(axes):
        mesh_axes = tuple(a for a in _mesh_axes(table.get(name)) if a not in used)
        size = 1
        for a in mesh_axes:
            size *= mesh.shape[a]
        if shape is not None and mesh_axes and shape[i] % size:
            logging.debug("dim %d (%s, size %d) not divisible by %s", i, name, shape[i], mesh_axes)
            mesh_axes = ()
        used.update(mesh_axes)
        if not mesh_axes:
            spec.append(None)
        else:
            spec.append(mesh_axes[0] if len(mesh_axes) == 1 else mesh_axes)
    return PartitionSpec(*spec)


def variable_axes(variable: nnx.Variable) -> tuple[str | None, ...]:
    """The logical axes a variable was created with (replicated if it has none)."""
    axes = variable.get_metadata().get("logical_axes")
    if axes is None:
        return (None,) * len(variable.shape)
    return tuple(axes)


def state_shardings(state: nnx.State, mesh: Mesh, rules: Rules) -> nnx.State:
    """A ``NamedSharding`` per variable of ``state`` (abstract or concrete)."""

    def one(v):
        spec = logical_to_spec(variable_axes(v), v.shape, rules, mesh)
        return v.replace(NamedSharding(mesh, spec))

    return jax.tree.map(one, state, is_leaf=lambda x: isinstance(x, nnx.Variable))
