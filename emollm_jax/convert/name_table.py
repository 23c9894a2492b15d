"""The declarative map between Hugging Face tensor names and our parameter paths.

One row per weight: the HF name (``{i}`` stands for the layer index of a stacked weight), our
path (``/``-joined, as ``nnx.to_flat_state`` spells it), and the reversible transform between
the two layouts. Which rows apply follows from the ``ModelConfig`` (biases, tied embeddings).
Checkpoints spell some prefixes differently (transformers' in-memory names, older hub
layouts); ``ALIASES`` renames them to the layout transformers 5 writes, which we write too.
"""

from __future__ import annotations

import dataclasses

from emollm_jax.config.model import ModelConfig
from emollm_jax.convert.transforms import CONV, FLAT, LINEAR, LINEAR_IN2, SAME, Transform


@dataclasses.dataclass(frozen=True)
class Row:
    hf: str  # HF tensor name; "{i}" marks a per-layer tensor
    ours: str  # our parameter path
    transform: Transform

    @property
    def stacked(self) -> bool:
        return "{i}" in self.hf


def _text_rows(cfg: ModelConfig, hf: str, ours: str, head: str | None) -> list[Row]:
    t = cfg.text
    layer = f"{hf}layers.{{i}}."
    rows = [Row(f"{hf}embed_tokens.weight", f"{ours}embed_tokens/embedding", SAME)]
    for name in ("q", "k", "v"):
        rows.append(
            Row(f"{layer}self_attn.{name}_proj.weight", f"{ours}layers/attn/{name}/kernel", LINEAR)
        )
        if t.qkv_bias:
            rows.append(
                Row(f"{layer}self_attn.{name}_proj.bias", f"{ours}layers/attn/{name}/bias", FLAT)
            )
    rows.append(Row(f"{layer}self_attn.o_proj.weight", f"{ours}layers/attn/o/kernel", LINEAR_IN2))
    if t.o_bias:
        rows.append(Row(f"{layer}self_attn.o_proj.bias", f"{ours}layers/attn/o/bias", FLAT))
    for name in ("gate", "up", "down") if t.gated_mlp else ("up", "down"):
        rows.append(
            Row(f"{layer}mlp.{name}_proj.weight", f"{ours}layers/mlp/{name}/kernel", LINEAR)
        )
        if t.mlp_bias:
            rows.append(Row(f"{layer}mlp.{name}_proj.bias", f"{ours}layers/mlp/{name}/bias", FLAT))
    rows += [
        Row(f"{layer}input_layernorm.weight", f"{ours}layers/input_norm/scale", FLAT),
        Row(f"{layer}post_attention_layernorm.weight", f"{ours}layers/post_attn_norm/scale", FLAT),
        Row(f"{hf}norm.weight", f"{ours}norm/scale", FLAT),
    ]
    if head is not None and not t.tie_word_embeddings:
        rows.append(Row(head, f"{ours}lm_head/kernel", LINEAR))
    return rows


def _vision_rows(hf: str, ours: str) -> list[Row]:
    layer = f"{hf}encoder.layers.{{i}}."
    rows = [
        Row(f"{hf}embeddings.class_embedding", f"{ours}class_embedding", FLAT),
        Row(f"{hf}embeddings.patch_embedding.weight", f"{ours}patch_embedding", CONV),
        Row(f"{hf}embeddings.position_embedding.weight", f"{ours}position_embedding", SAME),
        Row(f"{hf}pre_layrnorm.weight", f"{ours}pre_norm/scale", FLAT),
        Row(f"{hf}pre_layrnorm.bias", f"{ours}pre_norm/bias", FLAT),
        Row(f"{hf}post_layernorm.weight", f"{ours}post_norm/scale", FLAT),
        Row(f"{hf}post_layernorm.bias", f"{ours}post_norm/bias", FLAT),
    ]
    for hf_name, name in (("q_proj", "q"), ("k_proj", "k"), ("v_proj", "v"), ("out_proj", "o")):
        transform = LINEAR_IN2 if name == "o" else LINEAR
        rows.append(
            Row(f"{layer}self_attn.{hf_name}.weight", f"{ours}layers/attn/{name}/kernel", transform)
        )
        rows.append(Row(f"{layer}self_attn.{hf_name}.bias", f"{ours}layers/attn/{name}/bias", FLAT))
    for norm in ("1", "2"):
        rows.append(Row(f"{layer}layer_norm{norm}.weight", f"{ours}layers/norm{norm}/scale", FLAT))
        rows.append(Row(f"{layer}layer_norm{norm}.bias", f"{ours}layers/norm{norm}/bias", FLAT))
    for fc in ("fc1", "fc2"):
        rows.append(Row(f"{layer}mlp.{fc}.weight", f"{ours}layers/mlp/{fc}/kernel", LINEAR))
        rows.append(Row(f"{layer}mlp.{fc}.bias", f"{ours}layers/mlp/{fc}/bias", FLAT))
    return rows


def _projector_rows(cfg: ModelConfig, hf: str, ours: str) -> list[Row]:
    rows = []
    for name in ("linear_1", "linear_2"):
        rows.append(Row(f"{hf}{name}.weight", f"{ours}{name}/kernel", LINEAR))
        if cfg.projector.bias:
            rows.append(Row(f"{hf}{name}.bias", f"{ours}{name}/bias", FLAT))
    return rows


def _norm_rows(hf: str, ours: str) -> list[Row]:
    return [Row(f"{hf}weight", f"{ours}scale", FLAT), Row(f"{hf}bias", f"{ours}bias", FLAT)]


def _multi_projector_rows(cfg: ModelConfig, hf: str, ours: str) -> list[Row]:
    """EmoLLM's multi-perspective projector (``models/projector_multi.py``) in the layout of our
    PyTorch export (``export/hf_emollm/modeling_emollm.py``)."""
    p = cfg.projector
    rows = [Row(f"{hf}embedding", f"{ours}embedding", SAME)] if p.perspective_embedding else []
    for name in p.active_perspectives:
        h, o = f"{hf}perspectives.{name}.", f"{ours}perspectives/{name}/"
        if name == "depth":
            rows.append(Row(f"{h}mix", f"{o}mix", SAME))
            rows += _norm_rows(f"{h}norm.", f"{o}norm/")
        elif name == "relation":
            rows += _norm_rows(f"{h}norm.", f"{o}norm/")
            for j in range(p.relation_rounds):
                rows.append(Row(f"{h}rounds.{j}.weight", f"{o}rounds/{j}/kernel", LINEAR_IN2))
                rows.append(Row(f"{h}rounds.{j}.bias", f"{o}rounds/{j}/bias", FLAT))
        elif name == "global":
            rows.append(Row(f"{h}queries", f"{o}queries", SAME))
            rows += _norm_rows(f"{h}query_norm.", f"{o}query_norm/")
            rows += _norm_rows(f"{h}context_norm.", f"{o}context_norm/")
            for hf_name, short in (("q_proj", "q"), ("k_proj", "k"), ("v_proj", "v")):
                rows.append(Row(f"{h}attn.{hf_name}.weight", f"{o}attn/{short}/kernel", LINEAR))
                rows.append(Row(f"{h}attn.{hf_name}.bias", f"{o}attn/{short}/bias", FLAT))
            rows.append(Row(f"{h}attn.out_proj.weight", f"{o}attn/o/kernel", LINEAR_IN2))
            rows.append(Row(f"{h}attn.out_proj.bias", f"{o}attn/o/bias", FLAT))
        rows += _projector_rows(cfg, f"{h}mlp.", f"{o}mlp/")
    return rows


def rows_for(cfg: ModelConfig) -> list[Row]:
    """Every weight of a model with this config, named as transformers 5 writes them to disk
    (EmoLLM: as our PyTorch export names them; its vision tower and LLM as LLaVA's)."""
    if cfg.arch == "llava":
        if cfg.projector.type == "multi_perspective":
            projector = _multi_projector_rows(cfg, "projector.", "projector/")
        else:
            projector = _projector_rows(cfg, "multi_modal_projector.", "projector/")
        return (
            _vision_rows("vision_tower.", "vision_tower/")
            + projector
            + _text_rows(
                cfg, "language_model.model.", "language_model/", "language_model.lm_head.weight"
            )
        )
    if cfg.arch in ("llama", "qwen2"):
        return _text_rows(cfg, "model.", "", "lm_head.weight")
    if cfg.arch == "clip_vision":
        return _vision_rows("", "")
    raise ValueError(f"no name table for arch {cfg.arch!r}")


# Other spellings of the same tensors -> the layout transformers 5 writes to disk (which keeps
# the pre-v5 LLaVA prefixes), tried in order; the first matching prefix wins.
ALIASES: dict[str, tuple[tuple[str, str], ...]] = {
    "llava": (
        ("model.vision_tower.vision_model.", "vision_tower."),
        ("vision_tower.vision_model.", "vision_tower."),
        ("model.vision_tower.", "vision_tower."),
        ("model.language_model.", "language_model.model."),
        ("lm_head.", "language_model.lm_head."),
        ("model.multi_modal_projector.", "multi_modal_projector."),
    ),
    "clip_vision": (("vision_model.", ""),),
    "llama": (),
    "qwen2": (),
}


def canonical_name(arch: str, name: str) -> str:
    for old, new in ALIASES[arch]:
        if name.startswith(old):
            return new + name[len(old) :]
    return name


# Tensors HF checkpoints may hold that are buffers, not weights; skipped on load.
IGNORED_SUFFIXES = ("rotary_emb.inv_freq", "embeddings.position_ids")
