"""Config builders: a LLaVA or EmoLLM ConfigDict of a size, LLM backbone, training stage and
(EmoLLM) variant. ``configs/*.py`` are thin ``get_config(arg)`` files over these, their
argument parsed by ``emollm_jax.config.args.parse_arg``.

- ``size``: ``"tiny"`` (ViT hidden 32 at 64 px, LLM hidden 64, 2 layers each; trains on CPU on
  the mini EmoBench; its train, log and recipe fields are the main job's recipe,
  ``python -m emollm_jax.main_job``) or ``"7b"`` (CLIP ViT-L/14-336 + a 7B LLM, the shapes of
  ``llava-hf/llava-1.5-7b-hf``; bfloat16 compute, scanned layers, full remat, FSDP, EmoBench).
- ``backbone``: the LLM, ``"vicuna"`` (LLaMA family; at 7B LLaVA-1.5's Vicuna-7B) or
  ``"qwen2"`` (at 7B Qwen2-7B-Instruct with ChatML; no public checkpoint pairs it with CLIP:
  compose the initial weights with ``emollm_jax.models.compose``).
- ``stage``: 1 trains the projector only (towers frozen), 2 the projector and the LLM. At 7B
  each has LLaVA's learning rate and length (stage 1: 1e-3, 1000 steps; stage 2: 2e-5, 2250
  steps, one epoch of EmoBench's ~287k examples at batch 128).
- ``variant`` (EmoLLM): what EmoLLM adds to LLaVA. ``baseline`` (LLaVA's MLP projector, no
  EmoPrompt), ``mp`` (+ multi-perspective projection), ``emoprompt`` (+ EmoPrompt: guiding
  prompts, rationale targets), ``full`` (both); ``*_answer_first`` put the rationale after the
  answer.
- ``runlocal``: the same recipe (stage, variant, backbone family, mesh strategy) shrunk to run
  here in seconds: the tiny towers and projector, the tokenizer in the repository, the mini
  EmoBench (made when missing), one batch shape, batch 8, two steps, random initial weights.

Visual tokens per image: tiny 16 (MLP) or 40 (multi-perspective: 16 patch + 4 depth + 16
relation + 4 global on the 4x4 grid); 7B 576 (MLP) or 232 (144 patch pooled 2x2 + 36 depth + 36
relation + 16 global on the 24x24 grid). Per 8-frame video: tiny 128 or 68, 7B 4608 or 344
(``emollm_jax/models/visual_tokens.py``). The perspectives' settings are ours (the paper
publishes none).
"""

from __future__ import annotations

from ml_collections import config_dict

from emollm_jax.config.base import base_config, forward_options
from emollm_jax.config.shapes import (
    CLIP_VIT_L_14_336,
    LM_SHAPES,
    QWEN2_7B,
    TINY_LLAMA,
    TINY_QWEN2,
    TINY_VISION,
    VICUNA_7B,
)

SIZES = ("tiny", "7b")
BACKBONES = ("vicuna", "qwen2")
STAGES = (1, 2)
VARIANTS = (
    "baseline",
    "mp",
    "emoprompt",
    "full",
    "emoprompt_answer_first",
    "full_answer_first",
)
# Bare words of the config argument: configs/llava_7b.py:stage1, configs/emollm_tiny.py:mp.
SHORTHANDS = {f"stage{s}": {"stage": s} for s in STAGES} | {v: {"variant": v} for v in VARIANTS}

# Hugging Face folders the 7B configs start from (no hub access here: place them there).
LLAVA_1_5_7B_HF = "checkpoints/llava-1.5-7b-hf"
QWEN2_7B_INSTRUCT = "checkpoints/Qwen2-7B-Instruct"

# Per backbone: the LLM's shapes, the <image> id, the tokenizer and chat template, and the
# folder the LLaVA model starts from ("": none holds these towers together).
_BACKBONES = {
    ("tiny", "vicuna"): (TINY_LLAMA, 4, "emollm_jax/assets/tokenizer", "vicuna_v1", ""),
    ("tiny", "qwen2"): (TINY_QWEN2, 4, "emollm_jax/assets/tokenizer", "chatml", ""),
    ("7b", "vicuna"): (VICUNA_7B, 32000, LLAVA_1_5_7B_HF, "vicuna_v1", LLAVA_1_5_7B_HF),
    # 151646: the first id past Qwen2's special tokens (the vocabulary is padded to 152064;
    # the pipeline inserts the id, so the tokenizer need not know it).
    ("7b", "qwen2"): (QWEN2_7B, 151646, QWEN2_7B_INSTRUCT, "chatml", ""),
}

# The multi-perspective projector's settings per size (over the MLP projector's).
MULTI_PERSPECTIVE = {
    "tiny": dict(
        type="multi_perspective",
        perspectives=("patch", "depth", "relation", "global"),
        perspective_embedding=True,
        patch_pool=1,
        depth_layers=(),  # every hidden state: embeddings and both layers
        depth_pool=2,
        relation_pool=1,
        relation_k=4,
        relation_rounds=1,
        global_queries=4,
        video="pooled",
    ),
    "7b": dict(
        type="multi_perspective",
        perspectives=("patch", "depth", "relation", "global"),
        perspective_embedding=True,
        patch_pool=2,
        # Every fourth hidden state up to LLaVA's feature layer (-2 = 23): colour and texture
        # early, semantics late.
        depth_layers=(3, 7, 11, 15, 19, 23),
        depth_pool=4,
        relation_pool=4,
        relation_k=6,
        relation_rounds=2,
        global_queries=16,
        video="pooled",
    ),
}

# 7B training per stage: learning rate, steps, warmup steps.
_STAGE_7B = {1: (1e-3, 1000, 30), 2: (2e-5, 2250, 70)}


def _check(name: str, value, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of {allowed}")


def llava(
    size: str = "tiny", *, backbone: str = "vicuna", stage: int = 2, runlocal: bool = False
) -> config_dict.ConfigDict:
    """LLaVA: CLIP ViT + LLaVA's 2-layer MLP projector + an LLM, EmoPrompt off."""
    _check("size", size, SIZES)
    _check("backbone", backbone, BACKBONES)
    _check("stage", stage, STAGES)
    c = _llava(size, backbone, stage)
    if runlocal:
        _run_locally(c, _llava("tiny", backbone, stage))
    return c


def emollm(
    size: str = "tiny",
    *,
    variant: str = "full",
    backbone: str = "vicuna",
    stage: int = 2,
    runlocal: bool = False,
) -> config_dict.ConfigDict:
    """EmoLLM: LLaVA with what ``variant`` adds (multi-perspective projection, EmoPrompt)."""
    _check("size", size, SIZES)
    _check("variant", variant, VARIANTS)
    _check("backbone", backbone, BACKBONES)
    _check("stage", stage, STAGES)
    c = _emollm(size, variant, backbone, stage)
    if runlocal:
        _run_locally(c, _emollm("tiny", variant, backbone, stage))
    return c


def _llava(size: str, backbone: str, stage: int) -> config_dict.ConfigDict:
    text, image_token_id, tokenizer, chat_template, init_from = _BACKBONES[size, backbone]
    model = dict(
        arch="llava",
        vision=TINY_VISION if size == "tiny" else CLIP_VIT_L_14_336,
        text=text,
        projector=dict(type="mlp", hidden_act="gelu", bias=True),
        image_token_id=image_token_id,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    c = base_config()
    c.data.tokenizer = tokenizer
    c.data.chat_template = chat_template
    c.train.stage = stage
    c.train.init_from = init_from
    if size == "tiny":
        # Low-rank adapters on the LLM (rank 0 = off), e.g. --config.model.lora.rank=8.
        model["lora"] = dict(rank=0, alpha=16.0, targets=("q", "k", "v", "o", "gate", "up", "down"))
        # float32 compute here: on this CPU a bfloat16 matmul is slower than a float32 one
        # (512x512: 21 ms vs 12 ms). The 7B configs compute in bfloat16.
        c.model = config_dict.ConfigDict(
            {**model, **forward_options(param_dtype="float32", dtype="float32")}
        )
        # The main job's recipe (python -m emollm_jax.main_job; its docstring says why):
        # grounding, 1000 steps at 5e-4 with EmoPrompt off, then this config's 1500 at 5e-4
        # (chosen over 1e-3 on validation: the spread over seeds, docs/ablation/README.md).
        c.recipe.grounding_steps = 1000
        c.recipe.grounding_learning_rate = 5e-4
        c.train.steps = 1500
        c.train.learning_rate = 5e-4
        # One random vision tower for every seed, standing in for the pretrained tower that
        # real runs share: with a tower of its own per seed, what a run could read (intent's
        # badges, the faces) followed the seed (docs/ablation/mini_emobench_v3.md).
        c.train.vision_seed = 0
        c.log.every_steps = 50
        return c
    c.model = config_dict.ConfigDict(
        {
            **model,
            # The attention kernel of the platform (splash on TPU, cuDNN on an NVIDIA GPU, XLA
            # elsewhere) and the loss in chunks: no [rows, seq, vocab] float32 logits.
            **forward_options(
                param_dtype="float32",
                dtype="bfloat16",
                scan_layers=True,
                remat="full",
                attention="auto",
            ),
        }
    )
    c.train.loss_chunk = 512
    c.data.dir = "data/emobench"
    c.data.seq_buckets = (1024, 2048)
    c.data.frame_buckets = (1, 8)
    c.data.batch_size = 128
    c.data.eval_batch_size = 64
    c.data.worker_count = 8
    c.mesh.shape = dict(data=1, fsdp=-1, tensor=1)
    c.mesh.strategy = "fsdp"
    c.train.learning_rate, c.train.steps, c.train.warmup_steps = _STAGE_7B[stage]
    c.checkpoint.every_steps = 250
    return c


def _emollm(size: str, variant: str, backbone: str, stage: int) -> config_dict.ConfigDict:
    c = _llava(size, backbone, stage)
    base = variant.removesuffix("_answer_first")
    if base != variant:
        c.emoprompt.rationale_position = "after_answer"
    if base in ("mp", "full"):
        c.model.projector.update(MULTI_PERSPECTIVE[size])
    if base in ("emoprompt", "full"):
        c.emoprompt.guiding_prompts = True
        c.emoprompt.rationale_targets = True
        if size == "tiny":
            # Guiding prompts and rationales lengthen the examples. Longest on the mini
            # EmoBench's train split: image 262 tokens, video 330 (multi-perspective, 68 tokens
            # per video); image 238, video 390 (baseline projector, 128 tokens per video).
            c.data.seq_buckets = (272, 336) if base == "full" else (272, 400)
    if size == "7b":
        c.eval.max_new_tokens = 128
        if stage == 2:
            c.train.init_from = ""  # the stage-1 run
    return c


def _run_locally(c: config_dict.ConfigDict, tiny: config_dict.ConfigDict) -> None:
    """Shrink ``c`` in place to run on this machine in seconds: ``tiny``'s model and data
    settings (the same recipe at the tiny size), a small batch and two steps."""
    c.model = tiny.model
    for key in ("dir", "tokenizer", "chat_template"):
        c.data[key] = tiny.data[key]
    # One bucket each: one batch shape, so one compiled training step.
    c.data.seq_buckets = tiny.data.seq_buckets[-1:]
    c.data.frame_buckets = tiny.data.frame_buckets[-1:]
    c.data.make_mini_if_missing = True
    c.data.batch_size = 8  # divisible by the 8 CPU devices the tests run on
    c.data.eval_batch_size = 8
    c.data.worker_count = 0
    c.train.steps = 2
    c.train.warmup_steps = 1
    c.train.init_from = c.train.init_vision_from = c.train.init_llm_from = ""
    c.recipe.grounding_steps = min(c.recipe.grounding_steps, 2)
    c.checkpoint.every_steps = 2
    c.log.every_steps = 1
    c.eval.max_new_tokens = 16
    c.eval.limit = 8


def lm(model: str = "llama3.1-8b", *, runlocal: bool = False) -> config_dict.ConfigDict:
    """A bare decoder LM at a published shape (``shapes.LM_SHAPES``), text only, for ahead-of-time
    compilation and the pod-scale calibration: bfloat16 compute over float32 weights, scanned
    layers, full remat, the attention kernel the platform has (``auto``), the loss chunked over
    1024 positions, FSDP over every chip, 8192-token rows. ``runlocal`` shrinks it to the tiny
    LLM (same family options) so it trains here in seconds on random tokens."""
    _check("model", model, tuple(LM_SHAPES))
    text = dict(LM_SHAPES[model])
    if runlocal:  # the tiny LLM with the model's architectural options
        options = ("gated_mlp", "hidden_act", "tie_word_embeddings")
        text = dict(TINY_LLAMA, **{k: text[k] for k in options if k in text})
        if LM_SHAPES[model].get("head_dim"):
            text["head_dim"] = 32  # independent of hidden_size / heads, as the model's
    c = base_config()
    c.model = config_dict.ConfigDict(
        {
            "arch": "llama",
            "vision": None,
            "projector": None,
            "text": text,
            **forward_options(
                param_dtype="float32",
                dtype="float32" if runlocal else "bfloat16",
                scan_layers=not runlocal,
                remat="none" if runlocal else "full",
                attention="auto",
            ),
        }
    )
    c.train.loss_chunk = 0 if runlocal else 1024
    c.train.stage = 2
    c.mesh.shape = dict(data=1, fsdp=-1, tensor=1)
    c.mesh.strategy = "fsdp"
    c.data.seq_buckets = (128,) if runlocal else (8192,)
    c.data.batch_size = 8
    return c
