"""Resuming a run from its checkpoints, refusing with a plain reason when it cannot be done.

- The stored config is compared with the new one before anything is restored: a checkpoint
  made with another model (or another set of trainable parameters: ``train.stage``,
  ``train.train_vision``) is refused naming each differing field and both values; the stored
  ``train_config.json`` is left as it is.
- A checkpoint that cannot be read is named by step and file, with the latest earlier step that
  does restore and the flag to resume from it: ``--config.train.resume_step=N``.
- ``train.resume_step=N`` resumes from step N; checkpoints after it are moved (not deleted) to
  ``<workdir>/abandoned_checkpoints/`` so that those steps can be saved again.
- A checkpoint saved by another number of JAX processes resumes with the same global batch
  (``data.batch_size`` is global; the new count must divide it) and the same data position:
  the arrays restore onto the new mesh, and each new process's data iterator state is derived
  from the global record position that the saved states name (``data/position.py``). Refused,
  naming the fields, when the global batch changed or the pipeline's state names no global
  position (Grain worker processes, packing).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable

import jax

from emollm_jax.checkpoint.manager import CheckpointReadError, RunCheckpoints, abandon_steps_after
from emollm_jax.checkpoint.usable import config_differences, unreadable
from emollm_jax.config.train import TrainConfig
from emollm_jax.data import position
from emollm_jax.paths import AnyPath

log = logging.getLogger(__name__)

TRAIN_FIELDS = ("stage", "train_vision")  # they decide the optimizer state's structure
ABANDONED = "abandoned_checkpoints"
DATA_STATE = re.compile(r"process_(\d+)-of-(\d+)\.json")  # Grain's state file per process


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


def _saved_data_states(checkpoints: RunCheckpoints, step: int) -> tuple[int | None, dict]:
    """(the process count that saved ``step``'s data states, {process: its state file})."""
    data = checkpoints.root / str(step) / "data"
    found = [DATA_STATE.fullmatch(p.name) for p in data.iterdir()] if data.is_dir() else []
    files = {(int(m.group(1)), int(m.group(2))): data / m.group(0) for m in found if m}
    counts = {count for _, count in files}
    if len(counts) > 1:
        raise ResumeError(f"{data} holds data states of several process counts: {sorted(counts)}")
    count = counts.pop() if counts else None
    return count, {process: path for (process, _), path in files.items()}


def data_state(checkpoints: RunCheckpoints, step: int, config) -> dict | None:
    """This process's data iterator state when ``step`` was saved by another process count
    (None: the same count, each process restores its own saved state)."""
    saved, files = _saved_data_states(checkpoints, step)
    now = jax.process_count()
    if saved is None or saved == now:
        return None
    stored = _read(checkpoints, step, lambda: checkpoints.read_meta(step))
    stored_data = stored.get("config", {}).get("data", {})
    where = (
        f"{checkpoints.root} holds checkpoint {step} saved by {saved} JAX process(es); this run "
        f"has {now}"
    )
    if stored_data.get("batch_size") != config.data.batch_size:
        raise ResumeError(
            f"{where}. A change of process count keeps the global batch: config.data.batch_size "
            f"is {stored_data.get('batch_size')!r} in the checkpoint, {config.data.batch_size!r} "
            f"now. Rerun with --config.data.batch_size={stored_data.get('batch_size')}."
        )
    fields = position.unsupported(stored_data) + position.unsupported(config.data)
    if fields:
        named = ", ".join(dict.fromkeys(fields))
        raise ResumeError(
            f"{where}. Carrying the data position over to another process count needs a "
            f"pipeline whose state names a global record position, not one with {named} (in "
            f"the checkpoint or now): resume with {saved} process(es), or start from its "
            f"latest weights in another --workdir with --config.train.init_from={checkpoints.root}"
            " (optimizer and data restart)."
        )
    states = {p: json.loads(path.read_text()) for p, path in files.items()}
    try:
        read = position.records_read(states)
        at = position.global_position(read, saved)
    except ValueError as e:
        raise ResumeError(f"{where}, and its data states cannot be carried over: {e}") from e
    again = position.records_read_past(read, saved, at)
    log.warning(
        "checkpoint %d was saved by %d process(es), this run has %d: resuming at record %d of "
        "the data stream (global batch %d)%s",
        step, saved, now, at, config.data.batch_size,
        f"; {again} record(s) past it that some process had read are read again" if again else "",
    )  # fmt: skip
    return position.state_for(at, jax.process_index(), now)


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
