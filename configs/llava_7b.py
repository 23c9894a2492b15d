"""LLaVA-1.5-7B at real size: CLIP ViT-L/14-336 + Vicuna-7B + LLaVA's 2-layer MLP projector.

The shapes of the Hugging Face ``llava-hf/llava-1.5-7b-hf`` checkpoint (7,063,427,072
parameters; vocabulary 32064 with ``<image>`` = 32000, 576 visual tokens per image). Place that
folder at ``checkpoints/llava-1.5-7b-hf`` (no hub access here) to fine-tune from it, or start
from its towers with ``:stage=1`` (projector only, the LLaVA recipe's pre-training stage)::

    --config configs/llava_7b.py:stage=1   projector only, lr 1e-3 (short: :stage1)
    --config configs/llava_7b.py           stage 2: projector + LLM, lr 2e-5 (FSDP, remat, scan)
    --config configs/llava_7b.py:runlocal=True   the same, shrunk to run here in seconds

The argument also takes ``backbone=qwen2`` (``emollm_jax/config/presets.py``).
"""

from emollm_jax.config import presets
from emollm_jax.config.args import parse_arg


def get_config(arg: str | None = None):
    args = parse_arg(arg, presets.SHORTHANDS, stage=2, backbone="vicuna", runlocal=False)
    return presets.llava("7b", **args)
