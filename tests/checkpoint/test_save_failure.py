"""A checkpoint save that fails (the disk is full) is reported once, by step and reason, its
temporary folder removed; a failed background save stops the run without waiting for the
next save."""

import errno
import time

import jax
import jax.numpy as jnp
import pytest
from orbax.checkpoint._src.handlers import json_checkpoint_handler

from emollm_jax.checkpoint.manager import TMP_MARK, CheckpointSaveError, RunCheckpoints
from emollm_jax.train.loop import Trainer
from tests.train.helpers import train_config


@pytest.fixture
def disk_full(monkeypatch):
    """The JSON item's background write fails with ENOSPC, as a full disk makes it fail."""

    async def no_space(self, x, directory):
        raise OSError(errno.ENOSPC, "No space left on device", str(directory / "meta"))

    monkeypatch.setattr(json_checkpoint_handler.JsonCheckpointHandler, "_save_fn", no_space)


def _save(ckpts, step):
    ckpts.save(
        step,
        params={"w": jnp.ones(3)},
        opt_state={"count": jnp.zeros((), jnp.int32)},
        train={"step": jnp.asarray(step, jnp.int32)},
        meta={"step": step},
    )


def test_failed_background_save_is_seen_before_the_next_save(tmp_path, disk_full):
    ckpts = RunCheckpoints(tmp_path, async_save=True)
    _save(ckpts, 1)
    with pytest.raises(CheckpointSaveError) as failed:
        for _ in range(6000):  # polled as the step loop polls it; no second save
            ckpts.check_for_errors()
            time.sleep(0.01)
    message = str(failed.value)
    assert message.startswith(f"checkpoint 1 could not be written to {tmp_path}")
    assert "No space left on device [errno 28]" in message
    assert not [p for p in tmp_path.iterdir() if TMP_MARK in p.name]
    assert ckpts.all_steps() == []
    ckpts.close()  # the failure was reported already: closing does not raise it again


@pytest.mark.slow
def test_training_stops_at_a_failed_save(tmp_path, small_emobench, disk_full):
    config = train_config(small_emobench, **{"mesh.shape": {"data": 1, "fsdp": 1, "tensor": 1}})
    trainer = Trainer(config, tmp_path, devices=jax.devices()[:1])
    try:
        with pytest.raises(CheckpointSaveError, match="checkpoint 2 could not be written"):
            trainer.train()
    finally:
        trainer.close()
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if TMP_MARK in p.name]
    assert trainer.step < config.train.steps
    assert not (tmp_path / ".lock").exists()
