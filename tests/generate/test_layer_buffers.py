"""The decoding loop on CPU reads each layer's weights and cache in place: no step copies them
out of the stacked arrays or transposes the cache, and the tokens are those of the stacked
loop."""

import re

import jax
import numpy as np

from emollm_jax.config.model import ModelConfig, TextConfig
from emollm_jax.generate import GenerateConfig, Generator, layer_buffers, left_pad
from emollm_jax.models.build import build_model

TEXT = TextConfig(
    vocab_size=128, hidden_size=32, intermediate_size=48, num_layers=3, num_heads=4, num_kv_heads=2
)
LLAMA = ModelConfig(arch="llama", vision=None, projector=None, text=TEXT)
# Shapes only one layer's piece of a stacked array has: the MLP's gate/up kernel [32, 48] and
# the KV cache of one layer [2 rows, 2 kv heads, 10 + 6 slots, 8].
PER_LAYER = ("f32[32,48]", "f32[2,2,16,8]")
STACKED_CACHE = "f32[3,2,2,16,8]"
PASS_THROUGH = {"parameter", "get-tuple-element", "bitcast", "tuple"}


def _loop_body_ops(hlo: str) -> list[tuple[str, str]]:
    """(shape, opcode) of every instruction of the while loop's body."""
    name = re.search(r"while\(.*body=(%[\w.\-]+)", hlo).group(1)
    start = hlo.index(f"\n{name} ")
    body = hlo[start : hlo.index("\n}\n", start)]
    found = re.findall(r"= (\w+\[[\d,]*\])\S* ([\w-]+)\(", body)
    return [(shape, op) for shape, op in found if op not in PASS_THROUGH]


def _run(monkeypatch, per_layer: bool, rows: int = 2):
    monkeypatch.setattr(layer_buffers, "wanted", lambda platform: per_layer)
    rng = np.random.default_rng(0)
    batch = left_pad([list(rng.integers(3, 120, n)) for n in (4, 10)[:rows]], 0, (10,))
    gen = Generator(build_model(LLAMA, 0), GenerateConfig(max_new_tokens=6, pad_id=0))
    return gen(batch), _loop_body_ops(_loop_hlo(gen, batch))


def _loop_hlo(gen, batch) -> str:
    """The optimized HLO of the program that runs the decoding loop: on one CPU device the loop
    is its own program (``_loop_fn``), elsewhere part of the one program."""
    key = jax.random.key(0)
    if not gen._split:
        return gen._fn.lower(gen.state, batch, key).compile().as_text()
    carry = jax.eval_shape(gen._prefill_fn, gen.state, batch, key)
    pieces = jax.eval_shape(layer_buffers.split_state, gen.state)
    return gen._loop_fn.lower(gen.state, pieces, carry, key).compile().as_text()


def test_the_loop_body_copies_no_weight_or_cache(monkeypatch):
    stacked_out, stacked_ops = _run(monkeypatch, per_layer=False)
    split_out, split_ops = _run(monkeypatch, per_layer=True)
    kernel, cache = PER_LAYER
    # The stacked loop copies every layer's kernels and caches out (the checks can fail) ...
    assert sum(s == kernel for s, _ in stacked_ops) >= 2 * TEXT.num_layers
    assert ("f32[1,2,2,16,8]", "copy") in stacked_ops
    assert any(s == STACKED_CACHE for s, _ in stacked_ops)
    # ... the split one reads the kernels in place and writes each cache in place (one
    # dynamic-update-slice fusion per layer for keys and one for values).
    assert not [op for s, op in split_ops if s in (kernel, STACKED_CACHE, "f32[1,2,2,16,8]")]
    assert [op for s, op in split_ops if s == cache] == ["fusion"] * 2 * TEXT.num_layers
    # Nor does it transpose a cache for the attention einsums ([2, 2 kv heads, 8, 16 slots]).
    assert not [op for s, op in split_ops if s == "f32[2,2,8,16]"]
    np.testing.assert_array_equal(split_out.tokens, stacked_out.tokens)
    np.testing.assert_array_equal(split_out.lengths, stacked_out.lengths)


def test_with_one_row_the_loop_body_copies_no_cache(monkeypatch):
    """At batch 1 XLA drops the unit batch axis from the attention dots; a cache carried with
    that axis was copied four times (keys) or transposed (values) per layer at every token. The
    split loop carries it as [kv heads, slots, head_dim], the shape the attention uses."""
    stacked_out, stacked_ops = _run(monkeypatch, per_layer=False, rows=1)
    split_out, split_ops = _run(monkeypatch, per_layer=True, rows=1)
    # one layer's cache (with or without the batch axis, transposed) or the stack of them
    cache_shapes = ("f32[1,1,2,16,8]", "f32[1,2,16,8]", "f32[2,16,8]", "f32[2,8,16]")
    cache_shapes += ("f32[3,1,2,16,8]",)
    assert ("f32[1,1,2,16,8]", "copy") in stacked_ops  # the check below can fail
    moved = [(s, op) for s, op in split_ops if s in cache_shapes and op != "dot"]
    # one in-place dynamic-update-slice fusion per layer for keys and one for values
    assert moved == [("f32[2,16,8]", "fusion")] * 2 * TEXT.num_layers
    np.testing.assert_array_equal(split_out.tokens, stacked_out.tokens)


def test_on_cpu_the_loop_is_compiled_without_ynnpack_and_decodes_the_same():
    """CPU_LOOP_OPTIONS: the loop's few-row dots stay out of YNNPACK (slower for them at the
    134M size, benchmarks/bench_vs_pytorch.py); the one-program path, which the prefill's dots
    share, does use it, so the check can fail; both programs' tokens are the same."""
    rng = np.random.default_rng(1)
    batch = left_pad([list(rng.integers(3, 120, n)) for n in (7, 10)], 0, (10,))
    gen = Generator(build_model(LLAMA, 0), GenerateConfig(max_new_tokens=6, pad_id=0))
    assert gen._split  # this test runs on the CPU
    one = gen._fn.lower(gen.state, batch, jax.random.key(0)).compile().as_text()
    assert "__ynn_fusion" in one
    assert "__ynn_fusion" not in _loop_hlo(gen, batch)
    single = jax.tree.map(np.asarray, gen._fn(gen.state, batch, jax.random.key(0)))
    split = gen(batch)
    pieces = gen._pieces  # the per-layer weights are cut at the first call and kept
    assert pieces is not None and gen(batch) is not None and gen._pieces is pieces
    np.testing.assert_array_equal(split.tokens, single.tokens)
    np.testing.assert_array_equal(split.lengths, single.lengths)
