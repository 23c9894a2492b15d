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
        if "orbax" not in record.pathname:
            return True
        if record.exc_info:
            record.exc_info = None
            record.exc_text = None
        message = record.getMessage()
        cut = message.find("Traceback (most recent call last)")
        if cut >= 0:  # a traceback formatted into the message itself
            record.msg, record.args = message[:cut].rstrip() + " [traceback hidden]", ()
        return True


class _NoStrayTaskTracebacks(logging.Filter):
    """Orbax reads a checkpoint in asyncio tasks; when one read fails the others' failures are
    reported once more at exit ("Task exception was never retrieved"), after the run has
    named the failure itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "never retrieved" in str(record.msg):
            record.exc_info, record.exc_text, record.args = None, None, ()
            record.msg = "an asyncio task's exception was never retrieved (traceback hidden)"
        return True


def _quiet_orbax_coroutines(hook):
    """``sys.unraisablehook`` that drops what Orbax's abandoned read coroutines raise at exit."""

    def unraisable(u):
        code = getattr(u.object, "cr_code", None)
        if code is not None and "orbax" in code.co_filename:
            return
        hook(u)

    return unraisable


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
        logging.getLogger("asyncio").addFilter(_NoStrayTaskTracebacks())
        sys.unraisablehook = _quiet_orbax_coroutines(sys.unraisablehook)
