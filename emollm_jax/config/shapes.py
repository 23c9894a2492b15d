"""Shapes of the real-size towers the configs build on (``config.model.vision`` / ``.text``).

Shared by ``configs/llava_7b.py`` and ``configs/emollm_7b.py`` (and through it
``configs/emollm_qwen2_7b.py``), so a tower is described once.
"""

# openai/clip-vit-large-patch14-336, as LLaVA-1.5 uses it.
CLIP_VIT_L_14_336 = dict(
    hidden_size=1024,
    intermediate_size=4096,
    num_layers=24,
    num_heads=16,
    image_size=336,
    patch_size=14,
    num_channels=3,
    layer_norm_eps=1e-5,
    hidden_act="quick_gelu",
)

# Vicuna-7B as llava-hf/llava-1.5-7b-hf holds it (vocabulary 32064 with <image> = 32000).
VICUNA_7B = dict(
    family="llama",
    vocab_size=32064,
    hidden_size=4096,
    intermediate_size=11008,
    num_layers=32,
    num_heads=32,
    num_kv_heads=32,
    rope_theta=10000.0,
    rms_norm_eps=1e-5,
    max_position_embeddings=4096,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=32001,
)
