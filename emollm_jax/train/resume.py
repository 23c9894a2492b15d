"""Resuming a run from its checkpoints, refusing with a plain reason when it cannot be done.

- The stored config is compared with the new one before anything is restored: a checkpoint
  made with another model (or another set of trainable parameters: ``train.stage``,
  ``train.train_vision``) is refused naming each differing field and both values; the stored
  ``train_config.json`` is left as it is.
- A checkpoint that cannot be read is named by step and file, with the latest earlier step that
  does restore and the flag to resume from it: ``--config.train.resume_step=N``.
- ``train.resume_step=N`` resumes from step N; checkpoints after it are moved (not deleted) to
  ``<workdir>/abandoned_checkpoints/`` so that those steps can be saved again.
- A checkpoint saved by another number of JAX processes is refused: the arrays would restore
  onto the new mesh, but each process's data iterator position cannot be carried over to
  another process count (elastic resume is not supported yet).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import jax

from emollm_jax.checkpoint.manager import CheckpointReadError, RunCheckpoints, abandon_steps_after
from emollm_jax.checkpoint.usable import config_differences, unreadable
from emollm_jax.config.train import TrainConfig
from emollm_jax.paths import AnyPath

log = logging.getLogger(__name__)

TRAIN_FIELDS = ("stage", "train_vision")  # they decide the optimizer state's structure
ABANDONED = "abandoned_checkpoints"


class ResumeError(ValueError):
    """The run's checkpoints cannot be resumed with this config (or cannot be read).

    Not a ``ConfigError``: it is about the run folder (its message names the checkpoint, and
    every field that differs, or the file that cannot be read); ``python -m emollm_jax.train``
    still reports it as a user error (exit status 2)."""


def resume_step(checkpoints: RunCheckpoints, train: TrainConfig) -> int | None:
    """The step to resume from: ``train.resume_step`` when set (later steps moved aside), else
    the latest complete one (None: a fresh run)."""
    wanted = train.resume_step
    if wanted < 0:
        return checkpoints.latest_step()
    return wanted


def abandon_later_steps(root: AnyPath, train: TrainConfig, workdir: AnyPath) -> None:
    """For ``train.resume_step=N``: move the checkpoints after N aside (process 0 calls it
    before the checkpoint manager lists the steps)."""
    wanted = train.resume_step
    if wanted >= 0:
        abandon_steps_after(root, wanted, workdir / ABANDONED)


def check_same_config(checkpoints: RunCheckpoints, step: int, model: dict, train) -> None:
    """Refuse to resume from a checkpoint made with another model config."""
    stored = _read(checkpoints, step, lambda: checkpoints.read_meta(step))
    differences = config_differences(stored, model, train, TRAIN_FIELDS)
    if differences:
        raise ResumeError(
            f"{checkpoints.root} holds checkpoint {step} of another config; resuming would "
            "need the same one:\n  " + "\n  ".join(differences) + "\nRerun with the "
            "checkpoint's values (its train_config.json beside it) or use another --workdir."
        )


def check_same_process_count(checkpoints: RunCheckpoints, step: int) -> None:
    """Refuse a checkpoint whose data iterator states were saved by another process count."""
    data = checkpoints.root / str(step) / "data"
    names = [p.name for p in data.iterdir()] if data.is_dir() else []
    found = (re.fullmatch(r"process_\d+-of-(\d+)\.json", name) for name in names)
    counts = {int(m.group(1)) for m in found if m}
    now = jax.process_count()
    if counts and counts != {now}:
        saved = ", ".join(str(c) for c in sorted(counts))
        raise ResumeError(
            f"{checkpoints.root} holds checkpoint {step} saved by {saved} JAX process(es); this "
            f"run has {now}. Each process's data position is stored for its own share of the "
            "records, and carrying it over to another process count is not supported: resume "
            f"with {saved} process(es), or start from its latest weights in another --workdir "
            f"with --config.train.init_from={checkpoints.root} (optimizer and data restart)."
        )


def restore(checkpoints: RunCheckpoints, step: int, do_restore: Callable[[int], dict]) -> dict:
    """``do_restore(step)``; when that step cannot be read, say which earlier one can."""
    return _read(checkpoints, step, lambda: do_restore(step), probe=do_restore)


def _read(checkpoints, step: int, read: Callable[[], dict], probe=None) -> dict:
    try:
        return read()
    except CheckpointReadError as e:
        pick = (
            lambda intact: f"rerun with --config.train.resume_step={intact} to resume from it "
            f"(the checkpoints after it are then moved to {ABANDONED}/ beside checkpoints/)"
        )
        raise ResumeError(unreadable(e, checkpoints, step, pick, probe)) from e
