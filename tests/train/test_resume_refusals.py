"""Resuming refuses plainly when it cannot work: a checkpoint of another model config (the
stored train_config.json left as it is), or a corrupt latest checkpoint (named, with the intact
earlier step and the flag to resume from it). Resuming drops the metrics rows logged after the
restored step, so no step appears twice."""

import json

import jax
import pytest

from emollm_jax.train.loop import Trainer
from emollm_jax.train.resume import ResumeError
from tests.train.helpers import train_config

pytestmark = pytest.mark.slow

ONE = {"data": 1, "fsdp": 1, "tensor": 1}


def _config(data, **overrides):
    return train_config(
        data,
        **{"mesh.shape": ONE, "train.steps": 4, "checkpoint.keep": 5, **overrides},
    )


def _train(config, workdir):
    trainer = Trainer(config, workdir, devices=jax.devices()[:1])
    try:
        trainer.train()
    finally:
        trainer.close()


def _steps(workdir):
    return [json.loads(line)["step"] for line in (workdir / "metrics.jsonl").open()]


@pytest.fixture(scope="module")
def run(tmp_path_factory, small_emobench):
    """A finished 4-step run with checkpoints 2 and 4 (copied per test: tests damage it)."""
    workdir = tmp_path_factory.mktemp("run")
    _train(_config(small_emobench), workdir)
    assert _steps(workdir) == [1, 2, 3, 4]
    return workdir


@pytest.fixture
def workdir(run, tmp_path):
    import shutil

    return shutil.copytree(run, tmp_path / "run")


def test_other_model_config_is_refused_naming_fields(workdir, small_emobench):
    stored = (workdir / "train_config.json").read_bytes()
    config = _config(small_emobench, **{"model.text.num_layers": 3, "train.steps": 6})
    with pytest.raises(ResumeError) as refused:
        Trainer(config, workdir, devices=jax.devices()[:1])
    message = str(refused.value)
    assert "config.model.text.num_layers: 2 in the checkpoint, 3 now" in message
    assert "tree structures" not in message
    assert (workdir / "train_config.json").read_bytes() == stored
    assert not (workdir / ".lock").exists()  # released on the way out


def test_corrupt_latest_checkpoint_names_step_and_offers_the_intact_one(workdir, small_emobench):
    params = workdir / "checkpoints" / "4" / "params"
    for path in params.glob("ocdbt.process_*/d/*"):  # the arrays' bytes: TensorStore fails
        path.write_bytes(b"\0garbage" * 4)
    config = _config(small_emobench)
    with pytest.raises(ResumeError) as refused:
        Trainer(config, workdir, devices=jax.devices()[:1])
    message = str(refused.value)
    assert message.startswith(f"checkpoint 4 in {workdir / 'checkpoints'} cannot be read")
    assert f"(file {params}" in message
    assert "--config.train.resume_step=2" in message
    assert len(message.splitlines()) < 5

    # Resume from 2 as offered: 4 is kept aside, trained again, and logged once.
    _train(_config(small_emobench, **{"train.resume_step": 2}), workdir)
    assert (workdir / "abandoned_checkpoints" / "4").is_dir()
    assert (workdir / "checkpoints" / "4").is_dir()
    assert _steps(workdir) == [1, 2, 3, 4]
