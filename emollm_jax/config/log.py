"""``config.log``: metrics.jsonl (process 0), TensorBoard events, a progress bar on a terminal."""

from __future__ import annotations

import dataclasses

from emollm_jax.config.section import one_of, option, positive_int


@dataclasses.dataclass(frozen=True)
class LogConfig:
    every_steps: int = option(10, "a metrics row every this many steps", positive_int)
    tensorboard: bool = option(True, "write TensorBoard events")
    progress_bar: str = option(
        "auto", "auto (on a terminal) | on | off", one_of("auto", "on", "off")
    )
