"""Two checkpoint tiers and the choice of the step a restart resumes from.

- persistent: ``<workdir>/checkpoints`` (shared storage or ``gs://``), every
  ``checkpoint.every_steps`` steps; any process count and mesh can restore it.
- local: ``checkpoint.local_dir`` on each host's own disk or RAM disk, every
  ``checkpoint.local_every_steps`` steps, the newest ``checkpoint.local_keep`` kept. Each process
  writes its own shards, its own Grain iterator state and its own commit into
  ``<local_dir>/run-<hash of the workdir>/process_<i>-of-<n>/<step>``, so a local save costs no
  network traffic and a restore from it is as exact as one from the persistent tier. It is
  only restored by the same number of processes.

On a restart every process lists its complete local steps and the processes agree (an
all-gather) on the newest step that every one of them holds. The newest of that step and the
persistent tier's latest wins (the local tier when both hold it: it reads faster). A host whose
local tier is gone (a replaced VM, a wiped RAM disk) makes everyone fall back to the persistent
tier (its steps are not copied from a peer's replica); the log names the processes that lacked
the step. Local steps newer than the one restored belong to an abandoned past and are removed.

Orbax's ``orbax.checkpoint.experimental.emergency.CheckpointManager`` does the same on
multi-slice TPU jobs, but it does not fit here: it needs at least two data-parallel replicas
(slices) and restores a single PyTree ``state`` item, without the data iterator, so a restore
from its local tier replays or skips data. We keep its local tier's recipe (every process its
own writer and committer: ``manager._per_process_handlers``) inside our own composite
checkpoint, which carries the Grain iterator state in every tier.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os

import jax
import numpy as np
from jax.experimental import multihost_utils

from emollm_jax.paths import AnyPath, absolute, as_path, rmtree

log = logging.getLogger(__name__)

LOCAL, PERSISTENT = "local", "persistent"
_MAX_LISTED = 64  # local steps compared across processes (local_keep is a handful)


def local_root(local_dir: str, workdir: AnyPath) -> AnyPath:
    """This process's local-tier folder for the run in ``workdir``."""
    run = hashlib.sha1(os.fspath(absolute(workdir)).encode()).hexdigest()[:12]
    process = f"process_{jax.process_index()}-of-{jax.process_count()}"
    return as_path(local_dir) / f"run-{run}" / process


def complete_steps(root: AnyPath) -> list[int]:
    """The steps whose folders Orbax has committed (renamed from their temporary name)."""
    if not root.is_dir():
        return []
    return sorted(int(p.name) for p in root.iterdir() if p.name.isdigit())


@dataclasses.dataclass(frozen=True)
class Choice:
    tier: str | None  # None: nothing to restore
    step: int | None
    reason: str


def _gather(steps: list[int]) -> np.ndarray:
    """[process, _MAX_LISTED]: every process's newest local steps, -1 padded."""
    mine = np.full((_MAX_LISTED,), -1, np.int64)
    newest = sorted(steps)[-_MAX_LISTED:]
    mine[: len(newest)] = newest
    if jax.process_count() == 1:
        return mine[None]
    return np.asarray(multihost_utils.process_allgather(mine)).reshape(-1, _MAX_LISTED)


def choose(persistent_latest: int | None, local_steps: list[int] | None) -> Choice:
    """Where to resume from: ``local_steps`` is this process's list (None: no local tier).
    Every process must call it (an all-gather) and gets the same answer."""
    if local_steps is None:
        if persistent_latest is None:
            return Choice(None, None, "no checkpoint")
        return Choice(PERSISTENT, persistent_latest, "no local tier configured")
    table = _gather(local_steps)
    held = [set(int(s) for s in row if s >= 0) for row in table]
    common = set.intersection(*held)
    newest_local = max(common, default=None)
    newest_any = max(set.union(*held), default=None)
    lacking = ""
    if newest_any is not None and newest_any != newest_local:
        missing = [i for i, steps in enumerate(held) if newest_any not in steps]
        lacking = f"local step {newest_any} is missing on process(es) {missing}"
    no_persistent = persistent_latest is None
    if newest_local is not None and (no_persistent or newest_local >= persistent_latest):
        return Choice(LOCAL, newest_local, lacking or "newest step on every host")
    if no_persistent:
        return Choice(None, None, lacking or "no checkpoint")
    why = lacking or (
        "the local tier is empty"
        if newest_local is None
        else f"local step {newest_local} is older than persistent step {persistent_latest}"
    )
    return Choice(PERSISTENT, persistent_latest, why)


def prune_local(root: AnyPath, keep_up_to: int | None) -> list[int]:
    """Remove this process's local steps after ``keep_up_to`` (all of them when None) and any
    unfinished ones: a run resumed from an earlier step saves those steps again."""
    removed = []
    if not root.is_dir():
        return removed
    for path in root.iterdir():
        later = path.name.isdigit() and (keep_up_to is None or int(path.name) > keep_up_to)
        if later or not path.name.isdigit():
            rmtree(path)
            if path.name.isdigit():
                removed.append(int(path.name))
    return sorted(removed)
