"""Tiny EmoLLM and its ablations on the mini EmoBench, trainable on CPU.

The model is ``llava_tiny.py``'s (CLIP ViT 64 px / patch 16, hidden 32; LLaMA hidden 64; 2 layers
each); the config argument picks what EmoLLM adds on top::

    --config configs/emollm_tiny.py:baseline   LLaVA MLP projector, no EmoPrompt (= llava_tiny)
    --config configs/emollm_tiny.py:mp         + multi-perspective projection
    --config configs/emollm_tiny.py:emoprompt  + EmoPrompt (guiding prompts, rationale targets)
    --config configs/emollm_tiny.py            full EmoLLM (both; the default "full")
    --config configs/emollm_tiny.py:emoprompt_answer_first, :full_answer_first
                                               the same with the rationale after the answer

Visual tokens per image (4x4 patch grid): baseline 16; multi-perspective 16 patch + 4 depth +
16 relation + 4 global = 40. Per 8-frame video: baseline 8 x 16 = 128; multi-perspective
36 time-pooled + 8 x 4 global = 68 (``emollm_jax/models/visual_tokens.py``).
"""

import importlib.util
from pathlib import Path

VARIANTS = (
    "baseline",
    "mp",
    "emoprompt",
    "full",
    "emoprompt_answer_first",
    "full_answer_first",
)


def _llava_tiny():
    path = Path(__file__).with_name("llava_tiny.py")
    spec = importlib.util.spec_from_file_location("llava_tiny", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def get_config(arg: str | None = None):
    variant = arg or "full"
    if variant not in VARIANTS:
        raise ValueError(f"config argument {variant!r} is not one of {VARIANTS}")
    c = _llava_tiny()
    base = variant.removesuffix("_answer_first")
    if base != variant:
        c.emoprompt.rationale_position = "after_answer"
    if base in ("mp", "full"):
        c.model.projector.update(
            dict(
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
            )
        )
    if base in ("emoprompt", "full"):
        c.emoprompt.guiding_prompts = True
        c.emoprompt.rationale_targets = True
        # Guiding prompts and rationales lengthen the examples. Longest on the mini EmoBench's
        # train split: image 262 tokens, video 330 (multi-perspective, 68 tokens per video);
        # image 238, video 390 (baseline projector, 128 tokens per video).
        c.data.seq_buckets = (272, 336) if base == "full" else (272, 400)
    return c
