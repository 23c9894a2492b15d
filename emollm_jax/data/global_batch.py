"""Per-process numpy batch -> global ``jax.Array``s sharded over the mesh's batch axes.

Each JAX process's pipeline reads its own 1/process_count of the records and yields its own rows;
``jax.make_array_from_process_local_data`` stitches the rows of all processes into one global
array whose leading (batch) dimension is split over ``batch_axes`` of the mesh (by default
``('data', 'fsdp')``: pure data parallelism and FSDP both shard the batch). Axes the mesh does not
have are dropped, so the same call works on a data-only mesh. Non-array entries are left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

BATCH_AXES = ("data", "fsdp")


def batch_sharding(mesh: Mesh, batch_axes: Sequence[str] = BATCH_AXES) -> NamedSharding:
    """Leading dimension over the mesh's batch axes, every other dimension replicated."""
    axes = tuple(a for a in batch_axes if a in mesh.axis_names)
    return NamedSharding(mesh, PartitionSpec(axes if axes else None))


def to_global(
    batch: Mapping[str, np.ndarray], mesh: Mesh, batch_axes: Sequence[str] = BATCH_AXES
) -> dict[str, jax.Array]:
    """{name: local rows [b, ...]} -> {name: global jax.Array [b * process_count, ...]}."""
    sharding = batch_sharding(mesh, batch_axes)
    return {
        name: jax.make_array_from_process_local_data(sharding, np.asarray(value))
        for name, value in batch.items()
        if isinstance(value, np.ndarray)
    }
