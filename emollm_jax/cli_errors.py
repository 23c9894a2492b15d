"""How the command-line entry points report a user's mistake: the message alone on stderr and
exit status 2, no traceback (a bad config field, a folder in use, a destination that overlaps
its source, a missing checkpoint...). ``--verbosity=1`` (absl's flag, where the command has it)
or ``EMOLLM_TRACEBACK=1`` in the environment shows the traceback instead, for bug reports.

``run_absl`` starts an absl command this way, flag parsing included: an unknown flag, an unknown
config field (``--config.train.stepz=4``), a config argument the file does not take
(``configs/emollm_tiny.py:varient=mp``) each print one ``error:`` line and exit 2; ``--help``
exits 0; Ctrl-C exits 130 with one line."""

from __future__ import annotations

import difflib
import functools
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence

from emollm_jax.destinations import DestinationError
from emollm_jax.errors import CheckpointChoiceError, ConfigError
from emollm_jax.folder_lock import FolderLockedError

USAGE_ERROR = 2
INTERRUPTED = 128 + 2  # SIGINT, as a shell reports it
HELP_FLAGS = ("--help", "-h", "--helpshort", "--helpfull", "-?")

# Mistakes in what the user asked for; anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError,
    CheckpointChoiceError,
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


def user_error(message: str, usage: str | None = None):
    """Print ``error: message`` (and ``usage``) on stderr and exit with status 2."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    if usage:
        print(usage, file=sys.stderr, flush=True)
    sys.exit(USAGE_ERROR)


def asks_for_help(argv: Sequence[str]) -> bool:
    """Whether ``argv`` (the arguments, not the program) holds a help flag before any ``--``."""
    args = list(argv)
    args = args[: args.index("--")] if "--" in args else args
    return any(a in HELP_FLAGS for a in args)


def run_absl(
    main: Callable,
    argv: Sequence[str] | None = None,
    *,
    prog: str | None = None,
    usage: str | None = None,
    errors: tuple[type[BaseException], ...] = (),
) -> None:
    """``absl.app.run(main)`` with this module's error path (the flags must be defined). ``argv``:
    the arguments after the program (default ``sys.argv[1:]``); ``prog``: the program name
    flags see; ``usage``: printed after a flag error and at the end of ``--help``."""
    from absl import app, flags

    args = list(sys.argv[1:] if argv is None else argv)
    prog = prog or sys.argv[0]
    if asks_for_help(args):
        # The command's own text and flags (absl's --help shows the __main__ module's, which
        # under `emollm` is the dispatcher), then the example; exit 0.
        doc = (sys.modules[main.__module__].__doc__ or "").strip()
        print(f"{doc}\n\nflags:\n{flags.FLAGS.module_help(main.__module__)}")
        if usage:
            print(f"\n{usage}")
        sys.exit(0)
    app.run(
        _interruptible(report_user_errors(main, errors=(*errors, app.UsageError))),
        argv=[prog, *args],
        flags_parser=functools.partial(_parse_flags, usage=usage),
    )


def _interruptible(main: Callable) -> Callable:
    """Ctrl-C: one line and exit status 130 (what the command saved on the way out stays)."""

    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except KeyboardInterrupt:
            if _verbose():
                raise
            print("interrupted (Ctrl-C)", file=sys.stderr, flush=True)
            sys.exit(INTERRUPTED)

    return wrapped


def _parse_flags(argv: list[str], usage: str | None = None) -> list[str]:
    """absl's flag parsing; a mistake in a flag or a config override is one ``error:`` line."""
    from absl import flags

    spec, _ = _config_args(argv[1:])
    if spec is not None and not os.path.isfile(spec.split(":", 1)[0]):
        user_error(f"--config {spec}: no such file (relative to the current folder, {os.getcwd()})")
    try:
        return flags.FLAGS(argv)
    except Exception as e:  # flag errors, and the AttributeError of an unknown config field
        if _verbose() or _asks_for_verbosity(argv[1:]):
            raise
        user_error(_flag_problem(argv[1:], e), usage)


def _asks_for_verbosity(args: list[str]) -> bool:
    """``--verbosity=N`` (or ``-v N``) with N >= 1 among ``args`` (flags not parsed yet)."""
    for i, arg in enumerate(args):
        value = None
        if arg.startswith(("--verbosity=", "-v=")):
            value = arg.split("=", 1)[1]
        elif arg in ("--verbosity", "-v") and i + 1 < len(args):
            value = args[i + 1]
        if value is not None and value.lstrip("-").isdigit() and int(value) >= 1:
            return True
    return False


def _flag_problem(args: list[str], error: Exception) -> str:
    """One line for a failed flag parse: the config file or override at fault if there is one,
    else the first line of absl's message."""
    spec, overrides = _config_args(args)
    if spec is not None:
        try:
            config = _load_config(spec)
        except Exception as e:  # what get_config raised for the file or its argument
            return f"--config {spec}: {e}"
        for path in overrides:
            problem = missing_field(config, path)
            if problem:
                return problem
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _config_args(args: list[str]) -> tuple[str | None, list[str]]:
    """The ``--config`` value and the paths of the ``--config.a.b=v`` overrides in ``args``."""
    spec, overrides = None, []
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg.startswith("--config="):
            spec = arg.split("=", 1)[1]
        elif arg == "--config" and i + 1 < len(args):
            spec = args[i + 1]
        elif arg.startswith("--config."):
            overrides.append(arg[len("--config.") :].split("=", 1)[0])
    return spec, overrides


def _load_config(spec: str):
    """``get_config(arg)`` of the file ``FILE[:ARG]``, as ml_collections' config flag calls it."""
    path, *arg = spec.split(":", 1)
    module_spec = importlib.util.spec_from_file_location("emollm_config_check", path)
    if module_spec is None or not os.path.isfile(path):
        raise FileNotFoundError(f"no config file {path} (relative to {os.getcwd()})")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(*arg)


def _keys(node) -> list[str] | None:
    """The field names of a config node (ConfigDict, dict or dataclass), None for a leaf."""
    import dataclasses

    if dataclasses.is_dataclass(node):
        return [f.name for f in dataclasses.fields(node)]
    keys = getattr(node, "keys", None)
    return list(keys()) if callable(keys) else None


def missing_field(config, path: str) -> str | None:
    """``config.<path>: no such field (did you mean ...?)`` when ``path`` names no field of
    ``config``, else None."""
    node = config
    parts = path.split(".")
    for i, part in enumerate(parts):
        keys = _keys(node)
        if keys is None:
            return None  # below a leaf: not a missing field (absl reports what is wrong)
        if part not in keys:
            where = "config." + ".".join(parts[: i + 1])
            close = difflib.get_close_matches(part, keys, n=1)
            hint = f"did you mean {close[0]}?" if close else f"fields: {', '.join(keys)}"
            return f"{where}: no such field ({hint})"
        node = node[part] if not hasattr(node, "__dataclass_fields__") else getattr(node, part)
    return None
