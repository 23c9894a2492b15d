"""``python -m emollm_jax.ablate`` end to end with one training step per phase: 2 variants x 2
seeds, the files it writes, and a rerun that skips every finished run."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

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
    lever = ablate.job_command(args, extra, "emoprompt_no_rationale", 0)
    assert "--config=c.py:emoprompt" in lever
    assert lever[-2:] == ["--config.emoprompt.rationale_targets=False", "--config.x=1"]
    old_flag = ["--grounding_steps", "1"]  # now --config.recipe.grounding_steps=1
    for bad in (["--steps=3"], old_flag, ["--config", "c.py:full"], ["--seeds", ""]):
        argv = ["--config", "c.py", "--variants", "a", "--seeds", "0", "--out", "o", *bad]
        with pytest.raises(SystemExit):
            ablate.parse_args(argv)


def test_levers_and_training_shares_reach_the_runs():
    argv = ["--config", "c.py", "--variants", "baseline,emoprompt_mix_bare", "--seeds", "1"]
    args, extra = ablate.parse_args([*argv, "--out", "o", "--train-fractions", "0.25,1"])
    assert args.train_fractions == [0.25, 1.0]
    assert ablate.parse_args([*argv, "--out", "o"])[0].train_fractions == [1.0]
    levers = {
        "emoprompt_rationale_w0.3": "--config.emoprompt.rationale_loss_weight=0.3",
        "emoprompt_mix_bare": "--config.emoprompt.bare_label_fraction=0.5",
    }  # fmt: skip
    for name, setting in levers.items():
        command = ablate.job_command(args, extra, name, 1)
        assert "--config=c.py:emoprompt" in command and setting in command
    quarter = ablate.job_command(args, extra, "emoprompt_mix_bare", 1, 0.25)
    assert "--config.data.train_fraction=0.25" in quarter
    assert any(a.endswith("runs/emoprompt_mix_bare_train25/seed1") for a in quarter)
    whole = ablate.job_command(args, extra, "baseline", 1, 1.0)
    assert not any("train_fraction" in a for a in whole)
    assert any(a.endswith("runs/baseline/seed1") for a in whole)
    assert [ablate.run_name("full", f) for f in (0.25, 0.5, 1.0)] == [
        "full_train25", "full_train50", "full"
    ]  # fmt: skip
    for bad in ("0", "1.5", ""):
        with pytest.raises(SystemExit):
            ablate.parse_args([*argv, "--out", "o", "--train-fractions", bad])


def test_each_planned_run_gets_its_seed_and_share(tmp_path, monkeypatch):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "test.jsonl").write_text("")  # other data: used as they are
    commands = []

    def fail(command, **_):
        commands.append(command)
        return subprocess.CompletedProcess(command, 1)

    monkeypatch.setattr(ablate.subprocess, "run", fail)
    argv = ["--config", "c.py", "--variants", "full", "--seeds", "3", "--out", str(tmp_path / "o")]
    assert ablate.main([*argv, "--data", str(tmp_path / "d"), "--train-fractions", "0.5"]) == 1
    (command,) = commands  # the first run failed: the command stopped
    assert "--config.seed=3" in command and "--config.data.seed=3" in command
    assert "--config.data.train_fraction=0.5" in command
    assert (tmp_path / "o/runs/full_train50/seed3/job.log").exists()


def _fake_runs(monkeypatch, behave):
    """Replace each run's process by ``behave(workdir)`` (its return code), which may write the
    run's results."""

    def run(command, **_):
        workdir = Path(next(a.split("=", 1)[1] for a in command if a.startswith("--workdir=")))
        return subprocess.CompletedProcess(command, behave(workdir))

    monkeypatch.setattr(ablate.subprocess, "run", run)


def _finish(workdir, correct=2):
    from emollm_jax.eval.result_files import write_results
    from tests.eval.test_intervals import _metrics

    write_results(workdir / "eval/test", _metrics(correct, correct), plots=False)
    return 0


def test_jobs_train_runs_side_by_side_and_a_failure_starts_no_more(tmp_path, monkeypatch, capsys):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "test.jsonl").write_text("")
    argv = ["--config", "c.py", "--variants", "a,b", "--seeds", "0,1", "--out", str(tmp_path / "o"),
            "--data", str(tmp_path / "d"), "--jobs", "2"]  # fmt: skip
    both = threading.Barrier(2, timeout=30)  # breaks unless two runs are under way at once

    def side_by_side(workdir):
        both.wait()
        return _finish(workdir)

    _fake_runs(monkeypatch, side_by_side)
    assert ablate.main(argv) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("[ablate]")]
    assert len(lines) == 4 and all(" s, mean " in x for x in lines)
    assert json.loads((tmp_path / "o/results.json").read_text())["modes"]["generate"]["summary"]

    # A run fails: no other starts after it, and the command says which.
    started = []

    def fail_first(workdir):
        started.append(workdir)
        return 1 if workdir.name == "seed0" and workdir.parent.name == "a" else _finish(workdir)

    _fake_runs(monkeypatch, fail_first)
    again = [*argv[:-1], "1", "--out", str(tmp_path / "o2")]
    assert ablate.main(again) == 1
    assert len(started) == 1
    assert "[ablate] 1/4 a seed 0: FAILED (exit 1)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        ablate.parse_args([*argv[:-1], "0"])


def test_a_variant_runs_on_its_own_seeds(tmp_path, monkeypatch):
    argv = ["--config", "c.py", "--variants", "full,mp", "--seeds", "0,1", "--out", "o"]
    args, _ = ablate.parse_args([*argv, "--seeds-for", "full=2,3,4", "--train-fractions", "0.5,1"])
    names, plan = ablate.plan_runs(args)
    assert names == {"full_train50": ("full", 0.5), "mp_train50": ("mp", 0.5),
                     "full": ("full", 1.0), "mp": ("mp", 1.0)}  # fmt: skip
    assert plan == [("full_train50", 2), ("full_train50", 3), ("full_train50", 4),
                    ("mp_train50", 0), ("mp_train50", 1),
                    ("full", 2), ("full", 3), ("full", 4), ("mp", 0), ("mp", 1)]  # fmt: skip
    assert ablate.plan_runs(ablate.parse_args(argv)[0])[1] == [
        ("full", 0), ("full", 1), ("mp", 0), ("mp", 1)
    ]  # fmt: skip
    for bad in ("full", "full=", "=1", "full=a", "other=1"):
        with pytest.raises(SystemExit):
            ablate.parse_args([*argv, "--seeds-for", bad])


def test_a_variant_runs_on_its_own_shares_of_train():
    argv = ["--config", "c.py", "--variants", "base,full,mp", "--seeds", "0", "--out", "o"]
    curve = ["--fractions-for", "base=1,0.25", "--fractions-for", "full=1,0.5,0.25"]
    seeds = ["--seeds-for", "full=0,1,2", "--seeds-for", "full_train50=4"]
    args, _ = ablate.parse_args([*argv, *curve, *seeds])
    names, plan = ablate.plan_runs(args)
    assert list(names) == ["base", "full", "mp", "base_train25", "full_train25", "full_train50"]
    assert names["full_train50"] == ("full", 0.5)
    assert plan == [("base", 0), ("full", 0), ("full", 1), ("full", 2), ("mp", 0),
                    ("base_train25", 0), ("full_train25", 0), ("full_train25", 1),
                    ("full_train25", 2), ("full_train50", 4)]  # fmt: skip
    assert ablate.fractions_of(args, "mp") == [1.0] and ablate.fractions_of(args, "base")[1] == 0.25
    bad_entries = [
        ["--fractions-for", "other=0.5"],  # not a variant
        ["--fractions-for", "full=0"],  # not a share
        ["--fractions-for", "full"],
        ["--seeds-for", "mp_train25=1"],  # mp runs on all of train only
    ]
    for bad in bad_entries:
        with pytest.raises(SystemExit):
            ablate.parse_args([*argv, *curve, *bad])


@pytest.mark.slow  # four main jobs, each compiling two training steps and the evaluation
def test_two_variants_two_seeds_then_resume(tmp_path):
    data = make_mini_emobench.build(tmp_path / "data", sizes=SIZES, version=3)
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
    assert doc["meta"]["data"]["mini_version"] == 3
    # emoprompt's options are scored after its own rationale; a one-step model writes none, so
    # its records are counted as unscored (10 closed-answer records per run), never scored.
    assert doc["meta"]["forms"]["likelihood"] == {
        "baseline": "label", "emoprompt": "after_own_rationale"
    }  # fmt: skip
    unscored = doc["meta"]["unscored"]["likelihood"]
    assert unscored["baseline"] == {"0": 0, "1": 0}
    for mode in ("generate", "likelihood"):
        summary = doc["modes"][mode]["summary"]
        scored = {"baseline", "emoprompt"}
        if mode == "likelihood" and set(unscored["emoprompt"].values()) == {10}:
            scored = {"baseline"}
        assert set(summary) == scored
        assert all(iv["n"] == 2 and iv["low"] <= iv["mean"] <= iv["high"]
                   for row in summary.values() for iv in row.values())  # fmt: skip
        assert set(doc["modes"][mode]["differences"]) == scored - {"baseline"}
        assert (out / f"ablation_{mode}.png").stat().st_size > 0
    assert set(doc["modes"]["likelihood"]["summary"]["baseline"]) == {
        "emotion_closed", "intent", "hate", "humor", "sarcasm", "mean"
    }  # fmt: skip
    # seeds differ: the two baseline runs' models are initialised differently, so the options'
    # log-probabilities differ (their accuracies may well agree after one step)
    logprobs = [
        [json.loads(line)["logprobs"] for line in (
            out / f"runs/baseline/seed{seed}/eval/test/likelihood/predictions.jsonl"
        ).read_text().splitlines()]
        for seed in (0, 1)
    ]  # fmt: skip
    assert logprobs[0] != logprobs[1]
    # each evaluation says which weights it read (these runs keep no moving average)
    run = out / "runs/baseline/seed0/eval/test"
    for folder in (run, run / "likelihood"):
        assert json.loads((folder / "results.json").read_text())["meta"]["weights"] == "params"
    md = (out / "results.md").read_text()
    assert "Student's t over seeds" in md and "Difference from `baseline`" in md
    assert "`emoprompt`: `Answer: <label>` after the model's own greedy rationale" in md

    # A run interrupted before its evaluation finished: only that run runs again, resuming from
    # its checkpoints (no training step left), the finished ones are read, and the tables come
    # out the same.
    (out / "runs/emoprompt/seed1/eval/test/results.json").unlink()
    resumed = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert resumed.stdout.count("finished earlier") == 3
    assert "[ablate] 4/4 emoprompt seed 1: " in resumed.stdout
    assert json.loads((out / "results.json").read_text())["modes"] == doc["modes"]
    assert json.loads((out / "results.json").read_text())["meta"] == doc["meta"]

    # What git keeps of a runs folder (docs/ablation/runs/.gitignore) is a finished sweep: on
    # another machine the command trains nothing and writes the same report from it.
    kept = _kept_by_git(out / "runs", tmp_path / "clone")
    assert not list(kept.rglob("checkpoints")) and not list(kept.rglob("predictions.jsonl"))
    assert len(list(kept.rglob("predictions.jsonl.gz"))) == 8  # 4 runs x 2 modes
    again = subprocess.run(
        [*cmd[: cmd.index("--out")], "--out", str(tmp_path / "again"), "--runs", str(kept),
         *cmd[cmd.index("--data"):]],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert again.stdout.count("finished earlier") == 4 and not list(kept.rglob("job.log"))
    assert json.loads((tmp_path / "again/results.json").read_text()) == json.loads(
        (out / "results.json").read_text()
    )


def _kept_by_git(runs, clone):
    """A copy of the files of ``runs`` that git would commit under the kept folder's rules."""
    import shutil

    shutil.copy(REPO / "docs/ablation/runs/.gitignore", runs / ".gitignore")
    git = ["git", "-c", "core.excludesFile=/dev/null", "-C", str(runs)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    listed = subprocess.run([*git, "ls-files"], check=True, capture_output=True, text=True)
    for name in listed.stdout.splitlines():
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(runs / name, clone / name)
    return clone


def _args(tmp_path, version):
    argv = ["--config", "c.py", "--variants", "a", "--seeds", "0", "--out", str(tmp_path / "o")]
    return ablate.parse_args([*argv, "--data", str(tmp_path / "d"), f"--mini-version={version}"])[0]


def test_data_built_as_the_version_asked_and_another_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(make_mini_emobench, "SPLIT_SIZES", {"train": 6, "validation": 6, "test": 6})
    assert ablate.parse_args(["--config", "c", "--variants", "a", "--seeds", "0", "--out", "o"])[
        0
    ].mini_version == 3
    ablate.prepare_data(_args(tmp_path, 2), log=lambda _: None)
    assert make_mini_emobench.built_version(tmp_path / "d") == 2
    ablate.prepare_data(_args(tmp_path, 2), log=lambda _: None)  # already there: kept
    with pytest.raises(SystemExit, match="holds the mini EmoBench v2, not v1"):
        ablate.prepare_data(_args(tmp_path, 1))


def test_report_names_forms_and_skips_a_variant_with_nothing_scored(tmp_path):
    from emollm_jax.eval.ablation_files import write_ablation
    from emollm_jax.eval.metrics import compute_metrics

    def metrics(right: int):
        rows = [{"id": str(k), "task": "hate", "parsed": "yes", "gold": "yes" if k < right else "no",
                 "options": ["yes", "no"]} for k in range(4)]  # fmt: skip
        return compute_metrics(rows)

    runs = {
        "baseline": {0: {"likelihood": metrics(2)}, 1: {"likelihood": metrics(3)}},
        "emoprompt": {0: {"likelihood": compute_metrics([])}, 1: {"likelihood": compute_metrics([])}},
    }
    meta = {"seeds": [0, 1], "split": "test",
            "seeds_for": {"baseline": [0, 1], "emoprompt": [0, 1, 2]},
            "forms": {"likelihood": {"baseline": "label", "emoprompt": "after_own_rationale"}},
            "unscored": {"likelihood": {"baseline": {"0": 0, "1": 0},
                                        "emoprompt": {"0": 4, "1": 4}}}}  # fmt: skip
    write_ablation(tmp_path, runs, ["likelihood"], meta)
    doc = json.loads((tmp_path / "results.json").read_text())
    assert set(doc["modes"]["likelihood"]["summary"]) == {"baseline"}
    assert doc["modes"]["likelihood"]["summary"]["baseline"]["hate"]["mean"] == 0.625
    md = (tmp_path / "results.md").read_text()
    assert "Seeds: [0, 1]; `emoprompt`: [0, 1, 2]; split: test." in md
    assert "`emoprompt`: `Answer: <label>` after the model's own greedy rationale" in md
    assert "`emoprompt`: 4.0" in md and "`baseline`: the bare label after the prompt" in md
