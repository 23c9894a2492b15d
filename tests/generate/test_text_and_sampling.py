"""Host-side pieces of generation: logit filters, stop tokens and strings, answer text."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emollm_jax.data.pipeline import load_tokenizer
from emollm_jax.generate import (
    SamplingConfig,
    decode_answers,
    filter_logits,
    left_pad,
    stop_sequences,
    stop_token_ids,
    truncate_at_stop,
)

LOGITS = jnp.log(jnp.asarray([[0.5, 0.2, 0.15, 0.1, 0.05]]))


def _kept(cfg):
    return np.flatnonzero(np.isfinite(np.asarray(filter_logits(LOGITS, cfg)[0]))).tolist()


def test_top_k_and_top_p_keep_the_right_tokens():
    assert _kept(SamplingConfig(temperature=1.0)) == [0, 1, 2, 3, 4]
    assert _kept(SamplingConfig(temperature=1.0, top_k=2)) == [0, 1]
    assert _kept(SamplingConfig(temperature=1.0, top_p=0.5)) == [0]  # 0.5 reaches 0.5
    assert _kept(SamplingConfig(temperature=1.0, top_p=0.6)) == [0, 1]
    assert _kept(SamplingConfig(temperature=1.0, top_p=0.86)) == [0, 1, 2, 3]
    assert _kept(SamplingConfig(temperature=1.0, top_k=3, top_p=0.99)) == [0, 1, 2]
    # temperature scales before the filters: at T=2 the probabilities are ~(.34, .21, .19, ...)
    # so top_p=0.6 keeps three tokens, found wherever they sit in the vocabulary
    perm = np.asarray([3, 0, 4, 1, 2])
    shuffled = filter_logits(LOGITS[:, perm], SamplingConfig(temperature=2.0, top_p=0.6))
    assert np.flatnonzero(np.isfinite(np.asarray(shuffled[0]))).tolist() == [1, 3, 4]
    np.testing.assert_allclose(shuffled[0, 1], LOGITS[0, 0] / 2.0, rtol=1e-6)


def test_sampling_follows_the_filtered_distribution():
    cfg = SamplingConfig(temperature=1.0, top_k=2)
    keys = jax.random.split(jax.random.key(0), 4000)
    draws = jax.vmap(lambda k: jax.random.categorical(k, filter_logits(LOGITS, cfg), axis=-1)[0])(
        keys
    )
    share = np.bincount(np.asarray(draws), minlength=5) / len(keys)
    np.testing.assert_allclose(share, [5 / 7, 2 / 7, 0, 0, 0], atol=0.03)


@pytest.mark.parametrize("bad", [dict(temperature=-1.0), dict(top_k=-1), dict(top_p=0.0)])
def test_bad_sampling_settings_are_refused(bad):
    with pytest.raises(ValueError):
        SamplingConfig(**bad)


def test_left_pad_buckets_prompt_lengths():
    batch = left_pad([[5, 6], [7, 8, 9]], pad_id=3, buckets=(4, 8))
    np.testing.assert_array_equal(batch["input_ids"], [[3, 3, 5, 6], [3, 7, 8, 9]])
    np.testing.assert_array_equal(batch["attention_mask"], [[0, 0, 1, 1], [0, 1, 1, 1]])
    np.testing.assert_array_equal(batch["positions"], [[0, 0, 0, 1], [0, 0, 1, 2]])
    with pytest.raises(ValueError, match="exceeds the largest bucket 4"):
        left_pad([[1] * 5], 3, (4,))


def test_truncate_at_the_earliest_stop_string():
    assert truncate_at_stop(" joy USER: hi ASSISTANT: x", ("ASSISTANT:", "USER:")) == "joy"
    assert truncate_at_stop("Answer: yes\n", ("USER:",)) == "Answer: yes"
    assert truncate_at_stop("USER:", ("USER:",)) == ""
    assert truncate_at_stop("no stop", ("", "###")) == "no stop"


def test_stop_sequences_spell_the_stop_strings_as_they_appear_after_text():
    tok = load_tokenizer("emollm_jax/assets/tokenizer")
    seqs = stop_sequences(tok, ("USER:", ""))
    assert seqs and all(seqs)
    assert all("USER:" in tok.decode(list(q)) for q in seqs)
    # A turn the model starts after its answer ends with one of them, whatever came before.
    for text in ("joy USER:", "joy\nUSER:", "Answer: yes USER:"):
        ids = tuple(tok.encode(text, add_special_tokens=False))
        assert any(ids[-len(q) :] == q for q in seqs), (text, ids, seqs)
    assert stop_sequences(tok, ()) == ()


def test_answers_end_at_the_stop_token_and_skip_special_tokens():
    tok = load_tokenizer("emollm_jax/assets/tokenizer")
    eos = stop_token_ids(tok, (2,), ("</s>", "<|im_end|>", "<not-a-token>"))
    assert eos == (2, 6)
    joy = tok("joy", add_special_tokens=False)["input_ids"]
    yes = tok(" Answer: yes USER: more", add_special_tokens=False)["input_ids"]
    n = 12
    rows = [joy + [6] + [99] * 2, yes, [4] + joy]  # stopped; ran out; special token inside
    tokens = np.full((3, n), 3, np.int32)
    for i, r in enumerate(rows):
        tokens[i, : min(len(r), n)] = r[:n]
    lengths = np.asarray([len(joy) + 1, n, len(joy) + 1])
    finished = np.asarray([True, False, False])
    texts = decode_answers(tok, tokens, lengths, finished, ("USER:",))
    assert texts[0] == "joy"
    assert texts[1] == tok.decode(yes[:n]).split("USER:")[0].strip()
    assert texts[2] == "joy"
