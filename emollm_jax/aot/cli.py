"""Flag spelling shared by the ahead-of-time commands: ``--num-slices`` and ``--num_slices``
both work (absl defines the underscore form)."""

from __future__ import annotations


def underscore_flags(argv: list[str]) -> list[str]:
    """``--batch-per-chip=4`` -> ``--batch_per_chip=4``; config overrides and values untouched."""
    out = []
    for arg in argv:
        if arg.startswith("--") and not arg.startswith("--config"):
            name, eq, value = arg[2:].partition("=")
            arg = "--" + name.replace("-", "_") + eq + value
        out.append(arg)
    return out
