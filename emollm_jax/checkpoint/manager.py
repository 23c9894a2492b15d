"""Orbax checkpoints of a training run under ``<workdir>/checkpoints/<step>/``.

Each checkpoint is a composite of items:

- ``params``: every parameter (trainable and frozen) as a plain nested dict of arrays keyed by
  our parameter paths (``language_model/layers/attn/q/kernel``...), independent of the
  training stage, so any run, converter or evaluator can read it;
- ``opt_state``: the optax state of the trainable parameters;
- ``train``: the step counter and the base PRNG key;
- ``data``: the Grain iterator state of every process (Grain's own Orbax handler);
- ``meta``: JSON — the model config and the whole run config, for provenance and for loading
  a checkpoint without its config file.

Orbax writes each checkpoint into a temporary folder and renames it only once every item is
complete, and lists only finished ones: a run killed mid-save resumes from the last complete
checkpoint. On cloud storage (a ``gs://`` or ``s3://`` workdir), which has no folder rename,
Orbax writes the step folder in place and marks it finished with a ``commit_success.txt`` object
written last; a step folder without it is unfinished, never listed, and removed like a temporary
folder (``s3://`` arrays: ``s3_arrays``). Saves are asynchronous (the step loop goes on while
arrays are written).

The local tier (``per_process=True``, ``checkpoint/tiers.py``) holds the same items.

Failures are reported once, by step and cause: a save that fails (disk full...) raises
``CheckpointSaveError`` naming the step, the folder and the operating system's reason, after
removing the temporary folders it left; ``check_for_errors()`` raises it as soon as a background
save has failed, rather than at the next save. A checkpoint that cannot be read raises
``CheckpointReadError`` naming the step and, where the error says, the file.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp
from etils import epath

from emollm_jax.checkpoint import s3_arrays
from emollm_jax.paths import (
    COMMIT_MARK,
    AnyPath,
    absolute,
    as_path,
    is_url,
    move_folder,
    rmtree,
    url_scheme,
)

log = logging.getLogger(__name__)

EMA = "ema"  # the item of a run that keeps a moving average of its parameters (train.ema_decay)
ITEMS = ("params", "opt_state", "train", "data", "meta", EMA)
TMP_MARK = ".orbax-checkpoint-tmp"  # in the names of Orbax's unfinished checkpoint folders


class CheckpointSaveError(RuntimeError):
    """A checkpoint could not be written (its temporary folder has been removed)."""


class CheckpointReadError(RuntimeError):
    """A checkpoint could not be read."""

    def __init__(self, message: str, step: int, file: str | None):
        super().__init__(message)
        self.step = step
        self.file = file


def _causes(error: BaseException):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:500] if text else ""


def root_cause(error: BaseException, near: AnyPath | None = None) -> str:
    """One line: the operating system's reason when the chain holds one (``No space left on
    device``), else the first error of the chain whose message names a path under ``near``
    (TensorStore's, naming the array and file, rather than its wrappers), else the first."""
    chain = [e for e in _causes(error) if not isinstance(e, StopIteration)] or [error]
    for e in chain:
        if isinstance(e, OSError) and e.errno:
            where = f": {e.filename}" if e.filename else ""
            return f"{os.strerror(e.errno)} [errno {e.errno}]{where}"
    named = [e for e in chain if near is not None and str(absolute(near)) in _first_line(e)]
    top = (named or chain)[0]
    text = _first_line(top)
    return f"{type(top).__name__}: {text}" if text else type(top).__name__


def _join_background_writes(timeout_s: float = 120.0) -> None:
    """Wait for Orbax's background write threads still running after one of them failed.
    Orbax has no public handle on them: they are threads of its futures module."""
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and type(thread).__module__.startswith(
            "orbax.checkpoint"
        ):
            try:
                threading.Thread.join(thread, timeout_s)
            except RuntimeError:
                pass


def _unreadable_json(step_dir: AnyPath) -> str | None:
    """The first of Orbax's JSON metadata files in ``step_dir`` that does not parse."""
    if not step_dir.is_dir():
        return None
    for path in sorted(step_dir.rglob("*")):
        if path.is_file() and (path.name.startswith("_") or path.suffix == ".json"):
            try:
                json.loads(path.read_bytes())
            except (ValueError, OSError):
                return str(path)
    return None


def _file_in(error: BaseException, root: AnyPath) -> str | None:
    """The first path under ``root`` that the error chain mentions."""
    pattern = re.compile(re.escape(str(absolute(root))) + r"[^\s'\"\]\),]*")
    for e in _causes(error):
        found = pattern.search(str(e))
        if found:
            return found.group(0)
        if isinstance(e, OSError) and e.filename:
            return str(e.filename)
    return None


class _IteratorSnapshot:
    """The iterator's state captured when ``save`` is called (the iterator runs on while the
    checkpoint is written in the background). Grain's handler reads ``get_state()`` bytes."""

    def __init__(self, state: dict):
        self._state = json.dumps(state, indent=1).encode()

    def get_state(self) -> bytes:
        return self._state


def checkpoint_root(path: str | os.PathLike) -> AnyPath:
    """``<workdir>/checkpoints`` for a run folder, or the folder itself if it holds steps."""
    path = as_path(path)
    if (path / "checkpoints").is_dir():
        return path / "checkpoints"
    return path


def _per_process_handlers(options: ocp.options.MultiprocessingOptions) -> dict:
    """Item handlers with which every process writes (and reads) its own addressable shards,
    its own metadata and commits its own step folder: a folder that only this process sees
    (a host's local disk). Orbax's emergency checkpointing builds its local tier the same way."""
    registry = ocp.type_handlers.create_type_handler_registry(
        (
            jax.Array,
            ocp.type_handlers.ArrayHandler(
                primary_host=None, replica_id=None, use_replica_parallel=False
            ),
        )
    )

    def tree():
        return ocp.PyTreeCheckpointHandler(
            use_ocdbt=True, multiprocessing_options=options, type_handler_registry=registry
        )

    return {
        "params": tree(),
        "opt_state": tree(),
        "train": tree(),
        "meta": ocp.JsonCheckpointHandler(multiprocessing_options=options),
        "data": grain.checkpoint.CheckpointHandler(),  # one file per process already
    }


class RunCheckpoints:
    """Save and restore the composite checkpoints of one run.

    ``per_process=True``: ``root`` is this process's own folder (the local tier, on a host's
    own disk): every process writes all of its shards there and commits its own steps, so a
    restore on the same processes and mesh reads nothing from any other host."""

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        keep: int = 3,
        async_save: bool = True,
        read_only=False,
        per_process: bool = False,
    ):
        self.root = as_path(root)
        self.per_process = per_process
        extra, handlers = {}, None
        if per_process:
            multiprocessing = ocp.options.MultiprocessingOptions(
                primary_host=None, barrier_sync_key_prefix="local"
            )
            handlers = _per_process_handlers(multiprocessing)
            extra = dict(
                multiprocessing_options=multiprocessing,
                save_root_metadata=False,
                # Orbax's asynchronous folder creation signals "created" through keys shared
                # by all processes: with every process its own primary, one process's signal
                # let another write before its own folder existed (seen: ENOENT, then a hang).
                async_options=ocp.AsyncOptions(create_directories_asynchronously=False),
            )
        if url_scheme(self.root) == "s3":
            s3_arrays.check(self.root)  # Orbax's arrays on S3 (or a clear refusal)
            # Orbax picks the commit file for gs:// only; S3 has no folder rename either.
            extra["atomicity_options"] = ocp.options.AtomicityOptions(
                mode=ocp.options.AtomicityMode.COMMIT_FILE
            )
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep,
            enable_async_checkpointing=async_save,
            create=not read_only,
            read_only=read_only,
            cleanup_tmp_directories=not read_only,
            **extra,
        )
        self.manager = ocp.CheckpointManager(
            absolute(self.root), options=options, item_handlers=handlers
        )
        self._saving: int | None = None  # the step of the last save started
        self.failed = False

    def _tree_save(self, tree):
        return ocp.args.PyTreeSave(tree) if self.per_process else ocp.args.StandardSave(tree)

    def _tree_restore(self, target):
        if not self.per_process:
            return ocp.args.StandardRestore(target)
        restore_args = ocp.checkpoint_utils.construct_restore_args(target)
        return ocp.args.PyTreeRestore(item=target, restore_args=restore_args)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def save(
        self,
        step: int,
        *,
        params: dict,
        opt_state: Any,
        train: dict,
        meta: dict,
        data_iterator=None,
        data_state: dict | None = None,
        ema: dict | None = None,
        force: bool = True,
    ) -> bool:
        """Save one step (``data_state``, when given, is the iterator state to store instead
        of ``data_iterator``'s current one; ``ema``, the learning parameters' moving average,
        when the run keeps one)."""
        items = dict(
            params=self._tree_save(params),
            opt_state=self._tree_save(opt_state),
            train=self._tree_save(train),
            meta=ocp.args.JsonSave(meta),
        )
        if ema is not None:
            items[EMA] = self._tree_save(ema)
        if data_iterator is not None:
            state = data_iterator.get_state() if data_state is None else data_state
            items["data"] = grain.checkpoint.CheckpointSave(_IteratorSnapshot(state))
        try:
            saved = self.manager.save(step, args=ocp.args.Composite(**items), force=force)
        except Exception as e:  # an earlier async save's failure surfaces here too
            self._save_failed(self._saving if self._saving is not None else step, e)
        if saved:
            self._saving = step
            log.info("checkpoint %d: saving to %s", step, self.root)
        return saved

    def wait(self) -> None:
        try:
            self.manager.wait_until_finished()
        except Exception as e:
            self._save_failed(self._saving, e)

    def check_for_errors(self) -> None:
        """Raise ``CheckpointSaveError`` now if a background save has failed (cheap: call it
        every step)."""
        # Orbax keeps the background save's thread and its exception here (no public probe;
        # wait_until_finished re-raises it).
        thread_ref = getattr(self.manager, "_finalize_thread", None)
        if thread_ref is not None and thread_ref.map(
            lambda t: t is not None and not t.is_alive() and t.exception is not None
        ):
            self.wait()

    def _save_failed(self, step: int | None, error: BaseException):
        self.failed = True
        _join_background_writes()  # the save's other writers may still be filling its folder
        removed = []
        if (self.per_process or jax.process_index() == 0) and self.root.is_dir():
            for path in self.root.iterdir():
                if TMP_MARK in path.name or (
                    is_url(path) and path.name.isdigit() and not (path / COMMIT_MARK).exists()
                ):
                    rmtree(path)
                    removed.append(path.name)
        cleaned = f"; removed its temporary folder(s) {removed}" if removed else ""
        raise CheckpointSaveError(
            f"checkpoint {step} could not be written to {self.root}: "
            f"{root_cause(error, self.root)}"
            f"{cleaned}. Earlier complete checkpoints are untouched: free space (or fix the "
            "cause) and rerun to resume from the latest of them."
        ) from error

    def restore(
        self,
        step: int | None = None,
        *,
        params: Any = None,
        opt_state: Any = None,
        train: Any = None,
        data_iterator=None,
        meta: bool = False,
        ema: Any = None,
    ) -> dict:
        """Restore the items whose abstract targets are given (``ShapeDtypeStruct`` trees
        carrying the target shardings: restoring onto another mesh or strategy is a matter of
        passing other shardings)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"{self.root}: no complete checkpoint")
        items = {}
        targets = (("params", params), ("opt_state", opt_state), ("train", train), (EMA, ema))
        for name, target in targets:
            if target is not None:
                items[name] = self._tree_restore(target)
        if data_iterator is not None:
            items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
        if meta:
            items["meta"] = ocp.args.JsonRestore()
        try:
            restored = self.manager.restore(step, args=ocp.args.Composite(**items))
        except Exception as e:  # TensorStore (a bare Exception), JSON, Grain state...
            file = _file_in(e, self.root) or _unreadable_json(self.root / str(step))
            where = f" (file {file})" if file else ""
            raise CheckpointReadError(
                f"checkpoint {step} in {self.root} cannot be read{where}: "
                f"{root_cause(e, self.root)}",
                step,
                file,
            ) from e
        return {name: restored[name] for name in items} | {"step": step}

    def read_meta(self, step: int | None = None) -> dict:
        return self.restore(step, meta=True)["meta"]

    def ema_tree(self, step: int) -> dict | None:
        """The stored tree of step ``step``'s moving average (its leaves Orbax's array metadata,
        its keys strings), or None when the step keeps none."""
        folder = self.root / str(step) / EMA
        if not folder.is_dir():
            return None
        # The item's own handler: a manager opened to read knows no handler until it restores.
        return ocp.PyTreeCheckpointHandler().metadata(epath.Path(os.fspath(absolute(folder)))).tree

    def close(self) -> None:
        try:
            if not self.failed:
                self.wait()
        finally:
            try:
                self.manager.close()
            except Exception:  # the failure was reported already
                if not self.failed:
                    raise


def abandon_steps_after(root: str | os.PathLike, step: int, to: str | os.PathLike) -> list[int]:
    """Move the checkpoints of ``root`` after ``step`` into ``to/<step>`` (kept, not deleted),
    so that a run resumed from ``step`` can save those steps again. ``step`` must exist."""
    root = as_path(root)
    steps = sorted(int(p.name) for p in root.iterdir() if p.name.isdigit()) if root.is_dir() else []
    if step not in steps:
        raise FileNotFoundError(
            f"config.train.resume_step={step}: {root} has no checkpoint {step} "
            f"(it has {steps or 'none'})"
        )
    later = [s for s in steps if s > step]
    for s in later:
        dest, n = as_path(to) / str(s), 1
        while dest.exists():  # abandoned before: keep both
            dest, n = as_path(to) / f"{s}.{n}", n + 1
        dest.parent.mkdir(parents=True, exist_ok=True)
        move_folder(root / str(s), dest, marker=COMMIT_MARK)
    if later:
        log.warning("resuming from step %d: moved checkpoints %s to %s", step, later, to)
    return later
