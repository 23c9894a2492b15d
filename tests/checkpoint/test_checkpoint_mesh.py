"""A checkpoint written under FSDP on 8 devices restores under TP on 4 devices and on 1."""

import jax
import numpy as np
import pytest
from flax import nnx

from emollm_jax.checkpoint.restore import restore_model
from emollm_jax.train.loop import Trainer
from tests.train.helpers import train_config


@pytest.mark.slow  # about 40 s here: trains, then restores on two other meshes
def test_fsdp_checkpoint_restores_under_tp_and_on_one_device(tmp_path, small_emobench):
    cfg = train_config(
        small_emobench, **{"mesh.strategy": "fsdp", "mesh.shape": {"data": 1, "fsdp": 8}}
    )
    trainer = Trainer(cfg, tmp_path)
    trainer.train_step(next(trainer.iterator))
    trainer.save()
    trainer.checkpoints.wait()
    saved = jax.device_get(
        nnx.to_pure_dict(nnx.merge_state(trainer.state.trainable, trainer.state.frozen))
    )
    embed = trainer.state.trainable["language_model"]["embed_tokens"]["embedding"][...]
    assert embed.sharding.spec[1] == "fsdp"
    trainer.close()

    for devices, strategy, shape in (
        (jax.devices()[:4], "tp", {"data": 2, "fsdp": 1, "tensor": 2}),
        (jax.devices()[:1], "dp", {"data": 1, "fsdp": 1, "tensor": 1}),
    ):
        from emollm_jax.sharding.mesh import make_mesh
        from emollm_jax.sharding.strategies import get_rules

        mesh = make_mesh(shape, devices)
        model = restore_model(tmp_path, mesh=mesh, rules=get_rules(strategy))
        restored = nnx.to_pure_dict(nnx.state(model, nnx.Param))
        flat_saved = jax.tree_util.tree_leaves_with_path(saved)
        flat_restored = dict(jax.tree_util.tree_leaves_with_path(restored))
        assert len(flat_saved) == len(flat_restored)
        for path, value in flat_saved:
            got = flat_restored[path]
            assert got.sharding.mesh.devices.size == len(devices)
            np.testing.assert_array_equal(np.asarray(got), value)
        q = model.language_model.layers.attn.q.kernel[...]
        if strategy == "tp":
            assert q.sharding.spec[2] == "tensor"
