"""HF folder -> Orbax checkpoint that ``restore_model`` and the trainer's ``train.init_from`` read.

Output layout (ours)::

    DST/checkpoints/0/params   every parameter, keyed by our paths (``RunCheckpoints``' item)
    DST/checkpoints/0/meta     {"model": ModelConfig, "config": {"converted_from", "hf_config"},
                                "step": 0}
    DST/hf/                    config.json, generation_config.json, tokenizer... (side files)

Tensors are read a few at a time, put in our layout (the name table's transforms), cast, and
written straight into their place in the stacked Orbax arrays (``orbax_stream``), so memory
holds the tensors in flight (``bounded``), not the model. DST appears only once complete.
"""

from __future__ import annotations

import functools
import os
import pathlib

import numpy as np

from emollm_jax.config.model import to_dict
from emollm_jax.convert import side_files
from emollm_jax.convert.dtypes import cast, declared_dtype, resolve_dtype
from emollm_jax.convert.hf_io import HFCheckpoint, open_hf
from emollm_jax.convert.orbax_stream import StreamedArray, save_streamed_params
from emollm_jax.convert.safetensors_io import TensorSource, atomic_output_dir
from emollm_jax.destinations import check_destination
from emollm_jax.paths import AnyPath, absolute, as_path, local_folder

STEP = 0


def _streamed(ckpt: HFCheckpoint, dtype: np.dtype) -> dict[str, StreamedArray]:
    """One ``StreamedArray`` per parameter, fed tensor by tensor from the HF files."""
    by_param: dict[str, list] = {}
    for name, (row, layer, _) in ckpt.expected.items():
        by_param.setdefault(row.ours, []).append((ckpt.names[name], row, layer))
    unfed = sorted(set(ckpt.params) - set(by_param))
    if unfed:
        raise ValueError(f"no HF tensor feeds these parameters: {unfed}")

    def block(ours: str, entries: dict, layer, alloc):
        shape = tuple(ckpt.params[ours].shape)
        raw, row = entries[layer]
        block_shape = shape if layer is None else shape[1:]
        tensor = ckpt.source.mapped(raw)
        if tensor.dtype != dtype:  # cast first, so the transform moves data into alloc's
            tensor = cast(tensor, dtype, raw)
        return row.transform.to_ours(tensor, block_shape, alloc=alloc)

    return {
        ours: StreamedArray(
            shape=tuple(ckpt.params[ours].shape),
            dtype=dtype,
            stacked=entries[0][2] is not None,
            block=functools.partial(
                block, ours, {layer: (raw, row) for raw, row, layer in entries}
            ),
        )
        for ours, entries in by_param.items()
    }


def hf_to_orbax(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    dtype: str = "keep",
    overwrite: bool = False,
) -> AnyPath:
    """Convert HF folder ``src`` into an Orbax checkpoint folder ``dst`` (see module doc).

    ``dtype``: ``keep`` (the tensors' own dtype), ``float32``, ``bfloat16`` or ``float16``.
    """
    check_destination(dst, src)
    with local_folder(src) as local:  # safetensors reads local files (a gs:// SRC is copied)
        return _convert(local, absolute(src), dst, dtype, overwrite)


def _convert(src: pathlib.Path, named, dst, dtype: str, overwrite: bool) -> AnyPath:
    source = TensorSource(src)
    present = {source.dtype(k) for k in source.keys()}
    name = resolve_dtype(dtype, present, declared_dtype(src / "config.json"))
    ckpt = open_hf(src, param_dtype=name)
    cfg = ckpt.cfg
    meta = {
        "model": to_dict(cfg),
        "config": {"converted_from": str(named), "hf_config": ckpt.original},
        "step": STEP,
    }
    params = _streamed(ckpt, np.dtype(cfg.jnp_param_dtype))
    with atomic_output_dir(dst, overwrite=overwrite) as tmp:
        save_streamed_params(tmp, STEP, params, meta)
        side_files.copy_side_files(src, tmp / side_files.SIDE_DIR)
    return as_path(dst)
