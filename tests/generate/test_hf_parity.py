"""Greedy decoding against transformers' ``generate(do_sample=False)``: same tokens, token by token.

Batches of prompts of different lengths, left-padded (transformers derives positions from the
attention mask, as our decoder does), 24 new tokens, with and without EOS stops.
"""

import numpy as np
import pytest
import torch

import emollm_jax
from emollm_jax.generate import GenerateConfig, Generator, left_pad
from tests import hf_models

pytestmark = pytest.mark.torch

NEW_TOKENS = 24
PAD = 0  # hf_models' pad_token_id


def _hf_generate(hf, batch, eos_ids=None, **extra):
    with torch.no_grad():
        out = hf.generate(
            input_ids=torch.tensor(batch["input_ids"], dtype=torch.long),
            attention_mask=torch.tensor(batch["attention_mask"], dtype=torch.long),
            do_sample=False,
            max_new_tokens=NEW_TOKENS,
            eos_token_id=list(eos_ids) if eos_ids else None,
            pad_token_id=PAD,
            **extra,
        )
    new = out[:, batch["input_ids"].shape[1] :].numpy()
    # transformers stops when every row is done; ours always returns NEW_TOKENS columns
    return np.pad(new, ((0, 0), (0, NEW_TOKENS - new.shape[1])), constant_values=PAD)


def _eos_from(tokens):
    """EOS ids that stop the rows at different steps: what rows 0 and 1 emit at steps 3 and 9."""
    return (int(tokens[0, 3]), int(tokens[1, 9]))


def _check_stops(ours, eos_ids):
    for row, length, finished in zip(ours.tokens, ours.lengths, ours.finished):
        hits = np.flatnonzero(np.isin(row, eos_ids))
        assert finished == (hits.size > 0)
        if finished:
            assert length == hits[0] + 1 and (row[length:] == PAD).all()


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    hf = hf_models.llama()
    return hf, emollm_jax.load_hf(hf_models.save(hf, tmp_path_factory.mktemp("llama")))


def test_llama_greedy_matches_transformers(llama):
    hf, model = llama
    rng = np.random.default_rng(0)
    batch = left_pad([list(rng.integers(3, 100, n)) for n in (5, 13, 8)], PAD, buckets=(16,))
    assert batch["input_ids"].shape == (3, 16)
    gen = Generator(model, GenerateConfig(max_new_tokens=NEW_TOKENS, pad_id=PAD))
    ours = gen(batch)
    np.testing.assert_array_equal(ours.tokens, _hf_generate(hf, batch))
    assert (ours.lengths == NEW_TOKENS).all() and not ours.finished.any()
    # one row (left-padded): the KV cache is updated and read without its batch axis
    row = {k: v[1:2] for k, v in batch.items()}
    np.testing.assert_array_equal(gen(row).tokens, _hf_generate(hf, row))

    # per-row EOS: rows stop at different steps, padding follows, as in transformers
    eos = _eos_from(ours.tokens)
    stopped = Generator(model, GenerateConfig(NEW_TOKENS, eos_ids=eos, pad_id=PAD))(batch)
    np.testing.assert_array_equal(stopped.tokens, _hf_generate(hf, batch, eos))
    assert stopped.finished[:2].all() and stopped.lengths[0] <= 4 and stopped.lengths[1] <= 10
    _check_stops(stopped, eos)


def _llava_batch(rng, text_lengths, total):
    """Left-padded rows ``[pad..., bos, <image> x n, text...]``, one image per row."""
    n = hf_models.image_tokens()
    prompts = [
        [1] + [hf_models.IMAGE_TOKEN] * n + list(rng.integers(3, 100, size=k)) for k in text_lengths
    ]
    batch = left_pad(prompts, PAD, buckets=(total,))
    pixels = rng.standard_normal((len(prompts), 3, 32, 32)).astype(np.float32)
    return batch, pixels


def test_llava_greedy_with_images_matches_transformers(tmp_path):
    hf = hf_models.llava()
    model = emollm_jax.load_hf(hf_models.save(hf, tmp_path / "llava"))
    batch, pixels = _llava_batch(np.random.default_rng(1), (3, 10, 6), 32)
    gen = Generator(model, GenerateConfig(max_new_tokens=NEW_TOKENS, pad_id=PAD))
    ref = _hf_generate(hf, batch, pixel_values=torch.tensor(pixels))
    # our pipeline's layout [batch, frames, C, H, W] with frame_media
    ours = gen(batch | {"pixel_values": pixels[:, None], "frame_media": np.zeros((3, 1), np.int32)})
    np.testing.assert_array_equal(ours.tokens, ref)
    # Hugging Face's layout [images, C, H, W]
    np.testing.assert_array_equal(gen(batch | {"pixel_values": pixels}).tokens, ref)
    # the image matters: other pixels, other tokens
    other = gen(batch | {"pixel_values": -pixels})
    assert (other.tokens != ref).any()

    eos = _eos_from(ours.tokens)
    stopped = Generator(model, GenerateConfig(NEW_TOKENS, eos_ids=eos, pad_id=PAD))(
        batch | {"pixel_values": pixels}
    )
    ref_stopped = _hf_generate(hf, batch, eos, pixel_values=torch.tensor(pixels))
    np.testing.assert_array_equal(stopped.tokens, ref_stopped)
    _check_stops(stopped, eos)
