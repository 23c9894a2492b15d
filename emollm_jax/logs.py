"""Logging set-up shared by the command-line entry points."""

from __future__ import annotations

import logging
import os
import sys


class _NoOrbaxTracebacks(logging.Filter):
    """Orbax logs every failed background write with its traceback (one full disk gave 3,500
    lines); the run reports the failure once itself (``CheckpointSaveError``). Orbax's lines
    stay, their tracebacks go, unless ``EMOLLM_TRACEBACK=1``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and "orbax" in record.pathname:
            record.exc_info = None
            record.exc_text = None
        return True


class _NoPerProcessSizeWarnings(logging.Filter):
    """Orbax warns at every local-tier save that it cannot sum object sizes over processes
    (each process writes its own folder there, by design)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "object size logging disabled" not in str(record.msg)


def setup(level: int = logging.INFO) -> None:
    """Our messages at ``level`` on stderr; Orbax and Grain (which log every file they touch
    through absl at INFO) at warnings only."""
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    absl_logger = logging.getLogger("absl")
    absl_logger.setLevel(logging.WARNING)
    absl_logger.addFilter(_NoPerProcessSizeWarnings())
    if os.environ.get("EMOLLM_TRACEBACK", "") in ("", "0"):
        absl_logger.addFilter(_NoOrbaxTracebacks())
