"""The files of a Hugging Face folder besides its weights, carried across a conversion.

``config.json``, ``generation_config.json``, the tokenizer (``tokenizer.json``,
``tokenizer_config.json``, ``special_tokens_map.json``, ``chat_template.jinja``...), a
processor's ``preprocessor_config.json``: every top-level file that is not a weight file.

HF -> Orbax keeps them in the side folder ``<DST>/hf/`` next to ``<DST>/checkpoints/`` (our
layout); Orbax -> HF takes them from the first of these that exists (``find_side_folder``):

1. the folder given with ``--hf-files``;
2. ``<run>/hf/`` of the run or converted checkpoint being exported;
3. the run's ``train.init_from`` (recorded in its ``meta`` item): a HF folder itself, or a
   converted checkpoint's ``hf/`` side folder.

``config.json`` is then rewritten from the checkpoint's ``ModelConfig`` layered over the side
copy (fields we do not model survive), and, if the side folder has no tokenizer, the run's
``data.tokenizer`` folder supplies one.
"""

from __future__ import annotations

import fnmatch
import os
import pathlib
import shutil

from emollm_jax.paths import as_path, is_url

SIDE_DIR = "hf"
# Written by the converter from the model config (the side copy is only their starting point).
GENERATED = ("config.json", "generation_config.json")
_WEIGHTS = (
    "*.safetensors",
    "*.safetensors.index.json",
    "*.bin",
    "*.bin.index.json",
    "*.pt",
    "*.pth",
    "*.ckpt",
    "*.msgpack",
    "*.h5",
    "*.gguf",
    "adapter_config.json",  # a PEFT adapter is not part of the base model
)
_TOKENIZER = ("tokenizer*", "special_tokens_map.json", "*.tiktoken", "vocab.*", "merges.txt")


def side_files(folder: str | os.PathLike) -> list[pathlib.Path]:
    """The top-level non-weight files of ``folder``."""
    folder = as_path(folder)
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not any(fnmatch.fnmatch(p.name, pat) for pat in _WEIGHTS)
    )


def copy_side_files(
    src: str | os.PathLike, dst: str | os.PathLike, *, skip: tuple[str, ...] = ()
) -> list[str]:
    """Copy ``side_files(src)`` (but ``skip``) into ``dst``; returns the names copied."""
    dst = as_path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    copied = []
    for path in side_files(src):
        if path.name not in skip:
            if is_url(path) or is_url(dst):
                (dst / path.name).write_bytes(path.read_bytes())
            else:
                shutil.copy2(path, dst / path.name)
            copied.append(path.name)
    return copied


def has_tokenizer(folder: str | os.PathLike) -> bool:
    names = [p.name for p in side_files(folder)]
    return any(fnmatch.fnmatch(n, pat) for n in names for pat in _TOKENIZER)


def _init_from(meta: dict) -> str | None:
    config = meta.get("config") or {}
    return (config.get("train") or {}).get("init_from") or None


def find_side_folder(
    checkpoint_root: pathlib.Path, meta: dict, explicit: str | os.PathLike | None = None
) -> pathlib.Path | None:
    """Where an export takes its side files from (see the module docstring), or None."""
    if explicit is not None:
        explicit = as_path(explicit)
        if not explicit.is_dir():
            raise FileNotFoundError(f"--hf-files {explicit}: not a directory")
        return explicit
    run = checkpoint_root.parent if checkpoint_root.name == "checkpoints" else checkpoint_root
    candidates = [run / SIDE_DIR]
    init_from = _init_from(meta)
    if init_from:
        candidates += [as_path(init_from), as_path(init_from) / SIDE_DIR]
    for folder in candidates:
        if (folder / "config.json").is_file():
            return folder
    return None


def tokenizer_folder(meta: dict) -> pathlib.Path | None:
    """The run's ``data.tokenizer`` folder, if the run config names one that exists."""
    path = ((meta.get("config") or {}).get("data") or {}).get("tokenizer")
    if not path:
        return None
    from emollm_jax.data.pipeline import resolve_path

    folder = resolve_path(path)
    return folder if folder.is_dir() and has_tokenizer(folder) else None
