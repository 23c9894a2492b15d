"""The device mesh, built from config: axes ``data``, ``fsdp``, ``tensor``; a size of -1 fills.

Axes are ``Auto`` (GSPMD): shardings come from the jit in/out shardings and the models'
logical constraints, and XLA propagates the rest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import jax
from jax.sharding import AxisType, Mesh

AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")


class MeshError(ValueError):
    """The requested mesh does not fit the devices; the message has the numbers."""


def resolve_shape(sizes: Mapping[str, int], num_devices: int) -> tuple[int, ...]:
    """Mesh sizes for ``AXES`` from ``sizes`` (missing axes are 1, one -1 takes the rest)."""
    unknown = sorted(set(sizes) - set(AXES))
    if unknown:
        raise MeshError(f"config.mesh.shape: unknown axis {unknown[0]!r} (axes: {', '.join(AXES)})")
    shape = [int(sizes.get(a, 1)) for a in AXES]
    fills = [a for a, s in zip(AXES, shape) if s == -1]
    if len(fills) > 1:
        raise MeshError(f"config.mesh.shape: only one axis may be -1, got {', '.join(fills)}")
    for a, s in zip(AXES, shape):
        if s == 0 or s < -1:
            raise MeshError(f"config.mesh.shape.{a}: size must be positive or -1, got {s}")
    fixed = math.prod(s for s in shape if s != -1)
    if fills:
        if num_devices % fixed:
            raise MeshError(
                f"config.mesh.shape: {num_devices} devices cannot be split with fixed axes of "
                f"total size {fixed} ({dict(zip(AXES, shape))})"
            )
        shape[AXES.index(fills[0])] = num_devices // fixed
    elif fixed != num_devices:
        raise MeshError(
            f"config.mesh.shape: {dict(zip(AXES, shape))} needs {fixed} devices, but "
            f"{num_devices} are available"
        )
    return tuple(shape)


def make_mesh(sizes: Mapping[str, int], devices: Sequence[jax.Device] | None = None) -> Mesh:
    devices = list(devices if devices is not None else jax.devices())
    shape = resolve_shape(sizes, len(devices))
    return jax.make_mesh(shape, AXES, axis_types=(AxisType.Auto,) * len(AXES), devices=devices)
