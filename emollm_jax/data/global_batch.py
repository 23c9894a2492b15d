"""Per-process numpy batch -> global ``jax.Array``s sharded over the mesh's batch axes.

Each JAX process's pipeline reads its own 1/process_count of the records and yields its own rows;
``jax.make_array_from_process_local_data`` stitches the rows of all processes into one global
array whose leading (batch) dimension is split as the rule table's ``batch`` rule says (every
strategy's default: ``('data', 'fsdp')``). Axes the mesh does not have are dropped, so the same
call works on a data-only mesh. Non-array entries are left out.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from emollm_jax.sharding.mesh import batch_axes
from emollm_jax.sharding.strategies import Rules, get_rules


def batch_sharding(mesh: Mesh, rules: Rules | None = None) -> NamedSharding:
    """Leading dimension as ``rules``' ``batch`` rule says (default: the ``dp`` table's), every
    other dimension replicated."""
    axes = batch_axes(get_rules("dp") if rules is None else rules, mesh)
    return NamedSharding(mesh, PartitionSpec(axes if axes else None))


def to_global(
    batch: Mapping[str, np.ndarray], mesh: Mesh, rules: Rules | None = None
) -> dict[str, jax.Array]:
    """{name: local rows [b, ...]} -> {name: global jax.Array [b * process_count, ...]}."""
    sharding = batch_sharding(mesh, rules)
    return {
        name: jax.make_array_from_process_local_data(sharding, np.asarray(value))
        for name, value in batch.items()
        if isinstance(value, np.ndarray)
    }
