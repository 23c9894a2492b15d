"""Multi-host start-up through JAX's own runtime (``jax.distributed``).

``config.distributed.initialize``: ``auto`` initialises when JAX or the environment names a
cluster (Cloud TPU pod slices and SLURM are detected by JAX itself; a coordinator address in
``JAX_COORDINATOR_ADDRESS`` or the config also counts), ``on`` always, ``off`` never.
CPU processes talk through gloo collectives.
"""

from __future__ import annotations

import logging
import os

import jax

from emollm_jax.errors import ConfigError

log = logging.getLogger(__name__)

_CLUSTER_ENV = ("SLURM_JOB_ID", "TPU_WORKER_HOSTNAMES", "MEGASCALE_COORDINATOR_ADDRESS")


def maybe_initialize(dist_cfg) -> bool:
    """Initialise ``jax.distributed`` if the config or environment asks; True if it did."""
    mode = dist_cfg.initialize
    if mode not in ("auto", "on", "off"):
        raise ConfigError.not_one_of("distributed.initialize", mode, ("auto", "on", "off"))
    address = dist_cfg.coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS", "")
    wanted = mode == "on" or (
        mode == "auto" and (address or any(os.environ.get(k) for k in _CLUSTER_ENV))
    )
    if not wanted:
        return False
    if jax.distributed.is_initialized():  # a second Trainer in the same process
        return True
    if dist_cfg.cpu_collectives:
        jax.config.update("jax_cpu_collectives_implementation", dist_cfg.cpu_collectives)
    kwargs = {}
    if address:
        kwargs["coordinator_address"] = address
    if dist_cfg.num_processes > 0:
        kwargs["num_processes"] = dist_cfg.num_processes
    if dist_cfg.process_id >= 0:
        kwargs["process_id"] = dist_cfg.process_id
    jax.distributed.initialize(**kwargs)
    log.info(
        "jax.distributed: process %d of %d, %d local / %d global devices",
        jax.process_index(),
        jax.process_count(),
        jax.local_device_count(),
        jax.device_count(),
    )
    return True
