"""How the command-line entry points report a user's mistake: the message alone on stderr and
exit status 2, no traceback (a bad config field, a folder in use, a destination that overlaps
its source, a missing checkpoint...). ``--verbosity=1`` (absl's flag, where the command has it)
or ``EMOLLM_TRACEBACK=1`` in the environment shows the traceback instead, for bug reports."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable

from emollm_jax.config.errors import ConfigError
from emollm_jax.destinations import DestinationError
from emollm_jax.folder_lock import FolderLockedError

USAGE_ERROR = 2

# Mistakes in what the user asked for; anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError,
    DestinationError,
    FolderLockedError,
    FileExistsError,
    FileNotFoundError,
)


def _verbose() -> bool:
    if os.environ.get("EMOLLM_TRACEBACK", "") not in ("", "0"):
        return True
    from absl import flags

    return flags.FLAGS.is_parsed() and "verbosity" in flags.FLAGS and flags.FLAGS.verbosity >= 1


def report_user_errors(
    main: Callable | None = None, *, errors: tuple[type[BaseException], ...] = ()
) -> Callable:
    """Decorate an entry point's ``main``: ``USER_ERRORS`` and ``errors`` print their message
    alone (``error: ...``) and exit with status 2."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except (*USER_ERRORS, *errors) as e:
                if _verbose():
                    raise
                print(f"error: {e}", file=sys.stderr, flush=True)
                sys.exit(USAGE_ERROR)

        return wrapped

    return decorate if main is None else decorate(main)
