"""Turn logical axis names into ``PartitionSpec``s and parameter shardings, and say how well a
rule table shards a model (what stays replicated, how close each device is to total / N)."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from emollm_jax.sharding.strategies import Rules

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Indivisible:
    """A dimension left replicated because its size does not divide its mesh axes."""

    path: str
    dim: int
    name: str
    size: int
    mesh_axes: tuple[str, ...]
    ways: int

    def __str__(self) -> str:
        return (
            f"{self.path} dim {self.dim} ({self.name}={self.size}) is not divisible by "
            f"{'x'.join(self.mesh_axes)}={self.ways}: replicated"
        )


def _mesh_axes(entry) -> tuple[str, ...]:
    if entry is None:
        return ()
    return (entry,) if isinstance(entry, str) else tuple(entry)


def _lookup(table: dict, name, scope: str | None):
    if scope is not None and f"{scope}/{name}" in table:
        return table[f"{scope}/{name}"]
    return table.get(name)


def _resolve(axes, shape, rules, mesh, scope=None):
    """(spec entries, indivisible (dim, name, size, mesh_axes, ways) tuples)."""
    table = dict(rules)
    used: set[str] = set()
    spec, dropped = [], []
    for i, name in enumerate(axes):
        mesh_axes = tuple(
            a for a in _mesh_axes(_lookup(table, name, scope)) if a not in used and a in mesh.shape
        )
        ways = math.prod(mesh.shape[a] for a in mesh_axes)
        if shape is not None and mesh_axes and shape[i] % ways:
            dropped.append((i, name, shape[i], mesh_axes, ways))
            mesh_axes = ()
        used.update(mesh_axes)
        if not mesh_axes:
            spec.append(None)
        else:
            spec.append(mesh_axes[0] if len(mesh_axes) == 1 else mesh_axes)
    return PartitionSpec(*spec), dropped


def logical_to_spec(
    axes: Sequence[str | None],
    shape: Sequence[int] | None,
    rules: Rules,
    mesh: Mesh,
    scope: str | None = None,
) -> PartitionSpec:
    """Map logical ``axes`` to mesh axes (``scope``: the model part, for scoped rules).

    A mesh axis is used at most once per array (the first dimension claiming it wins), and a
    dimension whose size is not divisible by its mesh axes' size stays replicated.
    """
    return _resolve(axes, shape, rules, mesh, scope)[0]


def variable_axes(variable: nnx.Variable) -> tuple[str | None, ...]:
    """The logical axes a variable was created with (replicated if it has none)."""
    axes = variable.get_metadata().get("logical_axes")
    if axes is None:
        return (None,) * len(variable.shape)
    return tuple(axes)


def _key(entry) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def _is_variable(x) -> bool:
    return isinstance(x, nnx.Variable)


def _map_variables(fn, state, rules: Rules = (), other=None):
    """``fn(path_string, scope, variable)`` over the variables of ``state`` (``other(leaf)``
    over leaves that are not variables, when given). The scope is the first path key that a
    scoped rule names (``vision_tower`` for ``vision_tower/embed``), wherever the model's tree
    sits (an optimizer state nests it)."""
    scopes = {name.split("/")[0] for name, _ in rules if "/" in name}

    def one(path, v):
        keys = [_key(p) for p in path]
        if not _is_variable(v):
            return other(v)
        scope = next((k for k in keys if k in scopes), keys[0] if keys else None)
        return fn("/".join(keys), scope, v)

    return jax.tree_util.tree_map_with_path(one, state, is_leaf=_is_variable)


def state_shardings(state: nnx.State, mesh: Mesh, rules: Rules) -> nnx.State:
    """A ``NamedSharding`` per variable of ``state`` (abstract or concrete)."""
    return tree_shardings(state, mesh, rules)


def tree_shardings(tree, mesh: Mesh, rules: Rules):
    """Shardings for any tree holding model variables (an optimizer state: its moments are
    variables with the parameters' logical axes): variables as ``rules`` place them, every
    other leaf (step counters, flags) replicated. Read from the axis names, never from what
    XLA happens to pick for an initialiser (it replicates values that do not depend on the
    parameters: a full copy of the moments on every chip)."""
    replicated = NamedSharding(mesh, PartitionSpec())

    def one(path, scope, v):
        spec = logical_to_spec(variable_axes(v), v.shape, rules, mesh, scope)
        return v.replace(NamedSharding(mesh, spec))

    return _map_variables(one, tree, rules, other=lambda leaf: replicated)


def indivisible_parameters(state: nnx.State, mesh: Mesh, rules: Rules) -> list[Indivisible]:
    """Every dimension of ``state`` that a rule wants sharded but whose size does not divide."""
    found: list[Indivisible] = []

    def one(path, scope, v):
        for dim, name, size, axes, ways in _resolve(variable_axes(v), v.shape, rules, mesh, scope)[
            1
        ]:
            found.append(Indivisible(path, dim, name, size, axes, ways))
        return v

    _map_variables(one, state, rules)
    return found


def warn_indivisible(state: nnx.State, mesh: Mesh, rules: Rules) -> list[Indivisible]:
    """Log a warning naming each parameter left replicated by indivisibility; returns them."""
    found = indivisible_parameters(state, mesh, rules)
    for item in found:
        log.warning("sharding: %s", item)
    return found


@dataclasses.dataclass(frozen=True)
class Sufficiency:
    total_bytes: int  # the whole tree, unsharded
    per_device_bytes: int  # the largest any one device holds
    num_devices: int

    @property
    def ratio(self) -> float:
        """Per-device bytes over an even share (1.0: perfectly sharded; N: replicated)."""
        return self.per_device_bytes / max(self.total_bytes / self.num_devices, 1)


def _leaf_bytes(x) -> int:
    return math.prod(x.shape) * np.dtype(x.dtype).itemsize


def sufficiency(tree, shardings=None) -> Sufficiency:
    """How much of ``tree`` (arrays or ``ShapeDtypeStruct``s, with their ``sharding`` or the
    matching ``shardings`` tree) the fullest device holds, against an even share."""
    leaves = jax.tree.leaves(tree)
    shards = jax.tree.leaves(shardings) if shardings is not None else [x.sharding for x in leaves]
    devices = shards[0].mesh.devices.flat if leaves else []
    per_device = {d: 0 for d in devices}
    total = 0
    for x, sh in zip(leaves, shards, strict=True):
        total += _leaf_bytes(x)
        shard_bytes = math.prod(sh.shard_shape(x.shape)) * np.dtype(x.dtype).itemsize
        for d in sh.device_set:
            per_device[d] = per_device.get(d, 0) + shard_bytes
    return Sufficiency(total, max(per_device.values(), default=0), max(len(per_device), 1))
