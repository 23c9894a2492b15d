"""Where a command may write: never into what it reads.

Every command that writes a folder (convert in both directions, evaluate's output folder,
the TFDS build) calls ``check_destination(dest, source)`` before touching anything: a
destination that is its source, contains it (``--overwrite`` would delete the source), or lies
inside it (a converter replacing part of the run it reads) is refused with both paths named.
Paths are compared resolved (symlinks and ``..`` followed; on a URL, ``..`` folded). A URL and a
local path never overlap.
"""

from __future__ import annotations

import os

from emollm_jax.paths import resolved, url_scheme


class DestinationError(ValueError):
    """A destination that overlaps the source it is made from."""


def check_destination(
    dest: str | os.PathLike,
    source: str | os.PathLike,
    *,
    what: str = "destination",
    allow_inside: bool = False,
) -> None:
    """Refuse ``dest`` if it is ``source``, contains it, or (unless ``allow_inside``, for a
    command whose default output lives in its source, like ``<run>/eval/<split>``) lies in it."""
    d, s = resolved(dest), resolved(source)
    if url_scheme(d) != url_scheme(s):
        return
    if d == s:
        problem = "is the source itself"
    elif d in s.parents:
        problem = "contains the source"
    elif s in d.parents and not allow_inside:
        problem = "is inside the source"
    else:
        return
    raise DestinationError(
        f"{what} {dest} {problem} {source}: writing there could destroy the input; "
        "choose a folder outside it"
    )
