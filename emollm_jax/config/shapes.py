"""Shapes of the towers the presets build on (``config.model.vision`` / ``.text``), each
described once: the tiny ones the tests and the main job train on CPU, and the real-size ones
(``emollm_jax/config/presets.py``).
"""

# The tiny towers: CLIP-like ViT at 64 px / patch 16 (a 4x4 grid), hidden 32; an LLM of hidden
# 64 over the tokenizer in emollm_jax/assets/tokenizer (ids 1-4: bos, eos, pad, <image>).
TINY_VISION = dict(
    hidden_size=32,
    intermediate_size=64,
    num_layers=2,
    num_heads=4,
    image_size=64,
    patch_size=16,
    num_channels=3,
    layer_norm_eps=1e-5,
    hidden_act="quick_gelu",
)

TINY_LLAMA = dict(
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
)

# The tiny LLM as Qwen2 builds it (biases on q, k, v), for the qwen2 backbone run locally.
TINY_QWEN2 = dict(TINY_LLAMA, family="qwen2", qkv_bias=True)

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

# Qwen2-7B-Instruct's LLM.
QWEN2_7B = dict(
    family="qwen2",
    vocab_size=152064,
    hidden_size=3584,
    intermediate_size=18944,
    num_layers=28,
    num_heads=28,
    num_kv_heads=4,
    rope_theta=1000000.0,
    rms_norm_eps=1e-6,
    qkv_bias=True,
    max_position_embeddings=32768,
    bos_token_id=151643,  # as Qwen2's config.json; ChatML prepends no bos
    eos_token_id=151645,
    pad_token_id=151643,
)

# Bare decoder LMs at the shapes of the runs MaxText published measurements for (its model
# configs, src/maxtext/configs/models/*.yml, and its v5e synthetic models): the pod-scale
# calibration compiles these (configs/lm.py). No tokenizer or weights are needed to compile.
_LLAMA3_ROPE = dict(
    rope_theta=500000.0,
    rope_scaling=dict(
        rope_type="llama3",
        factor=8.0,
        low_freq_factor=1.0,
        high_freq_factor=4.0,
        original_max_position_embeddings=8192,
    ),
)
LM_SHAPES = {
    "llama2-7b": dict(
        family="llama", vocab_size=32000, hidden_size=4096, intermediate_size=11008,
        num_layers=32, num_heads=32, num_kv_heads=32, rope_theta=10000.0, rms_norm_eps=1e-5,
        max_position_embeddings=4096,
    ),
    "llama3.1-8b": dict(
        family="llama", vocab_size=128256, hidden_size=4096, intermediate_size=14336,
        num_layers=32, num_heads=32, num_kv_heads=8, rms_norm_eps=1e-5,
        max_position_embeddings=131072, **_LLAMA3_ROPE,
    ),
    "mistral-7b": dict(
        family="llama", vocab_size=32000, hidden_size=4096, intermediate_size=14336,
        num_layers=32, num_heads=32, num_kv_heads=8, rope_theta=1000000.0, rms_norm_eps=1e-5,
        max_position_embeddings=32768,
    ),
    "llama3.1-70b": dict(
        family="llama", vocab_size=128256, hidden_size=8192, intermediate_size=28672,
        num_layers=80, num_heads=64, num_kv_heads=8, rms_norm_eps=1e-5,
        max_position_embeddings=131072, **_LLAMA3_ROPE,
    ),
    # MaxText's synthetic models of its v5e table (global_parameter_scale 16 and 32 over the
    # base config of the time): 32 layers, 32 heads of 256, one relu MLP (not gated) of 32768,
    # a 32768-token vocabulary, tied embeddings.
    "16b": dict(
        family="llama", vocab_size=32768, hidden_size=5120, intermediate_size=32768,
        num_layers=32, num_heads=32, num_kv_heads=32, head_dim=256, gated_mlp=False,
        hidden_act="relu", tie_word_embeddings=True, rope_theta=10000.0, rms_norm_eps=1e-5,
        max_position_embeddings=2048,
    ),
    "32b": dict(
        family="llama", vocab_size=32768, hidden_size=10240, intermediate_size=32768,
        num_layers=32, num_heads=32, num_kv_heads=32, head_dim=256, gated_mlp=False,
        hidden_act="relu", tie_word_embeddings=True, rope_theta=10000.0, rms_norm_eps=1e-5,
        max_position_embeddings=2048,
    ),
}  # fmt: skip
for _shape in LM_SHAPES.values():
    _shape.update(bos_token_id=1, eos_token_id=2, pad_token_id=0)
