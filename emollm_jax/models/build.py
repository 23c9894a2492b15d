"""Build a model of any supported architecture from its config, on one device or sharded."""

from __future__ import annotations

import jax
from flax import nnx
from jax.sharding import Mesh

from emollm_jax.models.clip_vision import CLIPVision
from emollm_jax.models.config import ModelConfig
from emollm_jax.models.decoder import DecoderLM
from emollm_jax.models.llava import Llava
from emollm_jax.sharding.rules import state_shardings
from emollm_jax.sharding.strategies import Rules


def construct(cfg: ModelConfig, seed: int = 0) -> nnx.Module:
    """Run the model's constructors (eagerly: slow; call under ``jax.jit`` or ``eval_shape``)."""
    # A separate stream for adapters: switching LoRA on leaves the base weights as they were.
    rngs = nnx.Rngs(params=seed, lora=seed + 1)
    if cfg.arch == "llava":
        model = Llava(cfg, rngs=rngs)
    elif cfg.arch in ("llama", "qwen2"):
        model = DecoderLM(cfg, rngs=rngs)
    elif cfg.arch == "clip_vision":
        model = CLIPVision(cfg, rngs=rngs)
    else:
        raise ValueError(f"config.model.arch: unknown architecture {cfg.arch!r}")
    model.config = cfg
    return model


def abstract_model(cfg: ModelConfig) -> nnx.Module:
    """The model's structure with ``ShapeDtypeStruct`` leaves: nothing is allocated."""
    return nnx.eval_shape(lambda: construct(cfg, 0))


def build_model(
    cfg: ModelConfig, seed: int = 0, *, mesh: Mesh | None = None, rules: Rules = ()
) -> nnx.Module:
    """A freshly initialised model (``model.config`` is its ``ModelConfig``).

    Initialisation runs as one compiled program. With ``mesh``, each parameter is created
    directly in its sharding (``rules`` decide which): no device ever holds a full copy of a
    sharded parameter.
    """
    graphdef, abstract_state = nnx.split(abstract_model(cfg))
    shardings = None if mesh is None else state_shardings(abstract_state, mesh, rules)
    state = jax.jit(lambda: nnx.state(construct(cfg, seed)), out_shardings=shardings)()
    model = nnx.merge(graphdef, state)
    model.config = cfg
    return model
