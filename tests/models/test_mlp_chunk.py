"""The MLP over slices of the sequence: the same loss and gradients as over the whole, and,
compiled for a TPU, less temp memory."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from emollm_jax.config.model import from_config_dict
from emollm_jax.errors import ConfigError
from emollm_jax.models.build import build_model
from emollm_jax.train.loss import loss_sums
from tests.configs import load_config


def _lm(chunk: int, remat: str = "full", **text):
    c = load_config("lm", "model=llama3.1-8b,runlocal=True")
    c.model.remat, c.model.scan_layers, c.model.mlp_chunk = remat, True, chunk
    c.model.text.update(text)
    return c


# 12 does not divide 32 tokens: the MLP runs whole.
@pytest.mark.parametrize(
    "remat, chunk", [("none", 8), ("offload_layer_input_qkvo", 8), ("full", 8), ("full", 12)]
)
@pytest.mark.slow  # over ~8 s here
def test_chunked_mlp_gives_the_loss_and_gradients_of_the_whole(remat, chunk):
    ids = jnp.asarray(np.random.default_rng(0).integers(5, 1000, size=(2, 32)))
    params = nnx.state(build_model(from_config_dict(_lm(0, remat).model), seed=0))
    graphdefs = [nnx.graphdef(build_model(from_config_dict(_lm(c, remat).model), seed=0))
                 for c in (0, chunk)]  # fmt: skip

    def loss(params, graphdef):
        total, count = loss_sums(nnx.merge(graphdef, params)(ids), ids)
        return total / count

    (loss0, grads0), (loss1, grads1) = (
        jax.jit(jax.value_and_grad(loss), static_argnums=1)(params, g) for g in graphdefs
    )
    assert abs(float(loss1) - float(loss0)) < 1e-5
    diffs = jax.tree.leaves(jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), grads1, grads0))
    assert max(diffs) < 1e-5
    assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads0)) > 1e-3


def test_a_negative_chunk_is_refused_by_name():
    with pytest.raises(ConfigError, match="model.mlp_chunk"):
        from_config_dict(_lm(-1).model)


@functools.cache
def _v5e8_temp(chunk: int) -> int:
    pytest.importorskip("libtpu", reason="TPU topologies need libtpu (requirements-tpu.txt)")
    from emollm_jax.aot import analysis, topology

    # A wide MLP (intermediate 8 x hidden) so that its intermediates dominate temp memory.
    c = _lm(chunk, hidden_size=256, intermediate_size=2048, num_heads=4, num_kv_heads=2,
            num_layers=2)  # fmt: skip
    c.model.dtype, c.model.attention = "bfloat16", "xla"
    devices = topology.devices(topology.parse("v5e-8"))
    row = analysis.train_row(c, devices, batch_per_chip=8, seq_len=1024, frames=0)
    assert row["error"] is None, row["error"]
    return row["bytes_per_chip"]["temp"]


@pytest.mark.libtpu
@pytest.mark.slow  # a TPU compile, about a minute here
def test_compiled_for_a_tpu_the_chunked_mlp_needs_less_temp_memory():
    # One [8, 1024, 2048] bfloat16 intermediate is 32 MiB; in slices of 256 tokens, 8 MiB.
    assert _v5e8_temp(256) < _v5e8_temp(0) - 32 * 2**20
