"""``config.mesh``: the device mesh and the sharding strategy (``emollm_jax/sharding/``; the
strategy's name and the mesh's fit to the devices are checked there)."""

from __future__ import annotations

import dataclasses

from emollm_jax.config.section import option


@dataclasses.dataclass(frozen=True)
class MeshConfig:
    shape: dict = option(
        {"data": -1, "fsdp": 1, "tensor": 1}, "size per mesh axis; one -1 takes the rest"
    )
    strategy: str = option("dp", "rule table of sharding/strategies.py: dp | fsdp | tp | fsdp_tp")
    rules: dict | None = option(None, 'per-name overrides of that table, e.g. {"vocab": None}')
