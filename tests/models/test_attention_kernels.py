"""The attention seam: splash (Pallas interpret mode on CPU) against the XLA reference, the
platform checks, the cuDNN path where a GPU exists, and the whole tiny LLaVA under splash."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh

from emollm_jax.config.model import ModelConfig, TextConfig, VisionConfig
from emollm_jax.errors import ConfigError
from emollm_jax.models.attention import (
    AttentionSettings,
    attend,
    check_platform,
    resolve,
)
from emollm_jax.models.attention_mask import AttentionMask, self_attention_mask
from emollm_jax.models.build import build_model
from emollm_jax.sharding.context import use_mesh_rules
from emollm_jax.sharding.strategies import get_strategy

SPLASH = AttentionSettings("splash", interpret=True, block_q=128, block_kv=128)
XLA = AttentionSettings("xla")


def _qkv(b, t, h, kv, d, seed=0):
    rng = np.random.default_rng(seed)
    q = jnp.asarray(rng.normal(size=(b, t, h, d)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(b, t, kv, d)), jnp.float32)
    v = jnp.asarray(rng.normal(size=(b, t, kv, d)), jnp.float32)
    return q, k, v


def _compare(q, k, v, mask, valid_q, mesh_rules=None, splash=SPLASH):
    """Outputs at valid query positions and gradients of a weighted sum of them, xla vs splash."""
    weights = jnp.asarray(np.random.default_rng(1).normal(size=q.shape), jnp.float32)
    weights = weights * valid_q[:, :, None, None]
    scale = q.shape[-1] ** -0.5

    def loss(settings, q, k, v):
        out = attend(q, k, v, mask, scale, settings)
        return jnp.sum(out * weights), out

    def run(settings):
        fn = jax.jit(jax.value_and_grad(lambda *a: loss(settings, *a), argnums=(0, 1, 2), has_aux=True))
        if mesh_rules is None:
            return fn(q, k, v)
        with use_mesh_rules(*mesh_rules):
            return fn(q, k, v)

    (_, out_x), grads_x = run(XLA)
    (_, out_s), grads_s = run(splash)
    sel = np.asarray(valid_q, bool)
    np.testing.assert_allclose(np.asarray(out_s)[sel], np.asarray(out_x)[sel], atol=1e-5)
    for gx, gs in zip(grads_x, grads_s):
        np.testing.assert_allclose(np.asarray(gs), np.asarray(gx), atol=1e-5)


def test_splash_causal_left_padding_gqa():
    b, t, h, kv, d = 2, 200, 4, 2, 16  # 200 tokens: padded to 256 inside, GQA group 2
    q, k, v = _qkv(b, t, h, kv, d)
    valid = np.ones((b, t), np.int32)
    valid[0, :37] = 0  # left padding of row 0
    mask = self_attention_mask(jnp.asarray(valid), None, causal=True)
    _compare(q, k, v, mask, jnp.asarray(valid))


def test_splash_fused_backward_kernel_matches_xla():
    """One backward kernel for dq, dk and dv (MaxText's sa_use_fused_bwd_kernel)."""
    b, t, h, kv, d = 1, 256, 4, 2, 16
    q, k, v = _qkv(b, t, h, kv, d, seed=3)
    mask = self_attention_mask(None, None, causal=True)
    fused = dataclasses.replace(SPLASH, fused_backward=True)
    _compare(q, k, v, mask, jnp.ones((b, t)), splash=fused)


def test_splash_packed_segments():
    b, t, h, kv, d = 2, 256, 2, 1, 16
    q, k, v = _qkv(b, t, h, kv, d, seed=2)
    seg = np.zeros((b, t), np.int32)
    seg[0, :100], seg[0, 100:230] = 1, 2  # two examples then right padding
    seg[1, :256] = 1
    mask = self_attention_mask(jnp.asarray((seg > 0).astype(np.int32)), jnp.asarray(seg), causal=True)
    _compare(q, k, v, mask, jnp.asarray(seg > 0))


def test_splash_bidirectional_vision_case():
    b, t, h, d = 3, 17, 4, 8  # a tiny ViT: class token + 16 patches, no mask at all
    q, k, v = _qkv(b, t, h, h, d, seed=3)
    _compare(q, k, v, AttentionMask(causal=False), jnp.ones((b, t)))


def test_splash_under_a_mesh_matches_xla():
    """Inside jax.shard_map over the batch and KV-head axes of an FSDP + TP rule table."""
    devices = np.array(jax.devices()[:8]).reshape(4, 2)
    mesh = Mesh(devices, ("fsdp", "tensor"))
    rules = get_strategy("fsdp_tp").rules
    b, t, h, kv, d = 4, 130, 4, 2, 16
    q, k, v = _qkv(b, t, h, kv, d, seed=4)
    valid = np.ones((b, t), np.int32)
    valid[1, :9] = 0
    mask = self_attention_mask(jnp.asarray(valid), None, causal=True)
    _compare(q, k, v, mask, jnp.asarray(valid), mesh_rules=(mesh, rules))


def test_cached_mask_takes_the_xla_path_with_any_setting():
    """Decoding against a KV cache works whatever the configured kernel."""
    q, k, v = _qkv(2, 1, 4, 2, 16, seed=5)
    k_cache, v_cache = _qkv(2, 8, 2, 2, 16, seed=6)[1:]
    slots = jnp.asarray([[0, 1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0, 0, 0]], bool)
    mask = AttentionMask(
        causal=True, kv_valid=slots, q_slots=jnp.asarray([4]), kv_slots=jnp.arange(8)
    )
    out_s = attend(q, k_cache, v_cache, mask, 0.25, SPLASH)
    out_x = attend(q, k_cache, v_cache, mask, 0.25, XLA)
    np.testing.assert_array_equal(np.asarray(out_s), np.asarray(out_x))


def test_platform_checks_name_the_field():
    cpu = jax.devices()[0]
    with pytest.raises(ConfigError, match=r"config\.model\.attention: 'splash' is a TPU kernel"):
        check_platform(ModelConfig(attention="splash"), cpu)
    check_platform(ModelConfig(attention="splash", attention_interpret=True), cpu)
    with pytest.raises(ConfigError, match=r"config\.model\.attention: 'cudnn' needs an NVIDIA GPU"):
        check_platform(ModelConfig(attention="cudnn", dtype="bfloat16"), cpu)
    check_platform(ModelConfig(attention="auto"), cpu)  # never fails
    assert resolve(AttentionSettings("auto"), cpu, jnp.bfloat16) == "xla"


def test_auto_picks_the_kernel_of_the_platform():
    class Fake:
        def __init__(self, platform, kind):
            self.platform, self.device_kind = platform, kind

    auto = AttentionSettings("auto")
    assert resolve(auto, Fake("tpu", "TPU v5p"), jnp.float32) == "splash"
    assert resolve(auto, Fake("gpu", "NVIDIA H100"), jnp.bfloat16) == "cudnn"
    assert resolve(auto, Fake("gpu", "NVIDIA H100"), jnp.float32) == "xla"
    assert resolve(auto, Fake("gpu", "AMD MI300"), jnp.bfloat16) == "xla"


def _tiny_llava(**attention) -> ModelConfig:
    return ModelConfig(
        vision=VisionConfig(hidden_size=32, intermediate_size=64, num_heads=4, image_size=32, patch_size=8),
        text=TextConfig(vocab_size=128, hidden_size=64, intermediate_size=96, num_heads=4, num_kv_heads=2),
        image_token_id=4,
        **attention,
    )


def test_tiny_llava_logits_under_splash_equal_xla():
    cfg = _tiny_llava()
    ref = build_model(cfg, seed=3)
    kern = build_model(dataclasses.replace(cfg, attention="splash", attention_interpret=True), seed=3)
    tokens = cfg.vision.num_patches  # default select strategy drops the class token
    rng = np.random.default_rng(7)
    ids = rng.integers(5, 128, size=(2, 40)).astype(np.int32)
    ids[:, 3 : 3 + tokens] = cfg.image_token_id
    mask = np.ones_like(ids)
    mask[1, :2] = 0  # left padding before the image
    ids[1, :2] = 0
    pixels = jnp.asarray(rng.normal(size=(2, 3, 32, 32)), jnp.float32)
    args = (jnp.asarray(ids), pixels, jnp.asarray(mask))
    out_x = np.asarray(jax.jit(lambda *a: ref(*a))(*args))
    out_s = np.asarray(jax.jit(lambda *a: kern(*a))(*args))
    np.testing.assert_allclose(out_s[mask > 0], out_x[mask > 0], atol=1e-4)


def _has_nvidia_gpu() -> bool:
    try:
        return any("nvidia" in d.device_kind.lower() for d in jax.devices("gpu"))
    except RuntimeError:
        return False


@pytest.mark.skipif(not _has_nvidia_gpu(), reason="cuDNN attention needs an NVIDIA GPU; none here")
def test_cudnn_matches_xla_on_a_gpu():
    gpu = jax.devices("gpu")[0]
    b, t, h, kv, d = 2, 256, 8, 2, 64
    q, k, v = (jax.device_put(x.astype(jnp.bfloat16), gpu) for x in _qkv(b, t, h, kv, d, seed=8))
    valid = np.ones((b, t), np.int32)
    valid[0, :20] = 0
    mask = self_attention_mask(jax.device_put(jnp.asarray(valid), gpu), None, causal=True)
    out_c = attend(q, k, v, mask, d**-0.5, AttentionSettings("cudnn"))
    out_x = attend(q, k, v, mask, d**-0.5, XLA)
    sel = valid > 0
    diff = np.abs(np.asarray(out_c, np.float32) - np.asarray(out_x, np.float32))[sel]
    assert diff.max() < 2e-2  # bfloat16: 8 significant bits


@pytest.mark.slow  # over ~8 s here
def test_generation_is_unchanged_by_the_kernel_choice():
    """Decoding keeps the XLA path over the KV cache; the vision tower and the prefill's image
    features go through splash: the greedy tokens are the same."""
    from emollm_jax.generate.decode import GenerateConfig, generate

    cfg = _tiny_llava()
    ref = build_model(cfg, seed=5)
    kern = build_model(dataclasses.replace(cfg, attention="splash", attention_interpret=True), seed=5)
    rng = np.random.default_rng(9)
    ids = rng.integers(5, 128, size=(2, 24)).astype(np.int32)
    ids[:, 2 : 2 + cfg.vision.num_patches] = cfg.image_token_id
    batch = {
        "input_ids": ids,
        "attention_mask": np.ones_like(ids),
        "pixel_values": rng.normal(size=(2, 3, 32, 32)).astype(np.float32),
    }
    config = GenerateConfig(max_new_tokens=6)
    out_x = generate(ref, batch, config)
    out_s = generate(kern, batch, config)
    np.testing.assert_array_equal(np.asarray(out_s.tokens), np.asarray(out_x.tokens))
