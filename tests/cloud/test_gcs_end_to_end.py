"""A run whose every output lives in a ``gs://`` bucket (the loopback emulator): train the tiny
LLaVA a few steps, resume it to more steps, evaluate it, convert it to a Hugging Face folder
in the bucket, and read that back."""

import pytest
from etils import epath

from tests.cloud.runs import evaluate_in_place, rows
from tests.train.helpers import train_config

pytestmark = pytest.mark.slow


def test_train_resume_evaluate_convert_in_a_bucket(gs_dir, small_emobench, tmp_path):
    from emollm_jax.convert import cli
    from emollm_jax.train import loop as train_loop

    run = f"{gs_dir}/run"
    cfg = train_config(small_emobench, **{"train.steps": 2, "log.tensorboard": True})
    train_loop.run(cfg, run)
    root = epath.Path(run)
    assert (root / "checkpoints" / "2" / "commit_success.txt").exists()
    assert [r["step"] for r in rows(f"{run}/metrics.jsonl")] == [1, 2]
    assert list((root / "tensorboard").glob("events.out.tfevents.*"))
    assert not (root / ".lock").exists()  # released
    assert not epath.Path("gs:").exists() and not epath.Path("gs:/").exists()

    cfg = train_config(small_emobench, **{"train.steps": 4, "log.tensorboard": True})
    train_loop.run(cfg, run)
    assert sorted(int(p.name) for p in (root / "checkpoints").iterdir()) == [2, 4]
    assert [r["step"] for r in rows(f"{run}/metrics.jsonl")] == [1, 2, 3, 4]

    evaluate_in_place(cfg, run)

    export = f"{gs_dir}/export"
    assert cli.main(["orbax-to-hf", run, export, "--verify"]) == 0
    assert (epath.Path(export) / "config.json").exists()
    assert list(epath.Path(export).glob("*.safetensors"))
