"""Batched autoregressive decoding with a preallocated KV cache, as one compiled program.

``Generator(model, config)(batch, key)`` runs, inside ONE ``jax.jit`` (two on one CPU device,
the loop compiled with ``CPU_LOOP_OPTIONS``; the KV cache passes between them):

1. prefill: the whole left-padded prompt (image tokens merged by the model) is run once through
   the model into a KV cache of ``prompt_len + max_new_tokens`` slots; the last column's logits
   give the first new token (left padding puts every row's last prompt token there);
2. a ``jax.lax.while_loop`` feeding one token per row per step, until every row has produced an
   EOS id or ``max_new_tokens`` tokens are out.

Our choices:

- Static shapes: the cache size depends only on the batch's shape and ``max_new_tokens``, so a
  program is compiled once per (batch, prompt bucket, frame bucket) shape and reused for every
  token and every batch of that shape. Prompt lengths are bucketed by the caller (the data
  pipeline's ``seq_buckets``, or ``prompts.left_pad``).
- Positions: a prompt token's position is its index among the row's real tokens
  (``max(cumsum(mask) - 1, 0)``, what the pipeline's ``positions`` hold and what transformers
  computes from the attention mask); each new token takes the previous position + 1.
- Stopping: a row stops at its first token in ``eos_ids`` (that token is kept in ``tokens`` and
  counted in ``lengths``; ``finished`` says so), or once its new tokens end with one of
  ``stop_sequences`` (token ids of the stop strings, ``text.stop_sequences``; kept and counted,
  ``finished`` stays False: the caller cuts the decoded text at the string). Everything after
  is ``pad_id``. A stopped row keeps being fed padding until the loop ends (shapes are static),
  its results are masked; the loop ends when every row has stopped.
- Randomness: step ``i`` samples with ``fold_in(key, i)``; greedy ignores the key.
- Sharding: with ``mesh``, the program is jitted with explicit shardings: parameters as
  ``rules`` place them (moved there first if they live elsewhere), every batch array split on
  its leading axis by the ``batch`` rule, the outputs likewise. The KV cache is constrained like
  the attention activations (batch over the batch axes, kv heads over ``tensor``) at creation
  and after every step, and the models' own ``constrain`` calls are active inside.
- Numpy in, numpy out: given host (numpy) arrays, the batch is taken as this process's rows,
  stitched into global arrays, and this process's rows of the outputs come back as numpy, so
  multi-process evaluation needs no special casing; rows are padded (the last one repeated) up
  to a multiple of the process's batch shards and the padding is dropped from the outputs.
  Given ``jax.Array``s, global arrays return (their batch must divide over the batch axes).
- The prefill computes the logits of the last prompt position only (``last_only``): the LM head
  never produces ``[batch, prompt, vocab]`` logits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from emollm_jax.data.global_batch import batch_sharding, to_global
import emollm_jax.generate.layer_buffers as layer_buffers
from emollm_jax.generate.sampling import SamplingConfig, next_token
from emollm_jax.models.decoder import init_cache
from emollm_jax.sharding.context import constrain, use_mesh_rules
from emollm_jax.sharding.mesh import batch_axes
from emollm_jax.sharding.rules import logical_to_spec, state_shardings
from emollm_jax.sharding.strategies import Rules

# Batch keys the decoder reads; others (segment_ids, labels, metadata) are ignored.
BATCH_KEYS = ("input_ids", "attention_mask", "positions", "pixel_values", "frame_media")
_CACHE_AXES = {
    "k": ("layers", "batch", "kv_heads", "length", "head_dim"),
    "v": ("layers", "batch", "kv_heads", "length", "head_dim"),
    "mask": ("batch", "length"),
    "index": (),
}


# XLA:CPU hands dots to YNNPACK by default (``__ynn_fusion`` in the optimized HLO): faster for
# the prefill's many-row matmuls, slower for the decoding loop's few-row ones (134M LLaMA, 8 rows:
# 122.7 -> 68.0 ms a token without it on a 2-core AMD EPYC; benchmarks/bench_vs_pytorch.py). On
# one CPU device the loop is compiled apart from the prefill, with these options.
CPU_LOOP_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}


@dataclasses.dataclass(frozen=True)
class GenerateConfig:
    """What to generate; static under jit (changing it compiles a new program)."""

    max_new_tokens: int = 32
    eos_ids: tuple[int, ...] = ()
    pad_id: int = 0
    sampling: SamplingConfig = SamplingConfig()
    stop_sequences: tuple[tuple[int, ...], ...] = ()

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        object.__setattr__(self, "eos_ids", tuple(int(i) for i in self.eos_ids))
        seqs = tuple(tuple(int(i) for i in seq) for seq in self.stop_sequences)
        if any(not seq for seq in seqs):
            raise ValueError("stop_sequences: an empty sequence would stop every row at once")
        object.__setattr__(self, "stop_sequences", seqs)


class GenerateOutput(NamedTuple):
    tokens: jax.Array | np.ndarray  # int32 [B, max_new_tokens], pad_id after a row stops
    lengths: jax.Array | np.ndarray  # int32 [B] tokens generated, the EOS token included
    finished: jax.Array | np.ndarray  # bool [B] the row stopped on an EOS id


class _Carry(NamedTuple):
    """What the decode loop carries from one step to the next."""

    step: jax.Array  # int32 [] the index of the token this step makes (0 came from the prompt)
    cache: dict  # the KV cache (split per layer where ``layer_buffers`` asks for it)
    last: jax.Array  # int32 [B] the token this step feeds
    position: jax.Array  # int32 [B] its position
    done: jax.Array  # bool [B] the row stopped (EOS id or stop sequence)
    finished: jax.Array  # bool [B] the row stopped on an EOS id
    tail: jax.Array  # int32 [B, width] the row's last new tokens, for the stop sequences
    tokens: jax.Array  # int32 [B, max_new_tokens] the new tokens so far, pad_id after a stop
    lengths: jax.Array  # int32 [B] tokens made so far


def _sequence_matcher(sequences: tuple[tuple[int, ...], ...]):
    """``(L, matches)`` where ``matches(tail [B, L]) -> bool [B]`` says whether a row's last ``L``
    tokens end with one of the sequences (right-aligned in ``L`` columns; the columns left of a
    shorter one match anything). ``(1, None)`` when there are no sequences."""
    if not sequences:
        return 1, None
    width = max(map(len, sequences))
    ids = np.full((len(sequences), width), -1, np.int32)
    care = np.zeros((len(sequences), width), bool)
    for k, seq in enumerate(sequences):
        ids[k, width - len(seq) :] = seq
        care[k, width - len(seq) :] = True

    def matches(tail):
        hit = (tail[:, None, :] == ids[None]) | ~care[None]
        return jnp.any(jnp.all(hit, axis=-1), axis=-1)

    return width, matches


def cache_shardings(cfg, batch: int, length: int, mesh: Mesh, rules: Rules) -> dict:
    """The KV cache of ``batch`` rows of ``length`` slots as ``ShapeDtypeStruct``s carrying the
    shardings that decoding constrains it to."""
    shapes = jax.eval_shape(lambda: init_cache(cfg.text, batch, length, cfg.jnp_dtype))
    return {
        name: jax.ShapeDtypeStruct(
            x.shape,
            x.dtype,
            sharding=NamedSharding(mesh, logical_to_spec(_CACHE_AXES[name], x.shape, rules, mesh)),
        )
        for name, x in shapes.items()
    }


def prompt_positions(attention_mask: jax.Array) -> jax.Array:
    """Positions of left-padded prompts: 0, 1, ... over each row's real tokens, 0 on padding."""
    return jnp.maximum(jnp.cumsum(attention_mask.astype(jnp.int32), axis=1) - 1, 0)


class Generator:
    """A model bound to a ``GenerateConfig`` (and optionally a mesh); call it on batches.

    ``traces`` counts how often the decoding program was traced (= compiled): once per distinct
    batch shape.
    """

    def __init__(
        self,
        model: nnx.Module,
        config: GenerateConfig,
        *,
        mesh: Mesh | None = None,
        rules: Rules = (),
    ):
        self.config = config
        self.model_config = model.config
        self.mesh = mesh
        self.rules = rules
        self.graphdef, state = nnx.split(model)
        self.traces = 0
        # On one CPU device: two programs, the prefill as XLA compiles it by default and the
        # decoding loop with CPU_LOOP_OPTIONS (the cache is handed over); the loop reads the
        # layers' weights and carries the cache per layer (layer_buffers). The weights' pieces
        # are cut at the first call and kept: the Generator holds the layer stack's weights
        # twice, and no call pays for cutting them again.
        self._split = mesh is None and layer_buffers.wanted(jax.devices()[0].platform)
        if mesh is None:
            self.state = state
            self._fn = jax.jit(self._decode)
            if self._split:
                self._pieces = None
                self._prefill_fn = jax.jit(self._prefill_only)
                self._loop_fn = jax.jit(self._loop_only, compiler_options=CPU_LOOP_OPTIONS)
            return
        shardings = state_shardings(state, mesh, rules)
        if all(isinstance(x, jax.ShapeDtypeStruct) for x in jax.tree.leaves(state)):
            # An abstract model (``abstract_model``): the program can be lowered, not run.
            self.state = jax.tree.map(
                lambda x, sh: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sh), state, shardings
            )
        else:
            self.state = jax.device_put(state, shardings)  # a no-op where already placed so
        self.batch_sharding = self._batch = batch_sharding(mesh, rules)
        self.replicated = replicated = NamedSharding(mesh, PartitionSpec())
        self._fn = jax.jit(
            self._decode,
            in_shardings=(shardings, self._batch, replicated),
            out_shardings=GenerateOutput(self._batch, self._batch, self._batch),
        )

    def lower(self, inputs: Mapping[str, jax.ShapeDtypeStruct], key: jax.ShapeDtypeStruct):
        """The decoding program lowered for a global batch of ``inputs`` (ahead of time)."""
        return self._fn.lower(self.state, dict(inputs), key)

    def __call__(
        self, batch: Mapping[str, np.ndarray | jax.Array], key: jax.Array | None = None
    ) -> GenerateOutput:
        """Generate for a left-padded batch (``input_ids``, ``attention_mask``, and optionally
        ``positions``, ``pixel_values``, ``frame_media``)."""
        inputs = {k: batch[k] for k in BATCH_KEYS if batch.get(k) is not None}
        missing = {"input_ids", "attention_mask"} - set(inputs)
        if missing:
            raise ValueError(f"batch lacks {', '.join(sorted(missing))}")
        host = all(isinstance(v, np.ndarray) for v in inputs.values())
        if key is None:
            if not self.config.sampling.greedy:
                raise ValueError("sampling (temperature > 0) needs a PRNG key")
            key = jax.random.key(0)
        if self.mesh is None:
            out = self._single_device(inputs, key)
            return GenerateOutput(*(np.asarray(x) for x in out)) if host else out
        if not host:
            return self._fn(self.state, inputs, key)
        rows = len(inputs["input_ids"])
        inputs = {k: _pad_rows(v, self._local_shards()) for k, v in inputs.items()}
        out = self._fn(self.state, to_global(inputs, self.mesh, self.rules), key)
        local = multihost_utils.global_array_to_host_local_array(
            tuple(out), self.mesh, self._batch.spec
        )
        return GenerateOutput(*(np.asarray(x)[:rows] for x in local))

    def _single_device(self, inputs: dict, key: jax.Array) -> GenerateOutput:
        if not self._split:
            return self._fn(self.state, inputs, key)
        if self._pieces is None:  # cut once, kept for every later call (see __init__)
            self._pieces = jax.jit(layer_buffers.split_state)(self.state)
        carry = self._prefill_fn(self.state, inputs, key)
        return self._loop_fn(self.state, self._pieces, carry, key)

    def _local_shards(self) -> int:
        """How many pieces this process's rows are split into (batch shards per process)."""
        shards = math.prod(self.mesh.shape[a] for a in self._batch_axes())
        return max(1, shards // jax.process_count())

    def _batch_axes(self) -> tuple[str, ...]:
        return batch_axes(self.rules, self.mesh)

    def _constrain_cache(self, cache: dict) -> dict:
        return {name: constrain(x, _CACHE_AXES[name]) for name, x in cache.items()}

    def _decode(self, state, inputs: dict, key: jax.Array) -> GenerateOutput:
        """The whole decoding as one program: prefill, then the loop."""
        with self._rules():
            carry = self._prefill(state, inputs, key)
            return self._loop(state, carry, key)

    def _prefill_only(self, state, inputs: dict, key: jax.Array) -> _Carry:
        with self._rules():
            return self._prefill(state, inputs, key)

    def _loop_only(self, state, pieces, carry: _Carry, key: jax.Array) -> GenerateOutput:
        with self._rules():
            return self._loop(state, carry, key, pieces)

    def _rules(self):
        if self.mesh is None:
            return contextlib.nullcontext()
        return use_mesh_rules(self.mesh, self.rules)

    def _prefill(self, state, inputs: dict, key: jax.Array) -> _Carry:
        """Runs the prompt into a new KV cache and picks the first token: the loop's carry."""
        self.traces += 1  # runs only while tracing
        cfg = self.config
        model = nnx.merge(self.graphdef, state)
        n = cfg.max_new_tokens
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        b, s = ids.shape
        positions = inputs.get("positions")
        if positions is None:
            positions = prompt_positions(mask)

        cache = init_cache(self.model_config.text, b, s + n, self.model_config.jnp_dtype)
        media = {k: inputs[k] for k in ("pixel_values", "frame_media") if k in inputs}
        logits, cache = model(
            ids,
            attention_mask=mask,
            positions=positions,
            cache=self._constrain_cache(cache),
            last_only=True,  # the next token needs the last column's logits only
            **media,  # only when present: a bare LLM takes neither keyword
        )
        first = next_token(logits[:, -1], jax.random.fold_in(key, 0), cfg.sampling)
        tokens = jnp.full((b, n), cfg.pad_id, jnp.int32).at[:, 0].set(first)
        width, _ = _sequence_matcher(cfg.stop_sequences)
        tail = jnp.full((b, width), -1, jnp.int32)
        tail, finished, done = self._stopped(first, tail, jnp.zeros((b,), bool))
        if self._split:
            cache = layer_buffers.split_cache(cache)
        start = positions[:, -1] + 1
        lengths = jnp.ones((b,), jnp.int32)
        return _Carry(jnp.int32(1), cache, first, start, done, finished, tail, tokens, lengths)

    def _stopped(self, token, tail, finished):
        """(tail, finished, done) after ``token``: the row's last tokens, whether it made an
        EOS id, whether it stopped (EOS id or stop sequence)."""
        eos = jnp.asarray(self.config.eos_ids or (-1,), jnp.int32)
        _, matches = _sequence_matcher(self.config.stop_sequences)
        tail = jnp.concatenate([tail[:, 1:], token[:, None]], axis=1)
        finished = finished | jnp.isin(token, eos)
        return tail, finished, (finished | matches(tail)) if matches else finished

    def _loop(self, state, carry: _Carry, key: jax.Array, pieces=None) -> GenerateOutput:
        """Feeds one token per row per step until every row has stopped or made
        ``max_new_tokens`` (``pieces``: ``layer_buffers.split_state(state)``, if already cut)."""
        cfg = self.config
        n = cfg.max_new_tokens
        model = nnx.merge(self.graphdef, state)
        per_layer = self._split
        if per_layer and pieces is None:
            pieces = layer_buffers.split_state(state)
        step_mask = jnp.ones((carry.last.shape[0], 1), jnp.int32)

        def cond(c: _Carry):
            return (c.step < n) & ~jnp.all(c.done)

        def body(c: _Carry) -> _Carry:
            i, cache, done, finished, tail = c.step, c.cache, c.done, c.finished, c.tail
            step_model = model
            if per_layer:  # stacked again here, so that XLA reads each layer's piece in place
                step_model = nnx.merge(self.graphdef, layer_buffers.join_state(state, pieces))
                cache = layer_buffers.join_cache(cache)
            logits, cache = step_model(
                c.last[:, None],
                attention_mask=step_mask,
                positions=c.position[:, None],
                cache=cache,
            )
            token = next_token(logits[:, -1], jax.random.fold_in(key, i), cfg.sampling)
            token = jnp.where(done, cfg.pad_id, token)
            tokens = jax.lax.dynamic_update_slice_in_dim(c.tokens, token[:, None], i, 1)
            lengths = jnp.where(done, c.lengths, i + 1)
            new_tail, new_finished, new_done = self._stopped(token, tail, finished)
            tail = jnp.where(done[:, None], tail, new_tail)
            finished = jnp.where(done, finished, new_finished)
            done = done | new_done
            cache = self._constrain_cache(cache)
            if per_layer:
                cache = layer_buffers.split_cache(cache)
            return _Carry(
                i + 1, cache, token, c.position + 1, done, finished, tail, tokens, lengths
            )

        carry = jax.lax.while_loop(cond, body, carry)
        return GenerateOutput(carry.tokens, carry.lengths, carry.finished)


def _pad_rows(x: np.ndarray, multiple: int) -> np.ndarray:
    """``x`` with its last row repeated up to a multiple of ``multiple`` rows."""
    extra = -len(x) % multiple
    return np.concatenate([x, np.repeat(x[-1:], extra, axis=0)]) if extra else x


def generate(
    model: nnx.Module,
    batch: Mapping[str, np.ndarray | jax.Array],
    config: GenerateConfig,
    key: jax.Array | None = None,
    *,
    mesh: Mesh | None = None,
    rules: Rules = (),
) -> GenerateOutput:
    """One-off generation (compiles every call; keep a ``Generator`` to reuse the program)."""
    return Generator(model, config, mesh=mesh, rules=rules)(batch, key)
