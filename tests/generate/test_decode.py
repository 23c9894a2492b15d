"""The decoding program: compiled once per batch shape, stops per row, samples reproducibly,
and gives the same tokens on an 8-device mesh as on one device."""

import dataclasses

import jax
import numpy as np
import pytest

from emollm_jax.config.model import ModelConfig, TextConfig, VisionConfig
from emollm_jax.generate import GenerateConfig, Generator, SamplingConfig, left_pad
from emollm_jax.models.build import build_model
from emollm_jax.sharding.mesh import make_mesh
from emollm_jax.sharding.strategies import get_rules

TEXT = TextConfig(
    vocab_size=128, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4, num_kv_heads=2
)
LLAMA = ModelConfig(arch="llama", vision=None, projector=None, text=TEXT)
LLAVA = ModelConfig(
    arch="llava",
    vision=VisionConfig(
        hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4, image_size=32, patch_size=8
    ),
    text=dataclasses.replace(TEXT, hidden_size=64, intermediate_size=128),
    image_token_id=127,
)
PAD = 0


@pytest.fixture(scope="module")
def llama():
    return build_model(LLAMA, 0)


def _prompts(rng, lengths):
    return [list(rng.integers(3, 120, n)) for n in lengths]


def test_one_compilation_for_all_tokens_and_prompts_of_a_bucket(llama):
    gen = Generator(llama, GenerateConfig(max_new_tokens=12, pad_id=PAD))
    rng = np.random.default_rng(0)
    outs = [gen(left_pad(_prompts(rng, lengths), PAD, (16,))) for lengths in [(3, 9), (16, 1)]]
    # on one CPU device the prefill and the loop are two programs (CPU_LOOP_OPTIONS)
    programs = [getattr(gen, name, None) for name in ("_prefill_fn", "_loop_fn")]
    programs = [p for p in programs if p is not None] or [gen._fn]
    assert gen.traces == 1 and all(p._cache_size() == 1 for p in programs)
    assert all(o.tokens.shape == (2, 12) for o in outs)
    gen(left_pad(_prompts(rng, (20, 4)), PAD, (16, 32)))  # a new bucket: one more program
    assert gen.traces == 2


def test_rows_stop_on_their_own_eos(llama):
    batch = left_pad(_prompts(np.random.default_rng(1), (4, 7, 10, 2)), PAD)
    free = Generator(llama, GenerateConfig(max_new_tokens=10, pad_id=PAD))(batch)
    eos = (int(free.tokens[0, 2]), int(free.tokens[1, 0]))
    out = Generator(llama, GenerateConfig(max_new_tokens=10, eos_ids=eos, pad_id=PAD))(batch)
    for row in range(4):
        hits = np.flatnonzero(np.isin(free.tokens[row], eos))
        n = hits[0] + 1 if hits.size else 10
        assert out.lengths[row] == n and out.finished[row] == bool(hits.size)
        np.testing.assert_array_equal(out.tokens[row, :n], free.tokens[row, :n])
        assert (out.tokens[row, n:] == PAD).all()


def _first_end(row, seqs):
    """1 + the index where ``row`` first ends with one of ``seqs``, or None."""
    for end in range(1, len(row) + 1):
        if any(end >= len(q) and tuple(row[end - len(q) : end]) == q for q in seqs):
            return end
    return None


def test_rows_stop_once_their_tokens_end_with_a_stop_sequence(llama):
    batch = left_pad(_prompts(np.random.default_rng(1), (4, 7, 10, 2)), PAD)
    free = Generator(llama, GenerateConfig(max_new_tokens=10, pad_id=PAD))(batch)
    # Row 0's tokens 3-4 (two long) and row 2's token 1 (one long): each row stops at the
    # first place its own tokens end with either; the stop tokens are kept, finished is False.
    seqs = ((int(free.tokens[0, 3]), int(free.tokens[0, 4])), (int(free.tokens[2, 1]),))
    config = GenerateConfig(max_new_tokens=10, pad_id=PAD, stop_sequences=seqs)
    out = Generator(llama, config)(batch)
    assert _first_end(free.tokens[0], seqs) <= 5 and _first_end(free.tokens[2], seqs) <= 2
    for row in range(4):
        n = _first_end(free.tokens[row], seqs) or 10
        assert out.lengths[row] == n and not out.finished[row]
        np.testing.assert_array_equal(out.tokens[row, :n], free.tokens[row, :n])
        assert (out.tokens[row, n:] == PAD).all()
    with pytest.raises(ValueError, match="stop_sequences"):
        GenerateConfig(stop_sequences=((),))


def test_sampling_is_reproducible_and_filters_apply(llama):
    batch = left_pad(_prompts(np.random.default_rng(2), (5, 8)), PAD)

    hot = SamplingConfig(temperature=5.0)
    gen = Generator(llama, GenerateConfig(max_new_tokens=16, pad_id=PAD, sampling=hot))
    first = gen(batch, jax.random.key(0)).tokens
    np.testing.assert_array_equal(gen(batch, jax.random.key(0)).tokens, first)
    assert (gen(batch, jax.random.key(1)).tokens != first).any()
    # the filters act inside the loop (their keep sets are tested in test_text_and_sampling)
    greedy = Generator(llama, GenerateConfig(max_new_tokens=16, pad_id=PAD))(batch).tokens
    top1 = GenerateConfig(max_new_tokens=16, pad_id=PAD, sampling=dataclasses.replace(hot, top_k=1))
    np.testing.assert_array_equal(Generator(llama, top1)(batch, jax.random.key(0)).tokens, greedy)
    with pytest.raises(ValueError, match="needs a PRNG key"):
        Generator(llama, GenerateConfig(sampling=hot))(batch)


def _llava_batch(rng, lengths, total=32):
    prompts = [[1] + [127] * 16 + list(rng.integers(3, 120, n)) for n in lengths]
    batch = left_pad(prompts, PAD, (total,))
    batch["pixel_values"] = rng.standard_normal((len(lengths), 1, 3, 32, 32)).astype(np.float32)
    batch["frame_media"] = np.zeros((len(lengths), 1), np.int32)
    return batch


@pytest.mark.slow  # over ~8 s here
@pytest.mark.parametrize("strategy", ["fsdp_tp"])
def test_mesh_gives_the_same_tokens_as_one_device(strategy):
    assert jax.device_count() == 8
    batch = _llava_batch(np.random.default_rng(3), (2, 9, 5, 12))
    config = GenerateConfig(max_new_tokens=20, pad_id=PAD)
    single = Generator(build_model(LLAVA, 0), config)(batch)

    mesh = make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
    rules = get_rules(strategy)
    gen = Generator(build_model(LLAVA, 0, mesh=mesh, rules=rules), config, mesh=mesh, rules=rules)
    sharded = gen(batch)  # numpy in: this process's rows out
    np.testing.assert_array_equal(sharded.tokens, single.tokens)
    np.testing.assert_array_equal(sharded.lengths, single.lengths)

    # global arrays in, global arrays out, split over the batch axes
    inputs = {k: jax.device_put(v, gen._batch) for k, v in batch.items()}
    glob = gen(inputs)
    assert glob.tokens.sharding.spec == gen._batch.spec
    assert glob.tokens.addressable_shards[0].data.shape == (1, 20)
    np.testing.assert_array_equal(np.asarray(glob.tokens), single.tokens)
    # the KV cache [layers, batch, kv_heads, 32 + 20 slots, head_dim] is split like the
    # activations: per device 1 of 4 rows (data x fsdp) and 1 of 2 kv heads (tensor)
    hlo = gen._fn.lower(gen.state, inputs, jax.random.key(0)).compile().as_text()
    assert "f32[2,1,1,52,16]" in hlo and "f32[2,4,2,52,16]" not in hlo
