"""Full EmoLLM at real size: CLIP ViT-L/14-336 + Vicuna-7B (LLaVA-1.5-7B's towers).

Multi-perspective projection and EmoPrompt on; the shapes are those of the Hugging Face
``llava-hf/llava-1.5-7b-hf`` checkpoint (vocabulary 32064 with ``<image>`` = 32000), which is
where the vision tower, the LLM and the patch perspective's MLP start from
(``emollm_jax.models.compose``). Place that folder at ``checkpoints/llava-1.5-7b-hf`` (no hub
access here) or override ``--config.train.init_from`` and ``--config.data.tokenizer``.

The config argument takes typed ``key=value`` pairs (``emollm_jax/config/presets.py``)::

    --config configs/emollm_7b.py:stage=1   projector only (towers frozen), lr 1e-3 (:stage1)
    --config configs/emollm_7b.py           stage 2: projector + LLM, lr 2e-5; set
                                            --config.train.init_from=<stage-1 run>
    --config configs/emollm_7b.py:stage=1,backbone=qwen2   on Qwen2-7B-Instruct
    --config configs/emollm_7b.py:variant=mp               an ablation (as emollm_tiny.py's)
    --config configs/emollm_7b.py:runlocal=True            shrunk to run here in seconds

Visual tokens (24x24 patch grid): per image 144 patch (pooled 2x2) + 36 depth + 36 relation +
16 global = 232 (LLaVA-1.5: 576); per 8-frame video 216 time-pooled + 8 x 16 global = 344.
The perspectives' settings are ours (the paper publishes none).
"""

from emollm_jax.config import presets
from emollm_jax.config.args import parse_arg


def get_config(arg: str | None = None):
    args = parse_arg(
        arg, presets.SHORTHANDS, stage=2, backbone="vicuna", variant="full", runlocal=False
    )
    return presets.emollm("7b", **args)
