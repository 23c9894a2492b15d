"""Forward-pass options: KV-cache decoding, scan vs unrolled layers, remat, bfloat16 compute."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from emollm_jax.config.model import ModelConfig, TextConfig, VisionConfig
from emollm_jax.models.build import build_model
from emollm_jax.models.decoder import init_cache

TEXT = TextConfig(
    vocab_size=97, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4, num_kv_heads=2
)
LLAVA = ModelConfig(
    arch="llava",
    vision=VisionConfig(
        hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4, image_size=32, patch_size=8
    ),
    text=TEXT,
    image_token_id=96,
)
LLAMA = ModelConfig(arch="llama", vision=None, projector=None, text=TEXT)


@nnx.jit
def _forward(model, ids, **kwargs):
    return model(ids, **kwargs)


def _prompt(rng, batch=2, length=12):
    return jnp.asarray(rng.integers(3, 90, size=(batch, length)))


@pytest.mark.parametrize("rows", [2, 1])  # one row: the cache is read without its batch axis
def test_cached_decoding_matches_full_forward(rows):
    model = build_model(LLAMA, 0)
    ids = _prompt(np.random.default_rng(0), rows, 12)
    full = _forward(model, ids)
    cache = init_cache(TEXT, rows, 16)
    logits, cache = _forward(model, ids[:, :7], cache=cache)  # prefill 7 tokens
    steps = [logits]
    for t in range(7, 12):  # then one token at a time
        logits, cache = _forward(model, ids[:, t : t + 1], cache=cache)
        steps.append(logits)
    np.testing.assert_allclose(np.concatenate(steps, 1), full, atol=1e-5)
    assert int(cache["index"]) == 12


def test_cached_decoding_with_left_padding_matches_unpadded_rows():
    model = build_model(LLAMA, 1)
    rng = np.random.default_rng(1)
    short, long_ = _prompt(rng, 1, 5), _prompt(rng, 1, 8)
    ids = jnp.concatenate([jnp.concatenate([jnp.zeros((1, 3), int), short], 1), long_], 0)
    mask = jnp.asarray([[0, 0, 0, 1, 1, 1, 1, 1], [1] * 8])
    positions = jnp.maximum(jnp.cumsum(mask, 1) - 1, 0)
    cache = init_cache(TEXT, 2, 12)
    logits, cache = _forward(model, ids, attention_mask=mask, positions=positions, cache=cache)
    np.testing.assert_allclose(logits[0, 3:], _forward(model, short)[0], atol=1e-5)
    np.testing.assert_allclose(logits[1], _forward(model, long_)[0], atol=1e-5)
    # one more token per row continues each sequence where it left off
    nxt = jnp.asarray([[7], [9]])
    step, _ = _forward(
        model,
        nxt,
        attention_mask=jnp.ones((2, 1), int),
        positions=positions[:, -1:] + 1,
        cache=cache,
    )
    np.testing.assert_allclose(
        step[0, 0], _forward(model, jnp.concatenate([short, nxt[:1]], 1))[0, -1], atol=1e-5
    )
    np.testing.assert_allclose(
        step[1, 0], _forward(model, jnp.concatenate([long_, nxt[1:]], 1))[0, -1], atol=1e-5
    )


@pytest.mark.slow  # over ~8 s here
@pytest.mark.parametrize("scan, remat", [(True, "none"), (False, "full"), (True, "dots")])
def test_scan_and_remat_change_nothing_but_cost(scan, remat):
    ref_model = build_model(LLAVA, 0)
    model = build_model(dataclasses.replace(LLAVA, scan_layers=scan, remat=remat), 0)
    rng = np.random.default_rng(2)
    ids = jnp.asarray(np.concatenate([[[96] * 16], rng.integers(3, 90, (1, 6))], 1))
    pixels = jnp.asarray(rng.standard_normal((1, 3, 32, 32)), jnp.float32)

    def loss(m):
        return jnp.mean(m(ids, pixels) ** 2)

    value_and_grad = nnx.jit(nnx.value_and_grad(loss))
    l_ref, g_ref = value_and_grad(ref_model)
    l_new, g_new = value_and_grad(model)
    np.testing.assert_allclose(l_new, l_ref, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g_ref), jax.tree.leaves(g_new)):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_one_hot_embedding_gives_the_gathers_logits_and_gradients():
    ref_model = build_model(LLAMA, 0)
    model = build_model(dataclasses.replace(LLAMA, embed_one_hot=True), 0)
    ids = _prompt(np.random.default_rng(4))

    def loss(m):
        return jnp.mean(m(ids) ** 2)

    value_and_grad = nnx.jit(nnx.value_and_grad(loss))
    (l_ref, g_ref), (l_new, g_new) = value_and_grad(ref_model), value_and_grad(model)
    np.testing.assert_allclose(l_new, l_ref, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g_ref), jax.tree.leaves(g_new)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert float(jnp.abs(g_ref["embed_tokens"]["embedding"][...]).max()) > 0


def test_bfloat16_compute_keeps_float32_params_and_stays_close():
    model32 = build_model(LLAMA, 3)
    model16 = build_model(dataclasses.replace(LLAMA, dtype="bfloat16"), 3)
    ids = _prompt(np.random.default_rng(3))
    out16 = _forward(model16, ids)
    assert out16.dtype == jnp.bfloat16
    assert {v.dtype for v in jax.tree.leaves(nnx.state(model16, nnx.Param))} == {
        jnp.dtype("float32")
    }
    # bfloat16 keeps 8 significant bits (unit roundoff 2^-8 = 0.4%), so its error scales with the
    # logits: bound it relative to their largest magnitude, worst case and on average.
    ref = np.asarray(_forward(model32, ids))
    err = np.abs(np.asarray(out16, np.float32) - ref)
    scale = np.abs(ref).max()
    assert err.max() <= 0.02 * scale, (err.max(), scale)
    assert err.mean() <= 0.005 * scale, (err.mean(), scale)
