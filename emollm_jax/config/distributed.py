"""``config.distributed``: ``jax.distributed.initialize`` when ``auto`` finds a cluster (Cloud
TPU, SLURM, JAX_COORDINATOR_ADDRESS) or when forced on; the fields override what JAX detects."""

from __future__ import annotations

import dataclasses

from emollm_jax.config.section import one_of, option


@dataclasses.dataclass(frozen=True)
class DistributedConfig:
    initialize: str = option("auto", "auto | on | off", one_of("auto", "on", "off"))
    coordinator_address: str = option("", "host:port of process 0 ('' = detected)")
    num_processes: int = option(0, "processes in the run (0 = detected)")
    process_id: int = option(-1, "this process's index (-1 = detected)")
    cpu_collectives: str = option("gloo", "collectives between CPU processes")
