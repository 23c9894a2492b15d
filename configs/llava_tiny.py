"""Tiny LLaVA baseline (CLIP ViT + 2-layer MLP projector + LLaMA), trainable on CPU.

Hidden 32 (vision) / 64 (text), 2 layers each (``emollm_jax/config/presets.py``). Used by the
tests. The argument takes ``stage``, ``backbone`` and ``runlocal`` (a couple of steps on the
mini EmoBench), e.g. ``configs/llava_tiny.py:stage=1``; override any field on the command line,
e.g. ``--config.train.steps=200``.
"""

from emollm_jax.config import presets
from emollm_jax.config.args import parse_arg


def get_config(arg: str | None = None):
    args = parse_arg(arg, presets.SHORTHANDS, stage=2, backbone="vicuna", runlocal=False)
    return presets.llava("tiny", **args)
