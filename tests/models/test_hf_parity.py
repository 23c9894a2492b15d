"""Our models against transformers' PyTorch classes: float32 outputs within 1e-4."""

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

import emollm_jax
from tests import hf_models

pytestmark = pytest.mark.torch

TOL = 1e-4


def _ids(rng, batch, length, vocab=100):
    return rng.integers(3, vocab, size=(batch, length))


def _max_diff(ours, ref):
    return float(np.abs(np.asarray(ours, np.float32) - ref.numpy()).max())


def test_clip_vision_hidden_states_of_every_layer(tmp_path):
    hf = hf_models.clip_vision()
    model = emollm_jax.load_hf(hf_models.save(hf, tmp_path / "clip"))
    pixels = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        ref = hf(pixel_values=torch.tensor(pixels), output_hidden_states=True)
    last, pooled, states = model(jnp.asarray(pixels))
    assert len(states) == len(ref.hidden_states) == 3
    for i, (ours, theirs) in enumerate(zip(states, ref.hidden_states)):
        assert _max_diff(ours, theirs) < TOL, f"hidden state {i}"
    assert _max_diff(last, ref.last_hidden_state) < TOL
    assert _max_diff(pooled, ref.pooler_output) < TOL
    assert float(np.abs(np.asarray(states[-1])).max()) > 0.1  # non-trivial activations


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("gqa", dict(num_key_value_heads=2)),
        ("mha_theta", dict(num_key_value_heads=4, rope_theta=500.0)),
        (
            "llama3_rope",
            dict(
                rope_theta=10000.0,
                rope_scaling=dict(
                    rope_type="llama3",
                    factor=4.0,
                    low_freq_factor=1.0,
                    high_freq_factor=4.0,
                    original_max_position_embeddings=16,
                ),
            ),
        ),
        ("tied", dict(tie_word_embeddings=True)),
        ("biases", dict(attention_bias=True, mlp_bias=True)),
        # head_dim independent of hidden_size / heads (4 x 32 = 128 != 64), as in Gemma or
        # MaxText's synthetic 16B/32B.
        ("head_dim", dict(head_dim=32)),
        ("gelu", dict(hidden_act="gelu")),
    ],
)
def test_llama_logits(tmp_path, name, overrides):
    hf = hf_models.llama(**overrides)
    model = emollm_jax.load_hf(hf_models.save(hf, tmp_path / name))
    if name == "llama3_rope":
        assert model.config.text.rope_scaling is not None
    if name == "tied":
        assert model.lm_head is None
    ids = _ids(np.random.default_rng(1), 2, 40)
    with torch.no_grad():
        ref = hf(input_ids=torch.tensor(ids)).logits
    assert _max_diff(model(jnp.asarray(ids)), ref) < TOL
    assert float(ref.abs().max()) > 0.5


@pytest.mark.parametrize("act", ["relu", "relu2"])
def test_plain_mlp_logits_against_arcee(tmp_path, act):
    """A plain ``down(act(up(x)))`` MLP (MaxText's synthetic models use relu), tied embeddings."""
    hf = hf_models.arcee(hidden_act=act, tie_word_embeddings=True, head_dim=32)
    model = emollm_jax.load_hf(hf_models.save(hf, tmp_path / act))
    text = model.config.text
    assert not text.gated_mlp and text.hidden_act == act and text.resolved_head_dim == 32
    ids = _ids(np.random.default_rng(3), 2, 24)
    with torch.no_grad():
        ref = hf(input_ids=torch.tensor(ids)).logits
    assert _max_diff(model(jnp.asarray(ids)), ref) < TOL
    assert float(ref.abs().max()) > 0.5
    # ... and back: save_hf writes an Arcee checkpoint that transformers loads to the same logits.
    out = tmp_path / f"{act}_back"
    emollm_jax.save_hf(model, out)
    back = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    assert type(back).__name__ == "ArceeForCausalLM"
    with torch.no_grad():
        again = back(input_ids=torch.tensor(ids)).logits
    assert float((again - ref).abs().max()) < TOL


def test_qwen2_logits(tmp_path):
    hf = hf_models.qwen2()
    model = emollm_jax.load_hf(hf_models.save(hf, tmp_path / "qwen2"))
    assert model.config.text.qkv_bias and not model.config.text.o_bias
    ids = _ids(np.random.default_rng(2), 2, 24)
    with torch.no_grad():
        ref = hf(input_ids=torch.tensor(ids)).logits
    assert _max_diff(model(jnp.asarray(ids)), ref) < TOL


def _llava_inputs(rng, strategy, lengths, total):
    """Left-padded rows, each [pad..., bos, <image> x n, text...]; one image per row."""
    n = hf_models.image_tokens(strategy)
    ids = np.zeros((len(lengths), total), np.int64)
    mask = np.zeros_like(ids)
    for row, text_len in enumerate(lengths):
        seq = [1] + [hf_models.IMAGE_TOKEN] * n + list(rng.integers(3, 100, size=text_len))
        ids[row, total - len(seq) :] = seq
        mask[row, total - len(seq) :] = 1
    pixels = rng.standard_normal((len(lengths), 3, 32, 32)).astype(np.float32)
    return ids, mask, pixels


@pytest.mark.parametrize("layer", [-2, -1])
@pytest.mark.parametrize("strategy", ["default", "full"])
def test_llava_logits_with_image(tmp_path, layer, strategy):
    hf = hf_models.llava(vision_feature_layer=layer, vision_feature_select_strategy=strategy)
    model = emollm_jax.load_hf(hf_models.save(hf, tmp_path / "llava"))
    ids, mask, pixels = _llava_inputs(np.random.default_rng(3), strategy, [6], 6 + 1 + 17)
    with torch.no_grad():
        ref = hf(input_ids=torch.tensor(ids), pixel_values=torch.tensor(pixels)).logits
    assert _max_diff(model(jnp.asarray(ids), jnp.asarray(pixels)), ref) < TOL


def test_llava_left_padded_batch(tmp_path):
    hf = hf_models.llava(text="qwen2")
    model = emollm_jax.load_hf(hf_models.save(hf, tmp_path / "llava"))
    ids, mask, pixels = _llava_inputs(np.random.default_rng(4), "default", [3, 9, 6], 30)
    with torch.no_grad():
        ref = hf(
            input_ids=torch.tensor(ids),
            pixel_values=torch.tensor(pixels),
            attention_mask=torch.tensor(mask),
        ).logits
    ours = model(jnp.asarray(ids), jnp.asarray(pixels), jnp.asarray(mask))
    real = mask.astype(bool)  # padding positions are garbage on both sides
    diff = np.abs(np.asarray(ours) - ref.numpy())[real]
    assert diff.max() < TOL
    # The same rows through our per-row layout [batch, frames, C, H, W] agree too.
    ours5 = model(jnp.asarray(ids), jnp.asarray(pixels)[:, None], jnp.asarray(mask))
    assert np.abs(np.asarray(ours5) - ref.numpy())[real].max() < TOL
