"""Exact resume through real processes and real signals.

A run sent SIGTERM saves a checkpoint and exits; resuming yields, step for step, the very
losses of an uninterrupted run (bit for bit on CPU). A run killed with SIGKILL while a
checkpoint is being written resumes from the last complete one. Across both, the run's event
log tells the story (start, restore, preemption...), the goodput report accounts for all of
the wall time, and the restart loads its training step from the compilation cache.
"""

import json
import os
import signal

import pytest

from emollm_jax import goodput
from tests.train.helpers import shared_compile_cache, start_training, wait_for

pytestmark = pytest.mark.slow

STEPS = 8


@pytest.fixture(scope="module")
def compile_cache(tmp_path_factory) -> dict:
    """The interrupted and resumed runs' environment: each compiles the same training step, so
    the first compiles it and the rest load it. The uninterrupted reference compiles its own,
    so every loss is still checked against an independent compilation's."""
    return shared_compile_cache(tmp_path_factory.mktemp("jax_cache"))


def _start(workdir, data_dir, *extra, env=None):
    return start_training(workdir, data_dir, *extra, steps=STEPS, env=env)


def _finish(proc, timeout=600):
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def _events(workdir) -> list[list[dict]]:
    """The event log, one list per start of the run."""
    attempts = []
    for line in (workdir / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["event"] == "start":
            attempts.append([])
        attempts[-1].append(event)
    return attempts


def _accounts_for_all_wall_time(workdir) -> dict:
    report = goodput.summarize(goodput.read_events(workdir))
    assert sum(report["seconds"].values()) == pytest.approx(report["wall_s"])
    assert sum(report["share"].values()) == pytest.approx(1.0)
    assert 0 < report["goodput"] < 1
    return report


def _losses(workdir):
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return {row["step"]: row["loss"] for row in rows}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, small_emobench):
    workdir = tmp_path_factory.mktemp("uninterrupted")
    # The compilation cache's default folder, with every program stored (tiny ones included).
    env = {"JAX_COMPILATION_CACHE_DIR": "", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    code, out = _finish(
        _start(workdir, small_emobench, "--config.checkpoint.every_steps=100", env=env)
    )
    assert code == 0, out
    assert any((workdir / "compile_cache").iterdir())
    losses = _losses(workdir)
    assert sorted(losses) == list(range(1, STEPS + 1))
    return losses


def test_sigterm_saves_and_resume_is_bit_exact(
    tmp_path, small_emobench, uninterrupted, compile_cache
):
    workdir = tmp_path / "run"
    every = "--config.checkpoint.every_steps=100"
    proc = _start(workdir, small_emobench, every, env=compile_cache)
    metrics = workdir / "metrics.jsonl"
    assert wait_for(lambda: metrics.exists() and len(metrics.read_text().splitlines()) >= 3, proc)
    proc.send_signal(signal.SIGTERM)
    code, out = _finish(proc)
    assert code == 128 + signal.SIGTERM, out
    assert "stopped by SIGTERM" in out
    stopped_at = max(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
    assert 3 <= stopped_at < STEPS
    assert max(_losses(workdir)) == stopped_at

    code, out = _finish(_start(workdir, small_emobench, every, env=compile_cache))
    assert code == 0, out
    assert f"resumed from checkpoint {stopped_at}" in out
    assert _losses(workdir) == uninterrupted  # every step, bit for bit

    first, second = _events(workdir)
    kinds = [e["event"] for e in first], [e["event"] for e in second]
    assert kinds[0][:2] == ["start", "ready"] and kinds[0][-2:] == ["checkpoint", "preempted"]
    assert kinds[1][:3] == ["start", "restore", "ready"] and kinds[1][-2:] == ["checkpoint", "stop"]
    assert "compile" in kinds[0] and "steps" in kinds[0]
    restore = second[1]
    assert (restore["tier"], restore["step"]) == ("persistent", stopped_at)
    assert [e["step"] for e in second if e["event"] == "steps"][-1] == STEPS
    # The second start of the same config loads its compiled step from the cache.
    compiled = [e for e in second if e["event"] == "compile"]
    assert sum(e["cache_hits"] for e in compiled) >= 1
    assert sum(e["cache_misses"] for e in compiled) == 0
    report = _accounts_for_all_wall_time(workdir)
    assert (report["attempts"], report["preemptions"]) == (2, 1)
    assert report["seconds"]["lost_steps"] == 0  # SIGTERM saved the step it stopped at


def test_sigkill_during_save_resumes_from_last_complete_checkpoint(
    tmp_path, small_emobench, uninterrupted, compile_cache
):
    workdir = tmp_path / "run"
    ckpt_dir = workdir / "checkpoints"
    every = "--config.checkpoint.every_steps=1"
    proc = _start(workdir, small_emobench, every, env=compile_cache)

    def saving():
        if not ckpt_dir.exists():
            return False
        partial = [p for p in ckpt_dir.iterdir() if "tmp" in p.name]
        complete = [p for p in ckpt_dir.iterdir() if p.name.isdigit()]
        return bool(partial) and bool(complete)  # a second save is under way

    caught = wait_for(saving, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert caught, "the run ended before a save could be interrupted"
    partial = sorted(p.name for p in ckpt_dir.iterdir() if "tmp" in p.name)
    complete = sorted(int(p.name) for p in ckpt_dir.iterdir() if p.name.isdigit())
    assert partial and complete

    code, out = _finish(_start(workdir, small_emobench, every, env=compile_cache))
    assert code == 0, out
    assert f"resumed from checkpoint {max(complete)}" in out
    losses = _losses(workdir)
    assert all(losses[s] == uninterrupted[s] for s in losses)
    assert sorted(losses) == list(range(1, STEPS + 1))
    # The killed attempt wrote no end; the restart resumed from the last complete checkpoint.
    killed, resumed = _events(workdir)
    assert killed[-1]["event"] not in ("stop", "preempted", "crash")
    assert resumed[1]["event"] == "restore" and resumed[1]["step"] == max(complete)
    _accounts_for_all_wall_time(workdir)
