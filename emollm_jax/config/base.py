"""Fields every experiment config shares, as a ``ConfigDict`` built from the typed sections'
defaults (so ``--config.a.b=v`` overrides any of them); the presets (``presets.py``) fill in or
override their own."""

import dataclasses

from ml_collections import config_dict

from emollm_jax.config.model import FORWARD_ONLY, ModelConfig
from emollm_jax.config.section import defaults
from emollm_jax.config.sections import SECTIONS


def forward_options(**overrides) -> dict:
    """``config.model`` fields that choose how the forward pass runs (dtypes, layer scan, remat,
    the attention implementation; no parameter depends on them), at ModelConfig's defaults
    unless overridden: a config that spreads them into its model dict lets every one be set on
    the command line (``--config.model.attention=splash``)."""
    options = {f.name: f.default for f in dataclasses.fields(ModelConfig) if f.name in FORWARD_ONLY}
    unknown = set(overrides) - set(options)
    if unknown:
        raise ValueError(f"not forward-pass options: {sorted(unknown)}")
    return {**options, **overrides}


def base_config() -> config_dict.ConfigDict:
    """Every section at its defaults (``config/sections.py``; ``emollm config show`` lists the
    fields and their meanings); the presets fill in ``model`` and override the rest."""
    c = config_dict.ConfigDict()
    c.seed = 0
    # Filled by the presets (see emollm_jax/config/model.py for the fields).
    c.model = config_dict.ConfigDict()
    for name, cls in SECTIONS.items():
        values = defaults(cls)
        if name == "mesh":
            values["rules"] = config_dict.placeholder(dict)  # None, or a dict when set
        c[name] = config_dict.ConfigDict(values)
    return c
