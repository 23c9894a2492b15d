"""JAX's persistent compilation cache for training runs, so that a restarted run loads its
compiled step instead of compiling it again.

``config.train.compile_cache_dir``: ``""`` (the default) uses ``$JAX_COMPILATION_CACHE_DIR``
when set, else ``<workdir>/compile_cache``; a path or a URL (``gs://...``: JAX reads and writes
it through etils.epath) uses that folder; ``"off"`` turns the cache off. JAX only stores
programs that took longer to compile than ``$JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS``
(1 s by default): a tiny test model's step may compile faster than that and is then not stored.

One process has one cache: JAX opens it at the first compilation after the folder is set and
keeps it. A second run in the same process (a test session, the main job's two phases) keeps
the first run's folder; the log says so.

``CompileCounter`` counts, through ``jax.monitoring``, the cache's hits and misses and the
seconds spent tracing, lowering and compiling (what the goodput report books as compilation).
"""

from __future__ import annotations

import logging
import os

import jax
from jax import monitoring

from emollm_jax.paths import AnyPath, absolute, as_path

log = logging.getLogger(__name__)

OFF = "off"
# Durations jax.monitoring reports for one jit compilation (tracing, lowering, XLA's compile
# or the cache's retrieval).
_COMPILE_DURATIONS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
_HIT = "/jax/compilation_cache/cache_hits"
_MISS = "/jax/compilation_cache/cache_misses"


def cache_dir(setting: str, workdir: AnyPath) -> str | None:
    """The folder a run's config asks for (None: off)."""
    if setting == OFF:
        return None
    if setting:
        return os.fspath(absolute(as_path(setting)))
    from_env = os.environ.get("JAX_COMPILATION_CACHE_DIR", "")
    return from_env or os.fspath(absolute(as_path(workdir) / "compile_cache"))


def enable(setting: str, workdir: AnyPath) -> str | None:
    """Point JAX's persistent cache at the folder ``setting`` names; returns the folder in use
    (None: off)."""
    wanted = cache_dir(setting, workdir)
    current = jax.config.jax_compilation_cache_dir
    if wanted is None:
        if current:
            log.warning("compile cache: %s stays on (set before this run in this process)", current)
        return current or None
    if current and current != wanted:
        log.info("compile cache: %s (set before this run in this process)", current)
        return current
    jax.config.update("jax_compilation_cache_dir", wanted)
    log.info("compile cache: %s", wanted)
    return wanted


class CompileCounter:
    """Counts compilations while open: ``seconds`` (tracing, lowering, and compiling or loading
    from the cache), ``hits`` and ``misses`` of the persistent cache."""

    def __init__(self):
        self.seconds = 0.0
        self.hits = 0
        self.misses = 0
        monitoring.register_event_listener(self._on_event)
        monitoring.register_event_duration_secs_listener(self._on_duration)

    def take(self) -> dict:
        """The counts since the last ``take``."""
        counts = {"seconds": self.seconds, "cache_hits": self.hits, "cache_misses": self.misses}
        self.seconds, self.hits, self.misses = 0.0, 0, 0
        return counts

    def close(self) -> None:
        monitoring.unregister_event_listener(self._on_event)
        monitoring.unregister_event_duration_listener(self._on_duration)

    def _on_event(self, event: str, **kwargs) -> None:
        if event == _HIT:
            self.hits += 1
        elif event == _MISS:
            self.misses += 1

    def _on_duration(self, event: str, duration: float, **kwargs) -> None:
        if event in _COMPILE_DURATIONS:
            self.seconds += duration
