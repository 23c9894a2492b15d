"""One training step under each sharding strategy on 8 devices equals the same step on one
device; FSDP spreads the parameters evenly."""

import jax
import numpy as np
import pytest

from emollm_jax.train.loop import Trainer
from tests.train.helpers import train_config

MESHES = {
    "dp": {"data": 8, "fsdp": 1, "tensor": 1},
    "fsdp": {"data": 1, "fsdp": 8, "tensor": 1},
    "tp": {"data": 4, "fsdp": 1, "tensor": 2},
    "fsdp_tp": {"data": 1, "fsdp": 4, "tensor": 2},
}


def _one_step(tmp_path, data_dir, strategy, shape, devices, **overrides):
    cfg = train_config(data_dir, **{"mesh.strategy": strategy, "mesh.shape": shape, **overrides})
    trainer = Trainer(cfg, tmp_path / strategy, devices=devices)
    batch = next(trainer.iterator)
    metrics = jax.device_get(trainer.train_step(batch))
    params = jax.device_get(trainer.state.trainable)
    trainer.close()
    return batch, metrics, params, trainer


@pytest.fixture(scope="module")
def reference(tmp_path_factory, small_emobench):
    batch, metrics, params, _ = _one_step(
        tmp_path_factory.mktemp("ref"),
        small_emobench,
        "dp",
        {"data": 1, "fsdp": 1, "tensor": 1},
        jax.devices()[:1],
    )
    return batch, metrics, params


# Splash attention (Pallas interpret mode, inside shard_map) and the chunked loss under FSDP+TP.
KERNELS = {
    "model.attention": "splash",
    "model.attention_interpret": True,
    "train.loss_chunk": 48,
}


@pytest.mark.parametrize(
    "strategy, overrides",
    [(s, {}) for s in MESHES] + [("fsdp_tp", KERNELS)],
    ids=[*MESHES, "fsdp_tp-splash-chunked_loss"],
)
@pytest.mark.slow  # over ~8 s here
def test_step_matches_one_device(tmp_path, small_emobench, reference, strategy, overrides):
    ref_batch, ref_metrics, ref_params = reference
    batch, metrics, params, trainer = _one_step(
        tmp_path, small_emobench, strategy, MESHES[strategy], None, **overrides
    )
    assert trainer.mesh.size == 8
    for key in ref_batch:
        np.testing.assert_array_equal(batch[key], ref_batch[key])  # same data order
    np.testing.assert_allclose(metrics["loss"], ref_metrics["loss"], rtol=1e-5)
    assert metrics["target_tokens"] == ref_metrics["target_tokens"]
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ref_params)):
        np.testing.assert_allclose(a, b, atol=2e-5)
    if strategy == "fsdp":
        total = sum(x.nbytes for x in jax.tree.leaves(ref_params))
        leaves = jax.tree.leaves(trainer.state.trainable) + jax.tree.leaves(trainer.state.frozen)
        total = sum(x.nbytes for x in leaves)
        per_device = [0] * 8
        for x in leaves:
            for shard in x.addressable_shards:
                per_device[shard.device.id] += shard.data.nbytes
        assert max(per_device) <= 1.1 * total / 8, (per_device, total / 8)
