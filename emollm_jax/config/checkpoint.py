"""``config.checkpoint``: Orbax checkpoints under ``<workdir>/checkpoints``, and the optional
local tier (``checkpoint/tiers.py``) on each host's own disk or RAM disk."""

from __future__ import annotations

import dataclasses

from emollm_jax.config.section import option, positive_int


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    every_steps: int = option(100, "save every this many steps", positive_int)
    keep: int = option(3, "checkpoints kept")
    async_save: bool = option(True, "write while the step loop goes on")
    local_dir: str = option(
        "", "local tier's folder on each host, e.g. /dev/shm/<run> ('' = no local tier)"
    )
    local_every_steps: int = option(10, "local tier: save every this many steps")
    local_keep: int = option(2, "local tier: checkpoints kept")
