"""Tiny LLaVA baseline (CLIP ViT + 2-layer MLP projector + LLaMA), trainable on CPU.

Hidden 32 (vision) / 64 (text), 2 layers each. Used by the tests and the README's main job.
Override any field on the command line, e.g. ``--config.train.steps=200``.
"""

from ml_collections import config_dict

from emollm_jax.config.base import base_config, forward_options


def get_config(arg: str | None = None):
    del arg
    c = base_config()
    c.model = config_dict.ConfigDict(
        dict(
            arch="llava",
            vision=dict(
                hidden_size=32,
                intermediate_size=64,
                num_layers=2,
                num_heads=4,
                image_size=64,
                patch_size=16,
                num_channels=3,
                layer_norm_eps=1e-5,
                hidden_act="quick_gelu",
            ),
            text=dict(
                family="llama",
                vocab_size=1024,
                hidden_size=64,
                intermediate_size=128,
                num_layers=2,
                num_heads=4,
                num_kv_heads=2,
                rope_theta=10000.0,
                rms_norm_eps=1e-6,
                max_position_embeddings=1024,
                bos_token_id=1,
                eos_token_id=2,
                pad_token_id=3,
            ),
            projector=dict(type="mlp", hidden_act="gelu", bias=True),
            image_token_id=4,
            vision_feature_layer=-2,
            vision_feature_select_strategy="default",
            # Low-rank adapters on the LLM (rank 0 = off), e.g. --config.model.lora.rank=8.
            lora=dict(rank=0, alpha=16.0, targets=("q", "k", "v", "o", "gate", "up", "down")),
            # float32 compute here: on this CPU a bfloat16 matmul is slower than a float32 one
            # (512x512: 21 ms vs 12 ms). Accelerator configs (llava_7b.py) compute in bfloat16.
            **forward_options(param_dtype="float32", dtype="float32"),
        )
    )
    return c
