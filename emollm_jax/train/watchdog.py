"""A thread that ends a run whose step loop stopped making progress (a collective that never
returns, a dead data source, a wedged device): no step finished within the limit -> every
thread's Python stack is dumped to stderr (``faulthandler``), a ``hang`` event is written, child
processes (Grain workers) are killed and the process exits with ``HANG_EXIT_CODE``, which a
scheduler should treat as "restart me".

The limit: ``config.train.hang_timeout_s`` when set (> 0); else derived from the step time
measured after warm-up: ``max(MIN_TIMEOUT_S, FACTOR x`` the median of the recent step intervals
``)``. Until ``WARMUP`` steps have finished (the compile and the first steps),
``config.train.hang_first_step_timeout_s`` applies.
"""

from __future__ import annotations

import faulthandler
import logging
import multiprocessing
import os
import statistics
import sys
import threading
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)

# EX_TEMPFAIL of sysexits.h: a temporary failure, worth retrying.
HANG_EXIT_CODE = 75
WARMUP = 2
FACTOR = 20.0
MIN_TIMEOUT_S = 600.0


class Watchdog:
    def __init__(
        self,
        timeout_s: float,
        first_step_timeout_s: float,
        on_hang: Callable[[float, float], None] = lambda idle_s, limit_s: None,
        poll_s: float = 1.0,
    ):
        self.timeout_s = timeout_s
        self.first_step_timeout_s = first_step_timeout_s
        self.on_hang = on_hang
        self.poll_s = poll_s
        self.steps = 0
        self._last = time.monotonic()
        self._intervals = deque(maxlen=50)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="hang-watchdog", daemon=True)

    def start(self) -> Watchdog:
        self._last = time.monotonic()
        self._thread.start()
        return self

    def step_done(self) -> None:
        now = time.monotonic()
        if self.steps >= WARMUP:
            self._intervals.append(now - self._last)
        self.steps += 1
        self._last = now

    def progress(self) -> None:
        """Progress that is not a step (a checkpoint saved): the clock restarts."""
        self._last = time.monotonic()

    def limit_s(self) -> float:
        if self.steps < WARMUP:
            return self.first_step_timeout_s
        if self.timeout_s > 0:
            return self.timeout_s
        if not self._intervals:
            return self.first_step_timeout_s
        return max(MIN_TIMEOUT_S, FACTOR * statistics.median(self._intervals))

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            idle, limit = time.monotonic() - self._last, self.limit_s()
            if idle > limit:
                self._fire(idle, limit)
                return

    def _fire(self, idle_s: float, limit_s: float) -> None:
        log.error(
            "no training step finished for %.0f s (limit %.0f s, config.train.hang_timeout_s): "
            "dumping every thread's stack, then exiting with status %d",
            idle_s,
            limit_s,
            HANG_EXIT_CODE,
        )
        stream = sys.__stderr__
        try:
            faulthandler.dump_traceback(file=stream, all_threads=True)
            stream.flush()
        except (AttributeError, ValueError, OSError):
            pass
        try:
            self.on_hang(idle_s, limit_s)
        finally:
            for child in multiprocessing.active_children():
                child.kill()
            logging.shutdown()
            os._exit(HANG_EXIT_CODE)
