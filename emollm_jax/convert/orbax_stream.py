"""The ``params`` item of an Orbax run checkpoint, written and read one block at a time.

Orbax's ``StandardSave`` takes a tree of arrays that are all in memory at once, and
``StandardRestore`` returns whole arrays. A converter cannot afford either at 7B or 13B scale,
so both directions go through Orbax's own extension points instead (our choice, after reading
orbax-checkpoint 0.12's source; the checkpoint format itself is unchanged):

- Writing: leaves are ``StreamedArray`` placeholders (shape, dtype and a maker of blocks).
  ``StreamedArrayHandler`` is an Orbax ``TypeHandler`` (the documented way to teach Orbax a new
  leaf type): it creates each leaf's TensorStore array from the spec Orbax builds
  (``type_handlers.get_json_tspec_write``, with the array's storage chunk set to one block,
  uncompressed) and makes and writes the blocks of all leaves a few at a time
  (``bounded.run_bounded``: a thread pool within a budget of bytes in flight). The item is
  stored without OCDBT (Orbax's ``use_ocdbt=False``), so each block is one chunk file that
  the converter makes in place (``zarr_chunks``); restoring takes the layout from the item's
  metadata, as for any Orbax checkpoint. Uncompressed is
  our choice for converted checkpoints: zstd is one more pass over every byte in both
  directions and saves little on weights (compressed, the benchmark's 2.20 GB of random
  bfloat16 weights took 1.72 GB); readers take the codec from the array's own metadata, so
  restoring is unchanged. It reports
  the ``np.ndarray`` type string, so the item's ``_METADATA`` is exactly what saving numpy
  arrays writes, and ``StandardRestore`` (``emollm_jax.checkpoint.restore.restore_model``, the
  trainer's ``train.init_from``) reads it like any other checkpoint. The handler is used
  through a private type registry given to a ``PyTreeCheckpointHandler`` for the ``params``
  item, so nothing is registered globally.
- Reading: ``ParamsReader`` opens each leaf with the TensorStore spec Orbax itself uses to
  restore it (``type_handlers.get_json_tspec_read`` from the item's metadata) and reads
  slices along the leading (stacked ``layers``) axis, one storage chunk row at a time (a map
  of the chunk's file where the chunk is plain, ``zarr_chunks``).

Memory bound. A stacked parameter ``[layers, ...]`` is written as one storage chunk per layer,
so converting HF -> Orbax holds the HF tensors in flight (``bounded.IN_FLIGHT_BYTES``, or the
largest tensor, e.g. the embedding table, when that is larger). Reading a checkpoint this
module wrote does the same. A checkpoint the trainer wrote stores each array as one chunk (per
device shard), so reading it holds whole stacked arrays: the largest of our arrays (e.g.
``layers/mlp/gate/kernel``) is then the bound.

The step folder holds the items ``params`` and ``meta`` of ``RunCheckpoints``' layout
(``emollm_jax/checkpoint/manager.py``); Orbax writes it under a temporary name and renames it
when complete, as for the trainer's checkpoints.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import functools
import math
import os
import pathlib
import threading
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
import tensorstore as ts
from orbax.checkpoint import future as ocp_future
from orbax.checkpoint import type_handlers

from emollm_jax.checkpoint.manager import EMA, RunCheckpoints, checkpoint_root
from emollm_jax.convert.bounded import Alloc, run_bounded, scratch
from emollm_jax.convert.zarr_chunks import PlainChunks
from emollm_jax.paths import absolute, as_path

# A block's place in its leaf: a layer index (the block is ``leaf[i]``) or None (the whole leaf).
Index = int | None


@dataclasses.dataclass(frozen=True, eq=False)
class StreamedArray:
    """A leaf written block by block: ``block(index, alloc)`` makes the block at ``index``,
    moving data only into arrays from ``alloc`` (``file_maps``: the block's place in its
    file); ``stacked`` leaves have one block per index of their leading axis, others the
    single index None. ``block`` is called from several threads at once (for different
    blocks)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    stacked: bool
    block: Callable[[Index, Alloc], np.ndarray]

    @property
    def block_shape(self) -> tuple[int, ...]:
        return (1, *self.shape[1:]) if self.stacked else self.shape

    @property
    def indices(self) -> list[Index]:
        return list(range(self.shape[0])) if self.stacked else [None]

    @property
    def block_bytes(self) -> int:
        return math.prod(self.block_shape) * np.dtype(self.dtype).itemsize


class StreamedArrayHandler(type_handlers.TypeHandler):
    """Writes ``StreamedArray`` leaves block by block (see the module docstring); reading is a
    numpy array's (the metadata names it so)."""

    def __init__(self):
        self._numpy = type_handlers.NumpyHandler()

    def typestr(self) -> str:
        return self._numpy.typestr()

    async def metadata(self, infos):
        return await self._numpy.metadata(infos)

    async def deserialize(self, infos, args=None):
        return await self._numpy.deserialize(infos, args)

    async def serialize(self, values, infos, args=None):
        args = args or [type_handlers.SaveArgs()] * len(values)
        type_handlers.check_input_arguments(values, infos, args)
        return [
            ocp_future.CommitFutureAwaitingContractedSignals(
                self._write(values, infos, args), name="streamed_array_write"
            )
        ]

    async def _open(self, value: StreamedArray, info, arg):
        await info.await_path_creation()
        info = copy.copy(info)
        info.use_compression = False  # see the module docstring
        spec = type_handlers.get_json_tspec_write(
            info,
            use_ocdbt=info.is_ocdbt_checkpoint,
            global_shape=value.shape,
            local_shape=value.block_shape,
            dtype=value.dtype,
            process_index=jax.process_index() if info.is_ocdbt_checkpoint else None,
            arg=arg,
        )
        return await ts.open(ts.Spec(spec), create=True, open=True, context=info.ts_context)

    async def _write(self, values, infos, args) -> None:
        stores = await asyncio.gather(*map(self._open, values, infos, args))
        tasks = [
            (
                2 * value.block_bytes,
                functools.partial(_write_block, store, PlainChunks.of(store), value, index),
            )
            for value, store in zip(values, stores)
            for index in value.indices
        ]
        await asyncio.to_thread(run_bounded, tasks)


def _write_block(store, chunks: PlainChunks | None, value: StreamedArray, index: Index) -> None:
    """Make one block and write it: straight into its chunk's file where the array's chunks
    are plain (``zarr_chunks``; a block is one chunk), else through TensorStore."""
    if chunks is not None:
        rank = len(value.shape)
        grid = (0,) * rank if index is None else (index,) + (0,) * (rank - 1)
        chunks.make(grid, lambda alloc: _as_block(value, index, alloc).reshape(value.block_shape))
        return
    target = store if index is None else store[index]
    target.write(_as_block(value, index, scratch)).result()


def _as_block(value: StreamedArray, index: Index, alloc: Alloc) -> np.ndarray:
    return np.asarray(value.block(index, alloc), value.dtype)


def _nested(flat: dict[str, Any]) -> dict:
    """``{"a/b": x}`` -> ``{"a": {"b": x}}`` (numeric parts as ints, as ``nnx.to_pure_dict``)."""
    tree: dict = {}
    for path, leaf in flat.items():
        node = tree
        *parents, last = [int(p) if p.isdigit() else p for p in path.split("/")]
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = leaf
    return tree


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    out = {}
    for key, value in tree.items():
        out.update(_flat(value, f"{prefix}/{key}" if prefix else str(key)))
    return out


def save_streamed_params(
    path: str | os.PathLike, step: int, params: dict[str, StreamedArray], meta: dict
) -> pathlib.Path:
    """Write checkpoint ``step`` under ``<path>/checkpoints`` with the items ``params`` (from
    ``{our/param/path: StreamedArray}``) and ``meta`` (JSON), in ``RunCheckpoints``' layout."""
    root = pathlib.Path(path) / "checkpoints"
    registry = type_handlers.create_type_handler_registry(
        (StreamedArray, StreamedArrayHandler()),
    )
    items = ocp.handlers.DefaultCheckpointHandlerRegistry()
    items.add(
        "params",
        ocp.args.PyTreeSave,
        ocp.PyTreeCheckpointHandler(use_ocdbt=False, type_handler_registry=registry),
    )
    items.add("meta", ocp.args.JsonSave)
    options = ocp.CheckpointManagerOptions(enable_async_checkpointing=False, create=True)
    manager = ocp.CheckpointManager(root.absolute(), options=options, handler_registry=items)
    try:
        manager.save(
            step,
            args=ocp.args.Composite(
                params=ocp.args.PyTreeSave(_nested(params)), meta=ocp.args.JsonSave(meta)
            ),
            force=True,
        )
        manager.wait_until_finished()
    finally:
        manager.close()
    return root


@dataclasses.dataclass(frozen=True)
class Leaf:
    shape: tuple[int, ...]
    dtype: np.dtype
    name: str  # Orbax's name for the leaf's array inside the item
    chunk_rows: int  # storage chunk extent along the leading axis
    item: Any  # the folder of the item holding it (params, or the moving average)


class ParamsReader:
    """The ``params`` item of one step of a run (a run folder, its ``checkpoints`` folder or
    a converted checkpoint), read one leading-axis chunk row at a time.

    ``step=None`` takes the latest complete step. ``meta`` is the step's ``meta`` item.
    ``weights``: ``params``; ``ema``, the moving average a run with ``train.ema_decay`` keeps of
    its learning parameters (read in their place; the frozen ones from ``params``); ``auto``,
    the average where the step has one.
    """

    def __init__(self, path: str | os.PathLike, step: int | None = None, weights: str = "auto"):
        # Orbax reads only absolute paths (a relative one is resolved against the cwd here).
        self.root = checkpoint_root(absolute(path))
        ckpts = RunCheckpoints(self.root, read_only=True)
        steps = ckpts.all_steps()
        if not steps:
            hint = " (a Hugging Face folder?)" if (self.root / "config.json").exists() else ""
            raise FileNotFoundError(f"{self.root}: no complete Orbax checkpoint{hint}")
        if step is not None and step not in steps:
            raise FileNotFoundError(f"{self.root}: no complete checkpoint at step {step} ({steps})")
        self.step = max(steps) if step is None else step
        self.meta = ckpts.read_meta(self.step)
        step_dir = ocp.step.standard_name_format().find_step(self.root, self.step).path
        self.directory = as_path(step_dir) / "params"
        metadata = ocp.PyTreeCheckpointHandler().metadata(self.directory)
        self._use_zarr3 = bool(metadata.use_zarr3)
        self._ocdbt = type_handlers.is_ocdbt_checkpoint(self.directory)
        self._context = type_handlers.get_ts_context(use_ocdbt=self._ocdbt)
        self.leaves: dict[str, Leaf] = {}
        trees = {self.directory: metadata.tree}
        average = None if weights == "params" else ckpts.ema_tree(self.step)
        self.weights = "params" if average is None else "ema"  # what ``read`` gives
        if average is not None:
            trees[as_path(step_dir) / EMA] = average
        elif weights == "ema":
            raise FileNotFoundError(
                f"{self.root}: checkpoint {self.step} keeps no moving average (its run had "
                "train.ema_decay=0): pass --weights params or auto"
            )
        for item, tree in trees.items():  # the average's leaves replace the parameters'
            for path_, m in _flat(tree).items():
                chunk = getattr(m.storage, "chunk_shape", None) or m.shape
                rows = chunk[0] if m.shape else 1
                self.leaves[path_] = Leaf(tuple(m.shape), np.dtype(m.dtype), m.name, rows, item)
        self._open: dict[str, Any] = {}
        self._chunks: dict[str, PlainChunks | None] = {}
        self._rows: dict[tuple[str, int], np.ndarray] = {}
        self._lock = threading.Lock()

    def _store(self, path: str):
        with self._lock:
            if path not in self._open:
                info = type_handlers.ParamInfo(
                    name=self.leaves[path].name,
                    parent_dir=self.leaves[path].item,
                    is_ocdbt_checkpoint=self._ocdbt,
                    use_zarr3=self._use_zarr3,
                    ts_context=self._context,
                )
                spec = type_handlers.get_json_tspec_read(info, use_ocdbt=self._ocdbt)
                self._open[path] = ts.open(
                    ts.Spec(spec), open=True, read=True, context=self._context
                )
            opening = self._open[path]
        return opening.result()

    def _read(self, path: str, start: int | None, stop: int | None) -> np.ndarray:
        """``leaf[start:stop]`` (the whole leaf: None, None): a map of one chunk's file where
        that is exactly one plain chunk (``zarr_chunks``), else read through TensorStore."""
        store, leaf = self._store(path), self.leaves[path]
        with self._lock:
            if path not in self._chunks:
                self._chunks[path] = None if self._ocdbt else PlainChunks.of(store)
            chunks = self._chunks[path]
        shape = leaf.shape if start is None else (stop - start, *leaf.shape[1:])
        if chunks is not None and chunks.chunk_shape == shape:
            rank = len(leaf.shape)
            grid = (0,) * rank if start is None else (start // shape[0],) + (0,) * (rank - 1)
            chunk = chunks.mapped(grid)
            if chunk is not None:
                return chunk
        return (store if start is None else store[start:stop]).read().result()

    def row_start(self, path: str, index: int) -> int:
        """The first index of the chunk row that holds ``leaf[index]``."""
        return index - index % self.leaves[path].chunk_rows

    def read(self, path: str, index: Index = None) -> np.ndarray:
        """Leaf ``path`` whole (``index=None``) or ``leaf[index]``. The chunk row holding
        ``index`` is kept until ``forget(path, start)`` drops it, so reading a row's layers
        one after the other reads each stored byte once. Threads may read different rows at
        once."""
        leaf = self.leaves[path]
        if index is None:
            return self._read(path, None, None)
        start = self.row_start(path, index)
        with self._lock:
            block = self._rows.get((path, start))
        if block is None:
            stop = min(start + leaf.chunk_rows, leaf.shape[0])
            block = self._read(path, start, stop)
            with self._lock:
                self._rows[(path, start)] = block
        return block[index - start]

    def forget(self, path: str, start: int | None = None) -> None:
        """Drop the kept chunk row of ``path`` that starts at ``start`` (every one: None)."""
        with self._lock:
            for key in [k for k in self._rows if k[0] == path and start in (None, k[1])]:
                del self._rows[key]
