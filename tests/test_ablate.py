"""``python -m emollm_jax.ablate`` end to end with one training step per phase: 2 variants x 2
seeds, the files it writes, and a rerun that skips every finished run."""

import json
import os
import subprocess
import sys

import pytest

from emollm_jax import ablate
from emollm_jax.data.mini import make_mini_emobench
from tests.configs import REPO
from tests.train.helpers import shared_compile_cache

SIZES = {"train": 24, "validation": 6, "test": 12}


def test_arguments_are_checked():
    args, extra = ablate.parse_args(
        ["--config", "c.py", "--variants", "a,b", "--seeds", "0,2", "--out", "o", "--config.x=1"]
    )
    assert (args.variants, args.seeds, extra) == (["a", "b"], [0, 2], ["--config.x=1"])
    command = ablate.job_command(args, extra, "b", 2)
    assert "--config=c.py:b" in command and "--config.data.seed=2" in command
    assert command[-1] == "--config.x=1"
    old_flag = ["--grounding_steps", "1"]  # now --config.recipe.grounding_steps=1
    for bad in (["--steps=3"], old_flag, ["--config", "c.py:full"], ["--seeds", ""]):
        argv = ["--config", "c.py", "--variants", "a", "--seeds", "0", "--out", "o", *bad]
        with pytest.raises(SystemExit):
            ablate.parse_args(argv)


@pytest.mark.slow  # four main jobs, each compiling two training steps and the evaluation
def test_two_variants_two_seeds_then_resume(tmp_path):
    data = make_mini_emobench.build(tmp_path / "data", sizes=SIZES)
    out = tmp_path / "out"
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        XLA_FLAGS="--xla_force_host_platform_device_count=1 --xla_backend_optimization_level=0",
        # The runs share their evaluation programs (and any training step of the same shapes).
        **shared_compile_cache(tmp_path / "jax_cache"),
    )
    cmd = [
        sys.executable, "-m", "emollm_jax.ablate", "--config", "configs/emollm_tiny.py",
        "--variants", "baseline,emoprompt", "--seeds", "0,1", "--out", str(out),
        "--data", str(data), "--config.recipe.grounding_steps=1", "--config.train.steps=1",
        "--config.eval.max_new_tokens=4", "--config.data.eval_batch_size=4",
        "--config.log.tensorboard=False", "--config.eval.plots=False",
    ]  # fmt: skip
    first = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    progress = [line for line in first.stdout.splitlines() if line.startswith("[ablate]")]
    assert [line.split(":")[0] for line in progress] == [
        "[ablate] 1/4 baseline seed 0",
        "[ablate] 2/4 baseline seed 1",
        "[ablate] 3/4 emoprompt seed 0",
        "[ablate] 4/4 emoprompt seed 1",
    ]
    doc = json.loads((out / "results.json").read_text())
    for mode in ("generate", "likelihood"):
        summary = doc["modes"][mode]["summary"]
        assert set(summary) == {"baseline", "emoprompt"}
        assert all(iv["n"] == 2 and iv["low"] <= iv["mean"] <= iv["high"]
                   for row in summary.values() for iv in row.values())  # fmt: skip
        assert set(doc["modes"][mode]["differences"]) == {"emoprompt"}
        assert (out / f"ablation_{mode}.png").stat().st_size > 0
    assert set(doc["modes"]["likelihood"]["summary"]["baseline"]) == {
        "emotion_closed", "intent", "hate", "humor", "sarcasm", "mean"
    }  # fmt: skip
    # seeds differ: the two baseline runs' models are initialised differently
    runs = doc["runs"]["baseline"]
    assert runs["0"]["likelihood"] != runs["1"]["likelihood"] or runs["0"] != runs["1"]
    md = (out / "results.md").read_text()
    assert "Student's t over seeds" in md and "Difference from `baseline`" in md

    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("finished earlier") == 4
    assert json.loads((out / "results.json").read_text()) == doc
