"""The run's event log, ``<workdir>/events.jsonl``: one JSON object per event, appended by every
start of the run (an *attempt*), so that the log covers the run across restarts and hosts.
``python -m emollm_jax.goodput WORKDIR`` reads it (``emollm_jax/goodput.py``).

Every row has ``time`` (Unix seconds), ``event``, ``attempt`` (an id per start), ``process``
(the JAX process index) and the event's own fields:

- ``start``: ``processes``, ``devices``;
- ``restore``: ``tier`` (``local`` or ``persistent``), ``step``, ``seconds`` it took;
- ``ready``: ``step`` the loop starts from (set-up done; the step loop begins);
- ``compile``: ``seconds`` spent tracing, lowering and compiling (or loading from the cache),
  ``cache_hits``, ``cache_misses`` (after the first step, and after any later recompilation);
- ``steps``: ``step`` (the last one finished), ``count`` (steps finished since the previous
  ``steps`` row), ``step_s`` (their time, less data waiting, checkpoint blocking and
  compilation), ``data_s`` (waiting for batches); written after the first step and at each log
  interval, not every step;
- ``checkpoint``: ``tier``, ``step``, ``blocked_s`` (seconds the step loop was blocked);
- ``preempted`` (SIGTERM), ``hang`` (``idle_s``, ``limit_s``), ``crash`` (``error``), ``stop``
  (the run ended normally): ``step``;
- ``interrupted`` (Ctrl-C): ``step``, ``saved`` (false after a second Ctrl-C, which stops at
  once).

Process 0 writes every event; the others write only failures (``hang``, ``crash``), which may
be theirs alone. A process killed outright (SIGKILL, a lost host) writes nothing: the report
books the time from its last event to the next start as lost to the restart.

On cloud storage (a ``gs://`` or ``s3://`` workdir), which cannot append, each event rewrites the
object (a few hundred rows over a run).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid

import jax

from emollm_jax.paths import AnyPath, as_path, is_url

log = logging.getLogger(__name__)

FILE = "events.jsonl"
FAILURES = ("hang", "crash")


class EventLog:
    """Appends this attempt's events to ``<workdir>/events.jsonl``."""

    def __init__(self, workdir: str | AnyPath):
        self.path = as_path(workdir) / FILE
        self.attempt = uuid.uuid4().hex[:12]
        self.process = jax.process_index()
        self._lock = threading.Lock()  # the watchdog writes from its own thread

    def write(self, event: str, **fields) -> None:
        if self.process != 0 and event not in FAILURES:
            return
        row = {"time": time.time(), "event": event, "attempt": self.attempt}
        row |= {"process": self.process} | fields
        line = json.dumps(row) + "\n"
        try:
            with self._lock:
                if is_url(self.path):
                    old = self.path.read_text() if self.path.exists() else ""
                    self.path.write_text(old + line)
                else:
                    with open(self.path, "a", encoding="utf-8") as f:
                        f.write(line)
        except OSError as e:  # the log is an account of the run, never a reason to stop it
            log.warning("could not write event %s to %s: %s", event, self.path, e)


class StepWindow:
    """The step loop's time since the last ``steps`` row, split into waiting for data,
    checkpoint blocking and the rest (compilation is taken out when the row is written)."""

    def __init__(self):
        self.last = None  # the last step finished (in any window)
        self._reset()

    def _reset(self) -> None:
        self.start = time.perf_counter()
        self.count = 0
        self.data_s = 0.0
        self.blocked_s = 0.0

    def step_done(self, step: int) -> None:
        self.count += 1
        self.last = step

    def flush(self, events: EventLog, compiled: dict) -> None:
        """Write ``compile`` (if anything compiled) and ``steps`` rows; start a new window."""
        now = time.perf_counter()
        if compiled["seconds"] > 0:
            events.write("compile", **compiled)
        if self.count:
            busy = now - self.start - self.data_s - self.blocked_s - compiled["seconds"]
            events.write(
                "steps", step=self.last, count=self.count, step_s=max(busy, 0.0), data_s=self.data_s
            )
        self._reset()
