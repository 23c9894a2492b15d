"""Full EmoLLM at real size on a Qwen2-7B backbone: ``emollm_7b.py:backbone=qwen2``.

CLIP ViT-L/14-336 + Qwen2-7B-Instruct; everything but the LLM, its tokenizer and chat template
is ``emollm_7b.py``'s (same projector, EmoPrompt, mesh and stages). ``<image>`` takes id
151646, the first id past Qwen2's special tokens. No public checkpoint pairs these towers: the
initial weights are composed from a ``CLIPVisionModel`` folder and a ``Qwen2ForCausalLM`` folder
with ``emollm_jax.models.compose.compose(cfg, vision=..., language_model=...)`` (fresh
projector), then trained from stage 1 (``--config configs/emollm_qwen2_7b.py:stage=1``).

Visual tokens: as ``emollm_7b.py`` (232 per image, 344 per 8-frame video).
"""

from emollm_jax.config import presets
from emollm_jax.config.args import parse_arg


def get_config(arg: str | None = None):
    args = parse_arg(
        arg, presets.SHORTHANDS, stage=2, backbone="qwen2", variant="full", runlocal=False
    )
    return presets.emollm("7b", **args)
