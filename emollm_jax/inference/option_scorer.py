"""Summed log-probability of each row's target tokens, in one jitted forward per batch.

``OptionScorer(model)(batch)`` takes a right-padded training-format batch (``input_ids``,
``labels`` with -100 off the target, the media keys) and returns per row the sum of
``log p(labels[t] | tokens < t)`` over its target tokens and their number: the likelihood of a
prompt's continuation, as option-likelihood scoring (``emollm_jax.eval.likelihood``) needs.
The forward is the training step's (``emollm_jax.models.forward``); log-softmax in float32.
With a mesh, parameters go to the rule table's shardings and rows are split over the batch
axes (the caller gives a row count they divide: ``rows_multiple``). One JAX process only.
"""

from __future__ import annotations

import contextlib
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh

from emollm_jax.data.example_encoder import IGNORE
from emollm_jax.data.global_batch import batch_sharding, to_global
from emollm_jax.models.forward import MODEL_INPUTS, forward
from emollm_jax.sharding.context import use_mesh_rules
from emollm_jax.sharding.mesh import batch_axes
from emollm_jax.sharding.rules import state_shardings
from emollm_jax.sharding.strategies import Rules

SCORED_KEYS = ("input_ids", "labels", *MODEL_INPUTS)


def target_logprobs(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``logits [B, T, V]``, ``labels [B, T]`` (unshifted, -100 = not scored) -> (summed
    log-probability of each row's target tokens [B], their number [B])."""
    targets = labels[:, 1:]
    mask = targets != IGNORE
    nll = optax.softmax_cross_entropy_with_integer_labels(
        logits[:, :-1].astype(jnp.float32), jnp.where(mask, targets, 0)
    )
    return -jnp.sum(nll * mask, axis=1), jnp.sum(mask, axis=1).astype(jnp.int32)


class OptionScorer:
    """A model bound to a jitted ``batch -> (logprob sums [B], token counts [B])``."""

    def __init__(self, model: nnx.Module, *, mesh: Mesh | None = None, rules: Rules = ()):
        if jax.process_count() > 1:
            raise ValueError("option-likelihood scoring runs in one JAX process only")
        self.mesh = mesh
        self.rules = rules
        self.graphdef, state = nnx.split(model)
        if mesh is None:
            self.state = state
            self._fn = jax.jit(self._score)
            self.rows_multiple = 1
            return
        shardings = state_shardings(state, mesh, rules)
        self.state = jax.device_put(state, shardings)
        rows = batch_sharding(mesh, rules)
        self._fn = jax.jit(self._score, in_shardings=(shardings, rows), out_shardings=(rows, rows))
        self.rows_multiple = math.prod(mesh.shape[a] for a in batch_axes(rules, mesh))

    def _score(self, state, batch: dict) -> tuple[jax.Array, jax.Array]:
        ctx = (
            contextlib.nullcontext() if self.mesh is None else use_mesh_rules(self.mesh, self.rules)
        )
        with ctx:
            logits = forward(nnx.merge(self.graphdef, state), batch)
            return target_logprobs(logits, batch["labels"])

    def __call__(self, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        inputs = {k: batch[k] for k in SCORED_KEYS if k in batch}
        rows = len(inputs["input_ids"])
        if rows % self.rows_multiple:
            raise ValueError(f"{rows} rows do not divide over {self.rows_multiple} batch shards")
        if self.mesh is not None:
            inputs = to_global(inputs, self.mesh, self.rules)
        logprobs, tokens = self._fn(self.state, inputs)
        return np.asarray(logprobs), np.asarray(tokens)
