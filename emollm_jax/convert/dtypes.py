"""The converter's ``--dtype`` choice: ``keep`` or a parameter dtype to cast every tensor to.

``keep`` means the dtype the tensors already have. When a checkpoint mixes dtypes (rare: a HF
folder with a float32 norm among bfloat16 matrices), ``keep`` falls back on the dtype the
checkpoint declares (a HF ``config.json``'s ``dtype`` or older ``torch_dtype``; an Orbax
checkpoint's ``param_dtype``), else float32 (our choice: one ``param_dtype`` per model).
"""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np

from emollm_jax.models.config import DTYPES

CHOICES = ("keep", *DTYPES)


def declared_dtype(config_json: str | os.PathLike) -> str | None:
    """The parameter dtype a HF ``config.json`` declares, if it is one we support."""
    path = pathlib.Path(config_json)
    if not path.exists():
        return None
    config = json.loads(path.read_text())
    text = config.get("text_config") or {}
    for declared in (config.get("dtype"), config.get("torch_dtype"), text.get("dtype")):
        if declared in DTYPES:
            return declared
    return None


def resolve_dtype(choice: str, present: set, declared: str | None = None) -> str:
    """The parameter dtype name (one of ``DTYPES``) a conversion writes, given the dtypes
    ``present`` in the checkpoint and the one it ``declared``."""
    if choice != "keep":
        if choice not in DTYPES:
            raise ValueError(f"--dtype {choice!r} is not one of {CHOICES}")
        return choice
    names = {np.dtype(d).name for d in present}
    if len(names) == 1 and next(iter(names)) in DTYPES:
        return next(iter(names))
    return declared if declared in DTYPES else "float32"
