"""Full EmoLLM at real size: CLIP ViT-L/14-336 + Vicuna-7B (LLaVA-1.5-7B's towers).

Multi-perspective projection and EmoPrompt on; the shapes are those of the Hugging Face
``llava-hf/llava-1.5-7b-hf`` checkpoint (vocabulary 32064 with ``<image>`` = 32000), which is
where the vision tower, the LLM and the patch perspective's MLP start from
(``emollm_jax.models.compose``). Place that folder at ``checkpoints/llava-1.5-7b-hf`` (no hub
access here) or override ``--config.train.init_from`` and ``--config.data.tokenizer``.

The config argument picks the training stage::

    --config configs/emollm_7b.py:stage1   projector only (towers frozen), lr 1e-3
    --config configs/emollm_7b.py          stage 2: projector + LLM, lr 2e-5; set
                                           --config.train.init_from=<stage-1 run>

Visual tokens (24x24 patch grid): per image 144 patch (pooled 2x2) + 36 depth + 36 relation +
16 global = 232 (LLaVA-1.5: 576); per 8-frame video 216 time-pooled + 8 x 16 global = 344.
The perspectives' settings are ours (the paper publishes none).
"""

from ml_collections import config_dict

from emollm_jax.config.base import base_config, forward_options
from emollm_jax.config.shapes import CLIP_VIT_L_14_336, VICUNA_7B

LLAVA_7B = "checkpoints/llava-1.5-7b-hf"
STAGES = ("stage1", "stage2")

MULTI_PERSPECTIVE = dict(
    type="multi_perspective",
    hidden_act="gelu",
    bias=True,
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
)


def get_config(arg: str | None = None):
    stage = arg or "stage2"
    if stage not in STAGES:
        raise ValueError(f"config argument {stage!r} is not one of {STAGES}")
    c = base_config()
    c.model = config_dict.ConfigDict(
        dict(
            arch="llava",
            vision=CLIP_VIT_L_14_336,
            text=VICUNA_7B,
            projector=MULTI_PERSPECTIVE,
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
    c.data.video_frames = 8
    c.data.frame_buckets = (1, 8)
    c.data.seq_buckets = (1024, 2048)
    c.data.batch_size = 128
    c.data.eval_batch_size = 64
    c.data.worker_count = 8
    c.emoprompt.guiding_prompts = True
    c.emoprompt.rationale_targets = True
    c.mesh.shape = dict(data=1, fsdp=-1, tensor=1)
    c.mesh.strategy = "fsdp"
    c.eval.max_new_tokens = 128
    if stage == "stage1":
        c.train.stage = 1
        c.train.learning_rate = 1e-3
        c.train.steps = 1000
        c.train.warmup_steps = 30
        c.train.init_from = LLAVA_7B
    else:
        c.train.stage = 2
        c.train.learning_rate = 2e-5
        c.train.steps = 2250  # one epoch of EmoBench's ~287k examples at batch 128
        c.train.warmup_steps = 70
        c.train.init_from = ""  # the stage-1 run
    c.checkpoint.every_steps = 250
    return c
