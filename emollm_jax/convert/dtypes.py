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

from emollm_jax.config.model import DTYPES

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


class DtypeOverflowError(ValueError):
    """A parameter holds values the output dtype cannot (float16's range is +-65504)."""


def cast(x: np.ndarray, dtype, name: str) -> np.ndarray:
    """``x`` as ``dtype``; a finite value that becomes infinite (a float16 overflow) raises
    ``DtypeOverflowError`` naming parameter ``name`` (the conversion then writes nothing)."""
    dtype = np.dtype(dtype)
    with np.errstate(over="ignore"):  # reported below, by name
        out = x.astype(dtype, copy=False)
    if dtype != np.float16 or x.dtype == np.float16:
        return out
    overflow = np.isinf(out) & np.isfinite(x)
    if overflow.any():
        largest = float(np.max(np.abs(x[overflow].astype(np.float32))))
        raise DtypeOverflowError(
            f"{name}: {int(overflow.sum())} value(s) overflow float16 (largest |value| "
            f"{largest:.4g} > {float(np.finfo(np.float16).max):.0f}); choose bfloat16 or "
            "float32 (--dtype bfloat16)"
        )
    return out
