"""Whether a run's checkpoint can be used as asked, said plainly when it cannot.

- ``config_differences``: the config fields in which a checkpoint's stored config (its ``meta``
  item) differs from the new one, each with both values, for a refusal that names them rather
  than a failed tree restore.
- ``unreadable``: a checkpoint that cannot be read, named by step and file, with the latest
  earlier step that does read and how to pick it (the caller says how: training's
  ``--config.train.resume_step=N``, evaluation's ``--step N``).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from emollm_jax.checkpoint.manager import CheckpointReadError, RunCheckpoints
from emollm_jax.config.model import FORWARD_ONLY  # fields that shape no stored array


def _flat(tree, prefix: str = "") -> dict:
    if not isinstance(tree, dict):
        return {prefix: tree}
    out = {}
    for k, v in tree.items():
        out |= _flat(v, f"{prefix}.{k}" if prefix else str(k))
    return out


def _comparable(value):
    """As stored in JSON (tuples become lists, at any depth)."""
    return json.loads(json.dumps(value))


def config_differences(
    stored: dict, model: dict, train: dict | None = None, train_fields: tuple[str, ...] = ()
) -> list[str]:
    """``config.<field>: <stored> in the checkpoint, <new> now`` for every field that differs
    between a checkpoint's meta (``stored``) and the new ``model`` settings (a ModelConfig as a
    dict), and ``train``'s ``train_fields`` where the checkpoint recorded them. Forward-only
    model fields (dtype, attention kernel...) are not compared."""
    old = {f"model.{k}": v for k, v in _flat(stored.get("model", {})).items()}
    new = {f"model.{k}": v for k, v in _flat(model).items()}
    stored_train = stored.get("config", {}).get("train", {})
    old |= {f"train.{k}": stored_train.get(k) for k in train_fields if k in stored_train}
    new |= {f"train.{k}": (train or {})[k] for k in train_fields if f"train.{k}" in old}
    skip = {f"model.{k}" for k in FORWARD_ONLY}
    return [
        f"config.{k}: {old.get(k)!r} in the checkpoint, {new.get(k)!r} now"
        for k in sorted(old.keys() | new.keys())
        if k not in skip and _comparable(old.get(k)) != _comparable(new.get(k))
    ]


def intact_before(
    checkpoints: RunCheckpoints, step: int, probe: Callable[[int], object] | None = None
) -> tuple[int | None, list[int]]:
    """The latest step before ``step`` that ``probe`` (default: reading its meta) reads without
    a ``CheckpointReadError`` (None when none does), and the earlier steps there are."""
    earlier = [s for s in sorted(checkpoints.all_steps(), reverse=True) if s < step]
    for candidate in earlier:
        try:
            (probe or checkpoints.read_meta)(candidate)
        except CheckpointReadError:
            continue
        return candidate, earlier
    return None, earlier


def unreadable(
    error: CheckpointReadError,
    checkpoints: RunCheckpoints,
    step: int,
    pick: Callable[[int], str] | None,
    probe: Callable[[int], object] | None = None,
    none_left: str = "start again in another --workdir",
) -> str:
    """The message for a checkpoint that cannot be read: ``error``'s (step, file, cause), then
    the intact earlier step and ``pick(intact)`` (how to use it; None: not said), or
    ``none_left``."""
    intact, earlier = intact_before(checkpoints, step, probe)
    if intact is None:
        offer = f"No earlier checkpoint restores either ({earlier or 'there is none'}): {none_left}."
    else:
        offer = f"Checkpoint {intact} restores intact" + (f": {pick(intact)}." if pick else ".")
    return f"{error}. {offer}"
