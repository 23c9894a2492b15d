"""Orbax checkpoint (a run, its ``checkpoints`` folder, or a converted one) -> HF folder.

The model is the one the checkpoint's ``meta`` item records. Tensors are read by stored chunk
row (``orbax_stream.ParamsReader``; one layer slice for checkpoints the converter wrote), LoRA
adapters merged (default) or set aside for a PEFT folder, transformed to HF's layout, cast,
and written into their planned place in the shard files (``ShardWriter``), several rows at
once within a budget of bytes in flight (``bounded``): memory holds the rows in flight (see
``orbax_stream`` for checkpoints the trainer wrote). An EmoLLM model (multi-perspective
projector) is written in the layout of its PyTorch export, with the code
``trust_remote_code=True`` loads (``emollm_layout``).
``config.json`` comes from the model config layered over the side files'
copy (``side_files``), which also supply the generation config and tokenizer. With
``merge_lora=False`` the folder holds the base model and ``DST/adapter/`` a PEFT adapter.
DST appears only once complete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import pathlib

import numpy as np
from flax import nnx

from emollm_jax.config.model import LoraConfig, ModelConfig, from_config_dict
from emollm_jax.convert import lora_export, side_files
from emollm_jax.convert.bounded import run_bounded
from emollm_jax.convert.dtypes import cast, resolve_dtype
from emollm_jax.convert.emollm_layout import CODE_FILES, is_emollm
from emollm_jax.convert.hf_io import (
    CheckpointMismatchError,
    expected_tensors,
    flat_params,
    write_config,
)
from emollm_jax.convert.model_card import write_card
from emollm_jax.convert.orbax_stream import ParamsReader
from emollm_jax.convert.processor_files import write_llava_processor, write_processor
from emollm_jax.convert.safetensors_io import ShardWriter, atomic_output_dir, parse_size
from emollm_jax.destinations import check_destination
from emollm_jax.models.build import abstract_model
from emollm_jax.paths import AnyPath, absolute, as_path


def _check_leaves(reader: ParamsReader, params: dict) -> None:
    stored = reader.leaves
    missing = [(p, tuple(v.shape)) for p, v in params.items() if p not in stored]
    unexpected = [(p, leaf.shape) for p, leaf in stored.items() if p not in params]
    mismatched = [
        (p, stored[p].shape, tuple(v.shape))
        for p, v in params.items()
        if p in stored and stored[p].shape != tuple(v.shape)
    ]
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(
            f"{reader.root} step {reader.step}",
            missing,
            unexpected,
            mismatched,
            against="the model config in its meta item",
            known=params,
        )


def _write_side_files(
    tmp: pathlib.Path, cfg: ModelConfig, reader: ParamsReader, hf_files, card: dict
):
    side = side_files.find_side_folder(reader.root, reader.meta, hf_files)
    original = {}
    if side is not None:
        original = json.loads((side / "config.json").read_text())
        # EmoLLM's PyTorch code: always written fresh, never taken from side files.
        side_files.copy_side_files(side, tmp, skip=("config.json", *CODE_FILES))
    write_config(tmp, cfg, original)
    if side is None or not side_files.has_tokenizer(side):
        tokenizer = side_files.tokenizer_folder(reader.meta)
        if tokenizer is not None:
            side_files.copy_side_files(tokenizer, tmp, skip=side_files.GENERATED)
    if cfg.arch == "llava":
        _write_pytorch_side(tmp, cfg, reader, card)


def _write_pytorch_side(tmp: pathlib.Path, cfg: ModelConfig, reader: ParamsReader, card: dict):
    """An EmoLLM or LLaVA export's processor (when it has a tokenizer) and model card
    (``card``: ``write_card``'s destination and parameter count)."""
    data = (reader.meta.get("config") or {}).get("data") or {}
    run = reader.root.parent if reader.root.name == "checkpoints" else reader.root
    if is_emollm(cfg):
        if side_files.has_tokenizer(tmp):
            write_processor(tmp, cfg, data)
        write_card(tmp, cfg, reader.meta, run, weights=reader.weights, **card)
        return
    # A LLaVA whose side files (e.g. the Hugging Face folder it came from) bring a processor
    # or a model card keeps those.
    shipped = {p.name for p in tmp.iterdir()}
    processor = {"preprocessor_config.json", "processor_config.json"}
    if side_files.has_tokenizer(tmp) and not shipped & processor:
        write_llava_processor(tmp, cfg, data)
    if "README.md" not in shipped:
        write_card(tmp, cfg, reader.meta, run, weights=reader.weights, **card)


def _row_groups(reader: ParamsReader, expected: dict) -> list[list]:
    """``expected``'s entries grouped by the stored chunk row they read (in order): one task
    each, so that a row is read once and dropped when its task ends."""
    groups: dict[tuple, list] = {}
    for name, (row, layer, hf_shape) in expected.items():
        start = None if layer is None else reader.row_start(row.ours, layer)
        groups.setdefault((row.ours, start), []).append((name, (row, layer, hf_shape)))
    return list(groups.values())


def _task_bytes(reader: ParamsReader, group: list, out: np.dtype) -> int:
    """What a group's task holds: its chunk row as stored, and its tensors as written."""
    _, (row, layer, _) = group[0]
    leaf = reader.leaves[row.ours]
    rows = leaf.shape[:1] if layer is None else (min(leaf.chunk_rows, leaf.shape[0]),)
    stored = math.prod(rows) * math.prod(leaf.shape[1:]) * leaf.dtype.itemsize
    written = sum(math.prod(shape) for _, (_, _, shape) in group) * out.itemsize
    return stored + written


def orbax_to_hf(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    step: int | None = None,
    weights: str = "auto",
    dtype: str = "keep",
    max_shard_size: int | str = "5GB",
    merge_lora: bool = True,
    hf_files: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> AnyPath:
    """Export checkpoint ``src`` (latest complete step unless ``step``) as HF folder ``dst``.

    ``weights``: the run's parameters or the moving average it keeps of them (``ParamsReader``).
    ``dtype``: ``keep`` (the stored dtype), ``float32``, ``bfloat16`` or ``float16``.
    ``hf_files``: a folder to take config/tokenizer files from (see ``side_files``).
    """
    check_destination(dst, src)
    reader = ParamsReader(src, step, weights=weights)
    cfg = from_config_dict(reader.meta["model"])
    params = flat_params(nnx.split(abstract_model(cfg))[1])
    _check_leaves(reader, params)
    pairs = lora_export.adapters(params)
    lora_leaves = {p for pair in pairs.values() for p in pair}
    present = {reader.leaves[p].dtype for p in params if p not in lora_leaves}
    out_cfg = dataclasses.replace(
        cfg, param_dtype=resolve_dtype(dtype, present, cfg.param_dtype), lora=LoraConfig()
    )
    out = np.dtype(out_cfg.jnp_param_dtype)
    expected = expected_tensors(out_cfg, params)
    scale = cfg.lora.alpha / cfg.lora.rank if pairs else 0.0
    adapter_plan, adapter_weights = [], []
    if pairs and not merge_lora:
        for name, (row, layer, _) in expected.items():
            if row.ours in pairs:
                shape = tuple(params[row.ours].shape)[0 if layer is None else 1 :]
                adapter_weights.append(name)
                adapter_plan += [
                    (n, s, out) for n, s in lora_export.peft_shapes(cfg, row, name, shape)
                ]

    with atomic_output_dir(dst, overwrite=overwrite) as tmp:
        plan = [(name, hf_shape, out) for name, (_, _, hf_shape) in expected.items()]
        writer = ShardWriter(tmp, plan, parse_size(max_shard_size))
        adapter = None
        if adapter_plan:
            (tmp / lora_export.ADAPTER_DIR).mkdir()
            adapter = ShardWriter(
                tmp / lora_export.ADAPTER_DIR,
                adapter_plan,
                max_shard_bytes=2**62,
                single=lora_export.ADAPTER_FILE,
            )

        def convert(name: str, row, layer, hf_shape) -> None:
            kernel = reader.read(row.ours, layer)
            if row.ours in pairs:
                a_path, b_path = pairs[row.ours]
                a, b = reader.read(a_path, layer), reader.read(b_path, layer)
                if merge_lora:
                    kernel = lora_export.merged_kernel(kernel, a, b, scale)
                else:
                    for n, t in lora_export.peft_tensors(cfg, row, name, a, b):
                        adapter.write(n, cast(t, out, n))
            where = f"{row.ours}" + ("" if layer is None else f" layer {layer}") + f" ({name})"
            kernel = cast(kernel, out, where)
            writer.make(name, lambda alloc: row.transform.to_hf(kernel, hf_shape, alloc=alloc))

        def task(group: list) -> None:
            for name, (row, layer, hf_shape) in group:
                convert(name, row, layer, hf_shape)
            _, (row, layer, _) = group[0]
            for path in (row.ours, *pairs.get(row.ours, ())):
                reader.forget(path, None if layer is None else reader.row_start(path, layer))

        groups = _row_groups(reader, expected)
        with writer, adapter or contextlib.nullcontext():
            run_bounded((_task_bytes(reader, g, out), functools.partial(task, g)) for g in groups)
        if adapter is not None:
            lora_export.write_adapter_config(
                tmp / lora_export.ADAPTER_DIR,
                cfg,
                adapter_weights,
                base_model=str(absolute(dst)),
            )
        kept = [v for p, v in params.items() if p not in lora_leaves]
        card = {
            "destination": str(absolute(dst)),
            "parameters": sum(math.prod(v.shape) for v in kept),
        }
        _write_side_files(tmp, out_cfg, reader, hf_files, card)
    return as_path(dst)
