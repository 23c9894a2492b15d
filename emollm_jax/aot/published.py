"""Training runs that others measured and published, as data (``published_runs.json``): the
model, chips, batch, sequence, remat, attention blocks and compiler flags of each, its measured
step time, and where it was published (repository, path, commit).

``config_for(run)`` is our config of the same program (``configs/lm.py``'s preset with the
run's remat policy and splash blocks) and ``flags_for(run)`` its compiler flags, so
``emollm compile --recipe NAME`` and ``emollm calibrate`` compile what the publisher ran.
``role`` is ``fit`` (the calibration may be fitted on it) or ``held_out`` (kept aside to judge
the calibration; never fitted on).
"""

from __future__ import annotations

import functools
import json
import pathlib

from emollm_jax.config import presets
from emollm_jax.errors import ConfigError

PATH = pathlib.Path(__file__).with_name("published_runs.json")


@functools.cache
def _data() -> dict:
    return json.loads(PATH.read_text())


def runs(role: str | None = None) -> list[dict]:
    """Every published run, or those of ``role`` (``fit`` or ``held_out``)."""
    return [r for r in _data()["runs"] if role is None or r["role"] == role]


def run(name: str) -> dict:
    by_name = {r["name"]: r for r in runs()}
    if name not in by_name:
        raise ConfigError("recipe", f"{name!r} is not one of {', '.join(by_name)}")
    return by_name[name]


def flags_for(r: dict) -> str:
    """The run's compiler flags, its flag sets joined in order."""
    sets = _data()["flag_sets"]
    return " ".join(sets[name] for name in r["flag_sets"])


def config_for(r: dict):
    """Our config of the run's program: the model's preset (bfloat16 over float32 weights,
    scanned layers, chunked loss, FSDP) with the run's remat policy and attention kernel."""
    c = presets.lm(r["model"])
    c.mesh.strategy = r["strategy"]
    c.model.remat = r["remat"]
    c.model.attention = r["attention"]
    c.model.attention_block_q = c.model.attention_block_kv = r["attention_block"]
    c.model.attention_fused_backward = r["fused_backward_kernel"]
    c.model.embed_one_hot = r.get("embed_one_hot", False)
    c.data.seq_buckets = (r["seq_len"],)
    return c
