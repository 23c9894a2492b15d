"""The chunked loss (no [batch, seq, vocab] logits) against the plain one, the train step with
``train.loss_chunk``, last-position prefill logits, and the "attention" remat policy."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from emollm_jax.aot.hlo_stats import analyze
from emollm_jax.config.model import ModelConfig, TextConfig
from emollm_jax.models.build import build_model
from emollm_jax.train.loss import IGNORE, chunked_loss_sums, loss_sums
from emollm_jax.train.step import batch_loss_sums


def _llm(**kw) -> ModelConfig:
    text = TextConfig(vocab_size=300, hidden_size=32, intermediate_size=48, num_heads=4, num_kv_heads=2)
    return ModelConfig(arch="llama", vision=None, projector=None, text=text, **kw)


def _batch(b=3, t=37, vocab=300, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, size=(b, t)).astype(np.int32)
    labels = ids.copy()
    labels[:, :11] = IGNORE  # the prompt
    labels[1, 30:] = IGNORE  # padding
    labels[b - 1, :] = IGNORE  # a row with no target at all
    mask = np.ones_like(ids)
    mask[1, 30:] = 0
    return {"input_ids": jnp.asarray(ids), "labels": jnp.asarray(labels), "attention_mask": jnp.asarray(mask)}


SLOW = pytest.mark.slow  # chunks of 1 and 9: long scans, 30-40 s each here


# 36 = T - 1 exactly; 64 > T.
@pytest.mark.parametrize(
    "chunk", [pytest.param(1, marks=SLOW), 4, pytest.param(9, marks=SLOW), 36, 64]
)
@pytest.mark.slow  # over ~8 s here
def test_chunked_loss_value_and_gradients_equal_the_plain_loss(chunk):
    model = build_model(_llm(), seed=1)
    graphdef, params = nnx.split(model)
    batch = _batch()

    def loss(params, chunk):
        m = nnx.merge(graphdef, params)
        s, n = batch_loss_sums(m, batch, chunk)
        return s / n, n

    (plain, n_plain), g_plain = jax.value_and_grad(lambda p: loss(p, 0), has_aux=True)(params)
    (chunked, n_chunk), g_chunk = jax.value_and_grad(lambda p: loss(p, chunk), has_aux=True)(params)
    assert float(n_plain) == float(n_chunk) == float(np.sum(np.asarray(batch["labels"])[:, 1:] != IGNORE))
    np.testing.assert_allclose(float(chunked), float(plain), rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g_plain), jax.tree.leaves(g_chunk)):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-6, rtol=1e-5)


def test_chunked_loss_needs_a_positive_chunk():
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        chunked_loss_sums(jnp.zeros((1, 4, 2)), lambda h: h, jnp.zeros((1, 4), jnp.int32), 0)


def test_chunked_loss_never_holds_full_logits():
    """No vocabulary-wide array of the compiled step is larger than one chunk's logits."""
    model = build_model(_llm(), seed=1)
    graphdef, params = nnx.split(model)
    batch = _batch(b=3, t=257)
    full = 3 * 256 * 300

    def grad_fn(chunk):
        def f(p):
            s, n = batch_loss_sums(nnx.merge(graphdef, p), batch, chunk)
            return s / n

        return jax.jit(jax.grad(f)).lower(params).compile().as_text()

    def largest_vocab_array(text):
        shapes = [[int(d) for d in dims.split(",")] for dims in re.findall(r"f32\[([\d,]+)\]", text)]
        return max(np.prod(s) for s in shapes if s[-1] == 300 and len(s) > 2)

    assert largest_vocab_array(grad_fn(0)) >= full
    assert largest_vocab_array(grad_fn(32)) <= 3 * 32 * 300


def test_loss_sums_and_chunked_agree_on_random_logits():
    rng = np.random.default_rng(3)
    h = jnp.asarray(rng.normal(size=(2, 10, 6)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(6, 50)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 50, size=(2, 10)), jnp.int32).at[0, 4].set(IGNORE)
    s1, n1 = loss_sums(h @ w, labels)
    s2, n2 = chunked_loss_sums(h, lambda x: x @ w, labels, 4)
    np.testing.assert_allclose(float(s2), float(s1), rtol=1e-6)
    assert float(n1) == float(n2) == 17.0


def test_loss_weights_weigh_each_target_term_and_count():
    rng = np.random.default_rng(4)
    h = jnp.asarray(rng.normal(size=(2, 10, 6)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(6, 50)), jnp.float32)
    labels = np.asarray(rng.integers(0, 50, size=(2, 10)), np.int32)
    labels[:, :3] = IGNORE
    weights = np.where(labels != IGNORE, rng.choice([0.3, 1.0], size=labels.shape), 0.0)
    weights[0, 3] = 5.0  # a weight on an ignored target would count: it must not
    labels[0, 3] = IGNORE
    logits = np.asarray(h @ w)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected, total_w = 0.0, 0.0
    for b in range(2):
        for t in range(9):
            if labels[b, t + 1] != IGNORE:
                expected -= weights[b, t + 1] * logp[b, t, labels[b, t + 1]]
                total_w += weights[b, t + 1]
    s, n = loss_sums(h @ w, jnp.asarray(labels), jnp.asarray(weights, jnp.float32))
    np.testing.assert_allclose([float(s), float(n)], [expected, total_w], rtol=1e-5)
    s2, n2 = chunked_loss_sums(h, lambda x: x @ w, jnp.asarray(labels), 4, jnp.asarray(weights))
    np.testing.assert_allclose([float(s2), float(n2)], [expected, total_w], rtol=1e-5)
    # weight 1 everywhere is the unweighted loss
    ones = jnp.ones(labels.shape, jnp.float32)
    plain = loss_sums(h @ w, jnp.asarray(labels))
    np.testing.assert_allclose(loss_sums(h @ w, jnp.asarray(labels), ones), plain, rtol=1e-6)


def test_prefill_last_only_logits_are_the_last_column():
    model = build_model(_llm(), seed=2)
    ids = _batch()["input_ids"]
    full = model(ids)
    last = model(ids, last_only=True)
    assert last.shape == (ids.shape[0], 1, 300)
    np.testing.assert_allclose(np.asarray(last[:, 0]), np.asarray(full[:, -1]), atol=1e-6)


@pytest.mark.slow  # over ~8 s here
def test_attention_remat_policy_saves_attention_and_recomputes_the_mlp():
    """Same gradients as no remat; the backward recomputes the MLP (more dots than 'none') but
    not attention's projections (fewer dots than 'full')."""
    batch = _batch(b=3, t=16)

    def grads_and_flops(remat):
        model = build_model(_llm(remat=remat, scan_layers=True), seed=4)
        graphdef, params = nnx.split(model)

        def f(p):
            s, n = batch_loss_sums(nnx.merge(graphdef, p), batch)
            return s / n

        fn = jax.jit(jax.grad(f))
        return fn(params), analyze(fn.lower(params).compile().as_text()).flops

    g_none, f_none = grads_and_flops("none")
    g_attn, f_attn = grads_and_flops("attention")
    _, f_full = grads_and_flops("full")
    for a, b in zip(jax.tree.leaves(g_none), jax.tree.leaves(g_attn)):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-6)
    assert f_none < f_attn < f_full
