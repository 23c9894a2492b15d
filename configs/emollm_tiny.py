"""Tiny EmoLLM and its ablations on the mini EmoBench, trainable on CPU: the main job's config.

The model is ``llava_tiny.py``'s (CLIP ViT 64 px / patch 16, hidden 32; LLaMA hidden 64; 2 layers
each); the variant picks what EmoLLM adds on top (``emollm_jax/config/presets.py``)::

    --config configs/emollm_tiny.py:baseline   LLaVA MLP projector, no EmoPrompt (= llava_tiny)
    --config configs/emollm_tiny.py:mp         + multi-perspective projection
    --config configs/emollm_tiny.py:emoprompt  + EmoPrompt (guiding prompts, rationale targets)
    --config configs/emollm_tiny.py            full EmoLLM (both; the default "full")
    --config configs/emollm_tiny.py:emoprompt_answer_first, :full_answer_first
                                               the same with the rationale after the answer

``:mp`` is short for ``:variant=mp``; the argument also takes ``stage``, ``backbone`` and
``runlocal`` (``configs/emollm_tiny.py:variant=mp,runlocal=True``).

Visual tokens per image (4x4 patch grid): baseline 16; multi-perspective 16 patch + 4 depth +
16 relation + 4 global = 40. Per 8-frame video: baseline 8 x 16 = 128; multi-perspective
36 time-pooled + 8 x 4 global = 68 (``emollm_jax/models/visual_tokens.py``).
"""

from emollm_jax.config import presets
from emollm_jax.config.args import parse_arg


def get_config(arg: str | None = None):
    args = parse_arg(
        arg, presets.SHORTHANDS, variant="full", stage=2, backbone="vicuna", runlocal=False
    )
    return presets.emollm("tiny", **args)
