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
checkpoint. Saves are asynchronous (the step loop goes on while arrays are written).
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp

log = logging.getLogger(__name__)

ITEMS = ("params", "opt_state", "train", "data", "meta")


class _IteratorSnapshot:
    """The iterator's state captured when ``save`` is called (the iterator runs on while the
    checkpoint is written in the background). Grain's handler reads ``get_state()`` bytes."""

    def __init__(self, iterator):
        self._state = json.dumps(iterator.get_state(), indent=1).encode()

    def get_state(self) -> bytes:
        return self._state


def checkpoint_root(path: str | os.PathLike) -> pathlib.Path:
    """``<workdir>/checkpoints`` for a run folder, or the folder itself if it holds steps."""
    path = pathlib.Path(path)
    if (path / "checkpoints").is_dir():
        return path / "checkpoints"
    return path


class RunCheckpoints:
    """Save and restore the composite checkpoints of one run."""

    def __init__(
        self, root: str | os.PathLike, *, keep: int = 3, async_save: bool = True, read_only=False
    ):
        self.root = pathlib.Path(root)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep,
            enable_async_checkpointing=async_save,
            create=not read_only,
            read_only=read_only,
            cleanup_tmp_directories=not read_only,
        )
        self.manager = ocp.CheckpointManager(self.root.absolute(), options=options)

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
        force: bool = True,
    ) -> bool:
        items = dict(
            params=ocp.args.StandardSave(params),
            opt_state=ocp.args.StandardSave(opt_state),
            train=ocp.args.StandardSave(train),
            meta=ocp.args.JsonSave(meta),
        )
        if data_iterator is not None:
            items["data"] = grain.checkpoint.CheckpointSave(_IteratorSnapshot(data_iterator))
        saved = self.manager.save(step, args=ocp.args.Composite(**items), force=force)
        if saved:
            log.info("checkpoint %d: saving to %s", step, self.root)
        return saved

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def restore(
        self,
        step: int | None = None,
        *,
        params: Any = None,
        opt_state: Any = None,
        train: Any = None,
        data_iterator=None,
        meta: bool = False,
    ) -> dict:
        """Restore the items whose abstract targets are given (``ShapeDtypeStruct`` trees
        carrying the target shardings: restoring onto another mesh or strategy is a matter of
        passing other shardings)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"{self.root}: no complete checkpoint")
        items = {}
        for name, target in (("params", params), ("opt_state", opt_state), ("train", train)):
            if target is not None:
                items[name] = ocp.args.StandardRestore(target)
        if data_iterator is not None:
            items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
        if meta:
            items["meta"] = ocp.args.JsonRestore()
        restored = self.manager.restore(step, args=ocp.args.Composite(**items))
        return {name: restored[name] for name in items} | {"step": step}

    def read_meta(self, step: int | None = None) -> dict:
        return self.restore(step, meta=True)["meta"]

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def abstract_like(tree, shardings=None):
    """``ShapeDtypeStruct``s of ``tree`` (with ``shardings`` if given, else the arrays' own)."""
    if shardings is None:
        return jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree
        )
    return jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings
    )
