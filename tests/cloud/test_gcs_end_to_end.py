"""A run whose every output lives in a ``gs://`` bucket (the loopback emulator): train the tiny
LLaVA a few steps, resume it to more steps, evaluate it, convert it to a Hugging Face folder
in the bucket, and read that back."""

import json

import pytest
from etils import epath

from tests.train.helpers import train_config

pytestmark = pytest.mark.slow


def _train(cfg, workdir):
    from emollm_jax.train.loop import Trainer

    trainer = Trainer(cfg, workdir)
    try:
        return trainer.train()
    finally:
        trainer.close()


def _rows(path):
    return [json.loads(line) for line in epath.Path(path).read_text().splitlines()]


def test_train_resume_evaluate_convert_in_a_bucket(gs_dir, small_emobench, tmp_path):
    from emollm_jax.convert import cli
    from emollm_jax.inference.run import evaluate_generation

    run = f"{gs_dir}/run"
    cfg = train_config(small_emobench, **{"train.steps": 2, "log.tensorboard": True})
    _train(cfg, run)
    root = epath.Path(run)
    assert (root / "checkpoints" / "2" / "commit_success.txt").exists()
    assert [r["step"] for r in _rows(f"{run}/metrics.jsonl")] == [1, 2]
    assert list((root / "tensorboard").glob("events.out.tfevents.*"))
    assert not (root / ".lock").exists()  # released
    assert not epath.Path("gs:").exists() and not epath.Path("gs:/").exists()

    cfg = train_config(small_emobench, **{"train.steps": 4, "log.tensorboard": True})
    _train(cfg, run)
    assert sorted(int(p.name) for p in (root / "checkpoints").iterdir()) == [2, 4]
    assert [r["step"] for r in _rows(f"{run}/metrics.jsonl")] == [1, 2, 3, 4]

    cfg.data.eval_batch_size = 4
    cfg.eval.limit = 4
    cfg.eval.max_new_tokens = 4
    result = evaluate_generation(cfg, run, "test")
    out = root / "eval" / "test"
    assert result.out_dir == out
    document = json.loads((out / "results.json").read_text())
    assert document["meta"]
    assert len(_rows(out / "predictions.jsonl")) == result.generated > 0
    assert list(out.glob("confusion_*.png"))
    assert not (out / ".lock").exists()

    export = f"{gs_dir}/export"
    assert cli.main(["orbax-to-hf", run, export, "--verify"]) == 0
    assert (epath.Path(export) / "config.json").exists()
    assert list(epath.Path(export).glob("*.safetensors"))
