"""Build a model of any supported architecture from its config, on one device or sharded."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
from flax import nnx
from jax.sharding import Mesh

from emollm_jax.models.clip_vision import CLIPVision
from emollm_jax.models.decoder import DecoderLM
from emollm_jax.models.llava import Llava
from emollm_jax.sharding.rules import state_shardings
from emollm_jax.sharding.strategies import Rules

if TYPE_CHECKING:
    from emollm_jax.config.model import ModelConfig

# config.model.arch -> the model that computes it (each sets its own ``config``).
ARCHS = {"llava": Llava, "llama": DecoderLM, "qwen2": DecoderLM, "clip_vision": CLIPVision}


def construct(cfg: ModelConfig, seed: int = 0) -> nnx.Module:
    """Run the model's constructors (eagerly: slow; call under ``jax.jit`` or ``eval_shape``)."""
    # A separate stream for adapters: switching LoRA on leaves the base weights as they were.
    return ARCHS[cfg.arch](cfg, rngs=nnx.Rngs(params=seed, lora=seed + 1))


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
    return nnx.merge(graphdef, state)


def build_part(
    cfg: ModelConfig, part: str, seed: int = 0, *, mesh: Mesh | None = None, rules: Rules = ()
) -> nnx.Module:
    """One part (``vision_tower``, ``projector``, ...) of the model ``build_model(cfg, seed)``
    would make, with the same values, without allocating the rest: XLA drops the other
    initialisers."""
    abstract = abstract_model(cfg)
    graphdef, _ = nnx.split(getattr(abstract, part))
    shardings = None
    if mesh is not None:
        shardings = state_shardings(nnx.state(abstract), mesh, rules)[part]
    state = jax.jit(
        lambda: nnx.state(getattr(construct(cfg, seed), part)), out_shardings=shardings
    )()
    return nnx.merge(graphdef, state)
