"""``config.train.profile``: a ``jax.profiler`` trace of a few training steps, written under
``<workdir>/tensorboard`` (beside the metrics' events) for TensorBoard's profile plugin / XProf.

Steps are counted as metrics.jsonl counts them (the first step of a run is 1); ``num_steps`` 0
turns profiling off. Each JAX process writes its own trace file (named by host).
"""

from __future__ import annotations

import logging
import jax

from emollm_jax.errors import ConfigError
from emollm_jax.paths import AnyPath, as_path

log = logging.getLogger(__name__)


class StepProfiler:
    """Starts the trace before step ``start_step`` and stops it once ``num_steps`` have run."""

    def __init__(self, profile_cfg, workdir: AnyPath):
        self.start = int(profile_cfg.start_step)
        self.stop = self.start + int(profile_cfg.num_steps)
        if profile_cfg.num_steps < 0:
            raise ConfigError(
                "train.profile.num_steps",
                value=profile_cfg.num_steps,
                expected="0 (off) or positive",
            )
        if profile_cfg.num_steps and self.start < 1:
            raise ConfigError(
                "train.profile.start_step",
                f"steps count from 1, got {self.start}",
                value=self.start,
                expected=">= 1",
            )
        self.log_dir = as_path(workdir) / "tensorboard"
        self.active = False

    def before(self, step: int) -> None:
        """Called before step ``step`` (1-based) is dispatched."""
        if not self.active and self.start <= step < self.stop:
            log.info("profiling steps %d-%d into %s", step, self.stop - 1, self.log_dir)
            jax.profiler.start_trace(str(self.log_dir))
            self.active = True

    def after(self, step: int, metrics) -> None:
        """Called once step ``step`` is dispatched; ends the trace after its last step."""
        if self.active and step >= self.stop - 1:
            jax.block_until_ready(metrics)  # the trace holds the step's device work
            self.close()

    def close(self) -> None:
        if self.active:
            jax.profiler.stop_trace()
            self.active = False
