"""``load_hf`` / ``save_hf``: our models from and to Hugging Face checkpoint folders.

The name table (``name_table.py``) says which HF tensor feeds which of our parameters and
through which transform. Before any tensor is read, the checkpoint's names and shapes are
checked against the table and every problem is reported at once.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import pathlib
import warnings
from typing import Any

import jax
import numpy as np
import transformers
from flax import nnx
from jax.sharding import Mesh

from emollm_jax.config.model import LoraConfig, ModelConfig
from emollm_jax.convert import emollm_layout, hf_config, lora_export, side_files
from emollm_jax.convert.dtypes import cast
from emollm_jax.convert.model_card import CARD_FILES
from emollm_jax.convert.name_table import IGNORED_SUFFIXES, Row, canonical_name, rows_for
from emollm_jax.convert.processor_files import PROCESSOR_FILE, write_processor_code
from emollm_jax.convert.safetensors_io import (
    ShardWriter,
    TensorSource,
    atomic_output_dir,
    parse_size,
)
from emollm_jax.models.build import abstract_model
from emollm_jax.sharding.rules import state_shardings
from emollm_jax.sharding.strategies import Rules


class CheckpointMismatchError(ValueError):
    """The checkpoint's tensors do not match the model its config describes."""

    def __init__(
        self, root, missing, unexpected, mismatched, against="its config.json", known=()
    ):
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
        lines = [f"{root}: the checkpoint does not match {against}"]
        if unexpected and known:
            first = unexpected[0][0]
            (nearest,) = difflib.get_close_matches(first, list(known), n=1, cutoff=0.0)
            lines.append(f"  first unknown key: {first} (nearest known key: {nearest})")
        if missing:
            lines.append(f"  missing ({len(missing)}):")
            lines += [f"    {name} expected shape {shape}" for name, shape in missing]
        if unexpected:
            lines.append(f"  unexpected ({len(unexpected)}):")
            lines += [f"    {name} shape {shape}" for name, shape in unexpected]
        if mismatched:
            lines.append(f"  wrong shape ({len(mismatched)}):")
            lines += [f"    {n} has {got}, expected {want}" for n, got, want in mismatched]
        super().__init__("\n".join(lines))


def flat_params(model_or_state) -> dict[str, nnx.Variable]:
    """``{"a/b/c": Variable}`` for every parameter."""
    state = model_or_state if isinstance(model_or_state, nnx.State) else nnx.state(model_or_state)
    return {"/".join(map(str, path)): v for path, v in nnx.to_flat_state(state)}


def expected_tensors(
    cfg: ModelConfig, params: dict[str, Any]
) -> dict[str, tuple[Row, int | None, tuple]]:
    """``{hf_name: (row, layer or None, hf_shape)}`` for a model with these parameters."""
    out = {}
    for row in rows_for(cfg):
        shape = tuple(params[row.ours].shape)
        if row.stacked:
            for i in range(shape[0]):
                out[row.hf.format(i=i)] = (row, i, row.transform.hf_shape(shape[1:]))
        else:
            out[row.hf] = (row, None, row.transform.hf_shape(shape))
    return out


def _check(root, cfg, source: TensorSource, expected, names: dict[str, str]) -> None:
    missing = [(n, shape) for n, (_, _, shape) in expected.items() if n not in names]
    unexpected, mismatched = [], []
    for canon, raw in names.items():
        if canon not in expected:
            tied_head = (
                canon.endswith("lm_head.weight")
                and cfg.text is not None
                and cfg.text.tie_word_embeddings
            )
            if not tied_head and not canon.endswith(IGNORED_SUFFIXES):
                unexpected.append((raw, source.shape(raw)))
        elif source.shape(raw) != expected[canon][2]:
            mismatched.append((raw, source.shape(raw), expected[canon][2]))
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(root, missing, unexpected, mismatched, known=expected)


@dataclasses.dataclass
class HFCheckpoint:
    """A checked HF checkpoint folder: its model config, tensors and the plan that maps them.

    ``params`` holds our abstract parameters (shapes and dtypes only), ``expected`` what
    ``expected_tensors`` says the folder must hold, ``names`` each expected (canonical) name's
    spelling in the files.
    """

    root: pathlib.Path
    cfg: ModelConfig
    original: dict[str, Any]
    source: TensorSource
    graphdef: Any
    abstract_state: nnx.State
    params: dict[str, Any]
    expected: dict[str, tuple[Row, int | None, tuple]]
    names: dict[str, str]


def open_hf(path: str | os.PathLike, **overrides: Any) -> HFCheckpoint:
    """Read a HF folder's config and tensor index and check them against each other (every
    problem reported at once); no tensor data is read."""
    root = pathlib.Path(path)
    if not (root / "config.json").exists():
        raise FileNotFoundError(f"{root}: no config.json (is this a Hugging Face model folder?)")
    original = json.loads((root / "config.json").read_text())
    if original.get("model_type") == "emollm":
        cfg = emollm_layout.from_hf(root, **overrides)
    else:
        cfg = hf_config.from_hf(transformers.AutoConfig.from_pretrained(root), **overrides)
    source = TensorSource(root)
    graphdef, abstract_state = nnx.split(abstract_model(cfg))
    params = flat_params(abstract_state)
    expected = expected_tensors(cfg, params)
    names = {canonical_name(cfg.arch, raw): raw for raw in source.keys()}
    _check(root, cfg, source, expected, names)
    return HFCheckpoint(
        root, cfg, original, source, graphdef, abstract_state, params, expected, names
    )


def load_hf(
    path: str | os.PathLike,
    *,
    mesh: Mesh | None = None,
    rules: Rules = (),
    **overrides: Any,
) -> nnx.Module:
    """Build a model from a HF folder (config.json + safetensors, single or sharded).

    ``overrides`` set ModelConfig fields the HF config does not carry (``dtype``,
    ``param_dtype``, ``scan_layers``, ``remat``). With ``mesh``, parameters are placed straight
    into their shardings (``rules`` picks them), one tensor at a time.
    """
    ckpt = open_hf(path, **overrides)
    source, names, params = ckpt.source, ckpt.names, ckpt.params
    graphdef, abstract_state, expected = ckpt.graphdef, ckpt.abstract_state, ckpt.expected
    original = ckpt.original

    if mesh is None:
        device = jax.devices()[0]
        shardings = None
    else:
        shardings = flat_params(state_shardings(abstract_state, mesh, rules))
    by_param: dict[str, list] = {}
    for name, (row, layer, _) in expected.items():
        by_param.setdefault(row.ours, []).append((name, row, layer))
    values = {}
    for ours, entries in by_param.items():
        var = params[ours]
        host = np.empty(var.shape, var.dtype)
        for name, row, layer in entries:
            tensor = source.get(names[name])
            if layer is None:
                host[...] = row.transform.to_ours(tensor, var.shape)
            else:
                host[layer] = row.transform.to_ours(tensor, var.shape[1:])
        if shardings is None:
            values[ours] = jax.device_put(host, device)
        else:
            sharding = shardings[ours].get_value()
            values[ours] = jax.make_array_from_callback(
                host.shape, sharding, lambda i, h=host: h[i]
            )
    state = nnx.from_flat_state(
        [
            (tuple(_path_key(p) for p in path.split("/")), params[path].replace(values[path]))
            for path in params
        ]
    )
    model = nnx.merge(graphdef, state)
    model.hf_config = json.dumps(original, sort_keys=True)
    model.hf_source = str(pathlib.Path(path).absolute())  # save_hf takes its side files from it
    return model


def _path_key(part: str):
    return int(part) if part.isdigit() else part


def save_hf(
    model: nnx.Module,
    path: str | os.PathLike,
    *,
    dtype: str | None = None,
    max_shard_size: int | str = "5GB",
    overwrite: bool = False,
    hf_files: str | os.PathLike | None = None,
) -> pathlib.Path:
    """Write ``model`` as a HF folder that transformers' ``from_pretrained`` loads.

    ``dtype`` (``float32``/``bfloat16``/``float16``) casts on the way out; the default keeps the
    parameters' dtype. LoRA adapters are merged into their weights (``lora_export``). Tensors
    are written one at a time (``ShardWriter``); the folder appears only once complete.

    The tokenizer, processor, chat template and generation config come from ``hf_files`` (a
    Hugging Face folder), else from the folder ``load_hf`` read the model from (``side_files``;
    not its model card, which describes another run); what a PyTorch user would miss (a
    tokenizer; for a LLaVA or EmoLLM model its processor and chat template) is named in a
    ``UserWarning``.
    """
    cfg: ModelConfig = model.config
    params = flat_params(model)
    original = json.loads(getattr(model, "hf_config", None) or "{}")
    pairs = lora_export.adapters(params)
    scale = cfg.lora.alpha / cfg.lora.rank if pairs else 0.0
    cfg = dataclasses.replace(cfg, lora=LoraConfig())
    if dtype is not None:
        cfg = dataclasses.replace(cfg, param_dtype=dtype)

    def host(path: str, layer: int | None) -> np.ndarray:
        value = params[path].get_value()
        return np.asarray(jax.device_get(value if layer is None else value[layer]))

    def out_dtype(path: str) -> np.dtype:
        return np.dtype(jax.numpy.dtype(dtype) if dtype is not None else params[path].dtype)

    expected = expected_tensors(cfg, params)
    plan = [(name, hf_shape, out_dtype(row.ours)) for name, (row, _, hf_shape) in expected.items()]
    with atomic_output_dir(path, overwrite=overwrite) as tmp:
        with ShardWriter(tmp, plan, parse_size(max_shard_size)) as writer:
            for name, (row, layer, hf_shape) in expected.items():
                array = host(row.ours, layer)
                if row.ours in pairs:
                    a, b = (host(p, layer) for p in pairs[row.ours])
                    array = lora_export.merged_kernel(array, a, b, scale).astype(array.dtype)
                array = cast(array, out_dtype(row.ours), f"{row.ours} ({name})")
                writer.write(name, row.transform.to_hf(array, hf_shape))
        source = hf_files if hf_files is not None else getattr(model, "hf_source", None)
        if source is not None:
            # The code is written fresh; a card describes the run the source came from.
            skip = ("config.json", *emollm_layout.CODE_FILES, PROCESSOR_FILE, *CARD_FILES)
            side_files.copy_side_files(source, tmp, skip=skip)
            if (tmp / "processor_config.json").exists() and emollm_layout.is_emollm(cfg):
                write_processor_code(tmp)
        write_config(tmp, cfg, original)
        left_out = _left_out(tmp, cfg)
    if left_out:
        where = f"{source} has none" if source is not None else "the model came from no HF folder"
        warnings.warn(
            f"save_hf: {path} has no {', '.join(left_out)} ({where}); pass hf_files=FOLDER (a "
            "Hugging Face folder holding them), or export a run with `python -m "
            "emollm_jax.convert orbax-to-hf`, which writes them",
            stacklevel=3,  # the caller of emollm_jax.save_hf
        )
    return pathlib.Path(path)


def _left_out(folder: pathlib.Path, cfg: ModelConfig) -> list[str]:
    """What a PyTorch user of ``folder`` would miss: a tokenizer, and for a multimodal model
    the processor and chat template."""
    if not cfg.has_text:
        return []
    missing = [] if side_files.has_tokenizer(folder) else ["tokenizer"]
    if cfg.arch == "llava":
        if not (folder / "processor_config.json").exists():
            missing.append("processor (processor_config.json, preprocessor_config.json)")
        if not (folder / "chat_template.jinja").exists() and not _tokenizer_template(folder):
            missing.append("chat template")
    return missing


def _tokenizer_template(folder: pathlib.Path) -> bool:
    config = folder / "tokenizer_config.json"
    return config.exists() and bool(json.loads(config.read_text()).get("chat_template"))


def write_config(
    folder: pathlib.Path, cfg: ModelConfig, original: dict[str, Any] | None
) -> transformers.PretrainedConfig:
    """``config.json`` for ``cfg`` layered over ``original``, ``generation_config.json`` unless
    the folder has one, and for EmoLLM the PyTorch code its ``auto_map`` names."""
    if emollm_layout.is_emollm(cfg):
        config = emollm_layout.to_hf(cfg, original)
        emollm_layout.write_code(folder)
    else:
        config = hf_config.to_hf(cfg, original)
    config.save_pretrained(folder)
    if cfg.has_text and not (folder / "generation_config.json").exists():
        transformers.GenerationConfig.from_model_config(config).save_pretrained(folder)
    return config
