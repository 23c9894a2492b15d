"""Initial weights for an EmoLLM (or any LLaVA-architecture) model from pretrained parts.

``compose(cfg, source=..., vision=..., language_model=...)`` builds the model ``cfg`` describes
and fills it from

- ``source``: a whole LLaVA model (e.g. ``emollm_jax.load_hf("llava-1.5-7b-hf")``): its vision
  tower and LLM, and its projector where the shapes allow: for a ``mlp`` config the projector
  itself, for a ``multi_perspective`` one the ``patch`` perspective's MLP (LLaVA's projector is
  that MLP; our choice, so that EmoLLM starts from what LLaVA learnt);
- ``projector``: a projector of the configured type (e.g. from an Orbax checkpoint of the same
  model), overriding ``source``'s;
- ``vision``: a bare CLIP vision tower (``load_hf`` of a ``CLIPVisionModel`` folder) and
  ``language_model``: a bare LLM (``load_hf`` of a LLaMA/Vicuna/Qwen2 folder), overriding
  ``source``'s parts.

Everything not filled this way keeps its fresh initialisation (seeded). With ``mesh`` only the
fresh parameters are created, directly in their shardings; the given parts are used where they
are (load them with the same ``mesh`` and ``rules``), so no full second copy is allocated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
from flax import nnx
from jax.sharding import Mesh

from emollm_jax.errors import ConfigError
from emollm_jax.models.build import abstract_model, construct
from emollm_jax.sharding.rules import state_shardings
from emollm_jax.sharding.strategies import Rules

if TYPE_CHECKING:
    from emollm_jax.config.model import ModelConfig


def _shapes(state) -> dict:
    return {path: v.shape for path, v in nnx.to_flat_state(state)}


def compose(
    cfg: ModelConfig,
    *,
    source: nnx.Module | None = None,
    vision: nnx.Module | None = None,
    language_model: nnx.Module | None = None,
    projector: nnx.Module | None = None,
    seed: int = 0,
    mesh: Mesh | None = None,
    rules: Rules = (),
) -> nnx.Module:
    """The model of ``cfg`` with pretrained parts carried over (see the module docstring)."""
    if cfg.arch != "llava":
        raise ConfigError(
            "model.arch", f"compose builds 'llava' models, not {cfg.arch!r}", value=cfg.arch
        )
    graphdef, abstract = nnx.split(abstract_model(cfg))
    given: dict[tuple[str, ...], nnx.State] = {}  # path in the model -> pretrained state
    if source is not None:
        given[("vision_tower",)] = nnx.state(source.vision_tower)
        given[("language_model",)] = nnx.state(source.language_model)
        if cfg.projector.type == "mlp":
            given[("projector",)] = nnx.state(source.projector)
        elif "patch" in cfg.projector.active_perspectives:
            given[("projector", "perspectives", "patch", "mlp")] = nnx.state(source.projector)
    if vision is not None:
        given[("vision_tower",)] = nnx.state(vision)
    if language_model is not None:
        given[("language_model",)] = nnx.state(language_model)
    if projector is not None:
        given[("projector",)] = nnx.state(projector)
    provided = set()
    for path, part in given.items():
        target = abstract
        for name in path:
            target = target[name]
        have, want = _shapes(part), _shapes(target)
        # LoRA adapters are new by nature: a pretrained part need not have them.
        adapters = {p for p, v in nnx.to_flat_state(target) if isinstance(v, nnx.LoRAParam)}
        if have != {p: s for p, s in want.items() if p not in adapters or p in have}:
            raise ValueError(
                f"{'/'.join(path)}: the pretrained part's parameters do not match config.model"
            )
        provided |= {path + p for p in have}

    flat = list(nnx.to_flat_state(abstract))
    fresh = {path for path, _ in flat if path not in provided}

    def subset(state):
        return nnx.from_flat_state([(p, v) for p, v in nnx.to_flat_state(state) if p in fresh])

    shardings = None
    if mesh is not None:
        shardings = subset(state_shardings(abstract, mesh, rules))
    # Only the fresh parameters leave the program: XLA drops the other initialisers.
    new = jax.jit(lambda: subset(nnx.state(construct(cfg, seed))), out_shardings=shardings)()
    values = dict(nnx.to_flat_state(new))
    for prefix, part in given.items():
        values.update({prefix + p: v for p, v in nnx.to_flat_state(part)})
    return nnx.merge(graphdef, nnx.from_flat_state([(p, values[p]) for p, _ in flat]))
