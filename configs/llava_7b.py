"""LLaVA-1.5-7B at real size: CLIP ViT-L/14-336 + Vicuna-7B + LLaVA's 2-layer MLP projector.

The shapes of the Hugging Face ``llava-hf/llava-1.5-7b-hf`` checkpoint (7,063,427,072
parameters; vocabulary 32064 with ``<image>`` = 32000, 576 visual tokens per image). Place that
folder at ``checkpoints/llava-1.5-7b-hf`` (no hub access here) to fine-tune from it, or start
from its towers with ``:stage1`` (projector only, the LLaVA recipe's pre-training stage).

    --config configs/llava_7b.py:stage1   projector only, lr 1e-3
    --config configs/llava_7b.py          stage 2: projector + LLM, lr 2e-5 (FSDP, remat, scan)
"""

from ml_collections import config_dict

from emollm_jax.config.base import base_config, forward_options
from emollm_jax.config.shapes import CLIP_VIT_L_14_336, VICUNA_7B

LLAVA_7B = "checkpoints/llava-1.5-7b-hf"


def get_config(arg: str | None = None):
    stage = arg or "stage2"
    if stage not in ("stage1", "stage2"):
        raise ValueError(f"config argument {stage!r} is not one of ('stage1', 'stage2')")
    c = base_config()
    c.model = config_dict.ConfigDict(
        dict(
            arch="llava",
            vision=CLIP_VIT_L_14_336,
            text=VICUNA_7B,
            projector=dict(type="mlp", hidden_act="gelu", bias=True),
            image_token_id=32000,
            vision_feature_layer=-2,
            vision_feature_select_strategy="default",
            **forward_options(
                param_dtype="float32", dtype="bfloat16", scan_layers=True, remat="full"
            ),
        )
    )
    c.data.dir = "data/emobench"
    c.data.tokenizer = LLAVA_7B
    c.data.chat_template = "vicuna_v1"
    c.data.seq_buckets = (1024, 2048)
    c.data.frame_buckets = (1, 8)
    c.data.batch_size = 128
    c.data.eval_batch_size = 64
    c.data.worker_count = 8
    c.mesh.shape = dict(data=1, fsdp=-1, tensor=1)
    c.mesh.strategy = "fsdp"
    c.train.init_from = LLAVA_7B
    c.checkpoint.every_steps = 250
    if stage == "stage1":
        c.train.stage, c.train.learning_rate, c.train.steps, c.train.warmup_steps = (
            1,
            1e-3,
            1000,
            30,
        )
    else:
        c.train.stage, c.train.learning_rate, c.train.steps, c.train.warmup_steps = (
            2,
            2e-5,
            2250,
            70,
        )
    return c
