"""Logging set-up shared by the command-line entry points."""

from __future__ import annotations

import logging
import sys


def setup(level: int = logging.INFO) -> None:
    """Our messages at ``level`` on stderr; Orbax and Grain (which log every file they touch
    through absl at INFO) at warnings only."""
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("absl").setLevel(logging.WARNING)
