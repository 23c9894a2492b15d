"""Remat policies: every one computes what no remat computes; compiled for a TPU, each keeps
between what ``full`` and ``none`` keep, and the offload policies keep their tensors in host
memory."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from emollm_jax.config.model import from_config_dict
from emollm_jax.models import remat
from emollm_jax.models.build import build_model
from emollm_jax.train.loss import loss_sums
from tests.configs import load_config


def _lm(policy: str, *, scan: bool = True, **text):
    c = load_config("lm", "model=llama3.1-8b,runlocal=True")
    c.model.remat, c.model.scan_layers = policy, scan
    c.model.text.update(text)
    return c


@functools.cache
def _losses_and_grads() -> dict:
    """Every policy's (loss, gradients) of the same weights and tokens, in one compiled program
    (one compile for all of them)."""
    ids = jnp.asarray(np.random.default_rng(0).integers(5, 1000, size=(2, 32)))
    graphdefs = {p: nnx.graphdef(build_model(from_config_dict(_lm(p).model), seed=0))
                 for p in remat.REMAT_POLICIES}  # fmt: skip
    params = nnx.state(build_model(from_config_dict(_lm("none").model), seed=0))

    def loss(params, graphdef):
        total, count = loss_sums(nnx.merge(graphdef, params)(ids), ids)
        return total / count

    @jax.jit
    def every(params):
        return {p: jax.value_and_grad(loss)(params, g) for p, g in graphdefs.items()}

    return every(params)


@pytest.mark.slow  # over ~8 s here
@pytest.mark.parametrize("policy", [p for p in remat.REMAT_POLICIES if p != "none"])
def test_every_policy_gives_the_loss_and_gradients_of_no_remat(policy):
    results = _losses_and_grads()
    (loss0, grads0), (loss, grads) = results["none"], results[policy]
    assert abs(float(loss) - float(loss0)) < 1e-5
    diffs = jax.tree.leaves(jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), grads, grads0))
    assert max(diffs) < 1e-5
    assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads0)) > 1e-3


def test_offload_policies_keep_on_device_where_there_is_no_host_memory():
    assert remat.offloads("offload_layer_input_qkvo")
    assert remat.saved_names("offload_layer_input_qkvo") == (
        remat.LAYER_INPUT, *remat.QKV, remat.ATTENTION_PROJ
    )
    # On XLA:CPU the same names are saved on the device (not a host copy of host memory).
    assert remat.policy_for("offload_qkvo", "cpu") is not remat.REMAT_POLICIES["offload_qkvo"]
    assert remat.policy_for("offload_qkvo", "tpu") is remat.REMAT_POLICIES["offload_qkvo"]
    assert remat.policy_for("full", "cpu") is remat.REMAT_POLICIES["full"]


# --- compiled for a TPU (compile-only devices from libtpu) ------------------------------------

# Wide enough that activations, not weights, dominate temp memory: 2 layers of hidden 256 at
# 8 rows x 512 tokens per chip.
_WIDE = dict(hidden_size=256, intermediate_size=1024, num_heads=4, num_kv_heads=2, num_layers=2)


@functools.cache
def _v5e8_row(policy: str) -> dict:
    pytest.importorskip("libtpu", reason="TPU topologies need libtpu (requirements-tpu.txt)")
    from emollm_jax.aot import analysis, topology

    c = _lm(policy, **_WIDE)
    # XLA attention: the policies are what is compared (splash's own residuals aside).
    c.model.dtype, c.model.attention = "bfloat16", "xla"
    devices = topology.devices(topology.parse("v5e-8"))
    row = analysis.train_row(c, devices, batch_per_chip=8, seq_len=512, frames=0)
    assert row["error"] is None, row["error"]
    return row


def _temp(policy: str) -> int:
    return _v5e8_row(policy)["bytes_per_chip"]["temp"]


@pytest.mark.libtpu
@pytest.mark.slow  # a TPU compile, about a minute here
def test_compiled_temp_memory_of_a_policy_that_keeps_on_device_falls_between_full_and_none():
    assert _temp("full") < _temp("save_qkv") < _temp("none")


@pytest.mark.libtpu
@pytest.mark.slow  # a TPU compile, about a minute here
def test_host_offload_puts_the_named_tensors_in_host_memory():
    row = _v5e8_row("offload_layer_input_qkvo")
    # S(5): XLA TPU's host memory space; the saved stacks [layers, rows, len, ...] live there.
    assert "S(5)" in row["hlo"] and "S(5)" not in _v5e8_row("save_qkv")["hlo"]
    # Per step: every layer's input, q, k, v and attention projection go out and come back:
    # 2 x layers x rows x len x (hidden + q + k + v + hidden) bfloat16 values per chip.
    t = _lm("full", **_WIDE).model.text
    head = t["hidden_size"] // t["num_heads"]
    width = 2 * t["hidden_size"] + (t["num_heads"] + 2 * t["num_kv_heads"]) * head
    assert row["host_transfer_bytes"] == 2 * t["num_layers"] * 8 * 512 * width * 2
