"""XLA / libtpu compiler flags for one ahead-of-time compile, as MaxText's recipes pass them.

A recipe's flags are written as one string, ``"--xla_tpu_scoped_vmem_limit_kib=98304
--xla_enable_async_all_gather=true"`` (what ``LIBTPU_INIT_ARGS`` holds on a TPU VM). Here they
go to the compiler of that one program (``Lowered.compile(compiler_options=...)``), so rows of a
sweep can differ in their flags within one process; the compiler refuses a flag it does not
know, naming it.
"""

from __future__ import annotations

import shlex


class FlagError(ValueError):
    """A flag string that is not ``--name=value`` pairs."""


def parse(text: str) -> dict[str, str]:
    """``"--a=1 --b=true"`` -> ``{"a": "1", "b": "true"}`` (a bare ``--a`` means ``true``)."""
    options: dict[str, str] = {}
    for token in shlex.split(text or ""):
        if not token.startswith("--") or len(token) < 3:
            raise FlagError(f"--xla_flags: {token!r} is not of the form --name=value")
        name, _, value = token[2:].partition("=")
        options[name] = value if _ else "true"
    return options


def join(*parts: str) -> str:
    """Several flag strings as one, a later value of a flag replacing an earlier one."""
    merged: dict[str, str] = {}
    for part in parts:
        merged.update(parse(part))
    return " ".join(f"--{k}={v}" for k, v in merged.items())
