"""Our EmoLLM ``ModelConfig`` <-> the ``config.json`` of its PyTorch export, and the export's
code files.

An EmoLLM checkpoint folder is a Hugging Face folder whose ``config.json`` is an
``EmoLLMConfig`` (model type ``emollm``): LLaVA's ``vision_config`` / ``text_config`` /
``image_token_index`` / ``vision_feature_*`` fields, plus ``projector_config`` (the
multi-perspective projector's switches, named as ours) and ``auto_map`` naming the two code
files copied beside the weights (from the PyTorch package ``emollm_jax/export/hf_emollm``), so
``trust_remote_code=True`` loads it anywhere. The tensor names are in ``name_table.py``.

The vision and text sub-configs are made by the LLaVA mapping (``hf_config.py``) and the top
level's LLaVA fields come from its table (``hf_config.LLAVA_FIELDS``), so both exports agree
field for field; unknown fields of an original config survive as there.

``EmoLLMConfig`` is imported where it is used: its package registers the PyTorch model with
transformers, which imports torch (seconds), and this module is imported by every
``load_hf`` / ``save_hf`` of a plain LLaVA too.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
from typing import Any

import transformers

from emollm_jax.config.model import ModelConfig, ProjectorConfig
from emollm_jax.convert import hf_config

# The PyTorch package whose files an export carries (read as files: importing it needs torch).
CODE_DIR = pathlib.Path(__file__).parents[1] / "export" / "hf_emollm"
# The files an export carries, and the auto_map entries that point at them.
CODE_FILES = ("configuration_emollm.py", "modeling_emollm.py")
AUTO_MAP = {
    "AutoConfig": "configuration_emollm.EmoLLMConfig",
    "AutoModel": "modeling_emollm.EmoLLMForConditionalGeneration",
    "AutoModelForImageTextToText": "modeling_emollm.EmoLLMForConditionalGeneration",
}
_PROJECTOR_FIELDS = (
    "hidden_act",
    "bias",
    "perspectives",
    "perspective_embedding",
    "patch_pool",
    "depth_layers",
    "depth_pool",
    "relation_pool",
    "relation_k",
    "relation_rounds",
    "global_queries",
    "video",
)
ARCHITECTURE = "EmoLLMForConditionalGeneration"


def is_emollm(cfg: ModelConfig) -> bool:
    return cfg.arch == "llava" and cfg.projector.type == "multi_perspective"


def _as_llava(cfg: ModelConfig) -> ModelConfig:
    p = cfg.projector
    return dataclasses.replace(
        cfg, projector=ProjectorConfig(type="mlp", hidden_act=p.hidden_act, bias=p.bias)
    )


def to_hf(cfg: ModelConfig, original: dict[str, Any] | None = None):
    """The ``EmoLLMConfig`` of ``cfg``, layered over ``original`` (a previous export's)."""
    from emollm_jax.export.hf_emollm import EmoLLMConfig  # torch: see the module's docstring

    original = dict(original or {})
    llava = hf_config.to_hf(_as_llava(cfg), original)
    p = cfg.projector
    projector = {name: getattr(p, name) for name in _PROJECTOR_FIELDS}
    projector.update(perspectives=list(p.perspectives), depth_layers=list(p.depth_layers))
    drop = ("text_config", "vision_config", "transformers_version", "model_type")
    top = {k: v for k, v in original.items() if k not in drop}
    top.update(
        **hf_config.write_fields(hf_config.LLAVA_FIELDS, cfg),
        projector_config=projector,
        tie_word_embeddings=cfg.text.tie_word_embeddings,
        architectures=[ARCHITECTURE],
        auto_map=dict(AUTO_MAP),
    )
    top.pop("image_token_id", None)
    config = EmoLLMConfig(vision_config=llava.vision_config, text_config=llava.text_config, **top)
    config.dtype = llava.dtype
    return config


def from_hf(path: str | os.PathLike, **overrides: Any) -> ModelConfig:
    """Our ModelConfig for an EmoLLM export folder (read with the local classes: no remote
    code runs)."""
    from emollm_jax.export.hf_emollm import EmoLLMConfig  # torch: see the module's docstring

    emollm = EmoLLMConfig.from_pretrained(path)
    p = emollm.projector_config
    llava = transformers.LlavaConfig(
        vision_config=emollm.vision_config,
        text_config=emollm.text_config,
        **{f.hf: getattr(emollm, f.hf) for f in hf_config.LLAVA_FIELDS},
        projector_hidden_act=p["hidden_act"],
        multimodal_projector_bias=p["bias"],
        architectures=["LlavaForConditionalGeneration"],
    )
    cfg = hf_config.from_hf(llava, **overrides)
    fields = {name: p[name] for name in _PROJECTOR_FIELDS}
    fields.update(perspectives=tuple(p["perspectives"]), depth_layers=tuple(p["depth_layers"]))
    return dataclasses.replace(cfg, projector=ProjectorConfig(type="multi_perspective", **fields))


def write_code(folder: str | os.PathLike) -> list[str]:
    """Copy the export's PyTorch code files into ``folder``."""
    for name in CODE_FILES:
        shutil.copy2(CODE_DIR / name, pathlib.Path(folder) / name)
    return list(CODE_FILES)
