"""The device mesh, built from config: axes ``data``, ``fsdp``, ``tensor``; a size of -1 fills.

Axes are ``Auto`` (GSPMD): shardings come from the jit in/out shardings and the models'
logical constraints, and XLA propagates the rest. Device order is topology-aware
(``jax.experimental.mesh_utils``). When the devices span several TPU slices, ``config.mesh.shape``
describes one slice and the strategy's ``dcn_axis`` (``data`` for most) is multiplied by the
number of slices: only that axis crosses the data-centre network.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import jax
from jax.experimental import mesh_utils
from jax.sharding import AxisType, Mesh

from emollm_jax.errors import ConfigError
from emollm_jax.sharding.strategies import Rules, get_rules, get_strategy

AXES = ("data", "fsdp", "tensor")


class MeshError(ConfigError):
    """The requested mesh does not fit the devices; the message names the field and has the
    numbers (a user's mistake: the commands print it alone and exit 2)."""


def resolve_shape(sizes: Mapping[str, int], num_devices: int) -> tuple[int, ...]:
    """Mesh sizes for ``AXES`` from ``sizes`` (missing axes are 1, one -1 takes the rest)."""
    unknown = sorted(set(sizes) - set(AXES))
    if unknown:
        raise MeshError("mesh.shape", f"unknown axis {unknown[0]!r} (axes: {', '.join(AXES)})")
    shape = [int(sizes.get(a, 1)) for a in AXES]
    fills = [a for a, s in zip(AXES, shape) if s == -1]
    if len(fills) > 1:
        raise MeshError("mesh.shape", f"only one axis may be -1, got {', '.join(fills)}")
    for a, s in zip(AXES, shape):
        if s == 0 or s < -1:
            raise MeshError(f"mesh.shape.{a}", f"size must be positive or -1, got {s}", value=s)
    fixed = math.prod(s for s in shape if s != -1)
    if fills:
        if num_devices % fixed:
            raise MeshError(
                "mesh.shape",
                f"{num_devices} devices cannot be split with fixed axes of total size {fixed} "
                f"({dict(zip(AXES, shape))})",
            )
        shape[AXES.index(fills[0])] = num_devices // fixed
    elif fixed != num_devices:
        raise MeshError(
            "mesh.shape",
            f"{dict(zip(AXES, shape))} needs {fixed} devices, but {num_devices} are available",
        )
    return tuple(shape)


def num_slices(devices: Sequence[jax.Device]) -> int:
    return len({getattr(d, "slice_index", 0) or 0 for d in devices}) or 1


def make_mesh(
    sizes: Mapping[str, int],
    devices: Sequence[jax.Device] | None = None,
    dcn_axis: str = "data",
) -> Mesh:
    """A mesh of ``sizes`` (per slice) over ``devices`` (default: all), ``dcn_axis`` across
    slices."""
    devices = list(devices if devices is not None else jax.devices())
    slices = num_slices(devices)
    if len(devices) % slices:
        raise MeshError(
            "mesh.shape", f"{len(devices)} devices cannot be split evenly into {slices} slices"
        )
    shape = resolve_shape(sizes, len(devices) // slices)
    if slices > 1:
        if dcn_axis not in AXES:
            raise MeshError(
                "mesh.strategy",
                f"its axis across slices, {dcn_axis!r}, is not a mesh axis ({', '.join(AXES)})",
                value=dcn_axis,
            )
        dcn = tuple(slices if a == dcn_axis else 1 for a in AXES)
        grid = mesh_utils.create_hybrid_device_mesh(
            shape, dcn, devices, allow_split_physical_axes=True
        )
    else:
        grid = mesh_utils.create_device_mesh(shape, devices, allow_split_physical_axes=True)
    return Mesh(grid, AXES, axis_types=(AxisType.Auto,) * len(AXES))


def mesh_and_rules(config, devices: Sequence[jax.Device] | None = None) -> tuple[Mesh, Rules]:
    """The mesh and rule table that ``config.mesh`` asks for (train, evaluate, annotate and the
    ahead-of-time compiler all build them here)."""
    m = config.mesh
    strategy = get_strategy(m.strategy)
    overrides = m.get("rules")
    rules = get_rules(m.strategy, dict(overrides) if overrides else None)
    return make_mesh(dict(m.shape), devices, strategy.dcn_axis), rules


def batch_axes(rules: Rules, mesh: Mesh) -> tuple[str, ...]:
    """The mesh axes the ``batch`` rule splits the leading dimension over (those the mesh has)."""
    entry = dict(rules).get("batch")
    names = () if entry is None else ((entry,) if isinstance(entry, str) else tuple(entry))
    return tuple(a for a in names if a in mesh.axis_names)


def batch_ways(rules: Rules, mesh: Mesh) -> int:
    return math.prod(mesh.shape[a] for a in batch_axes(rules, mesh))
