"""Exact resume through real processes and real signals.

A run sent SIGTERM saves a checkpoint and exits; resuming yields, step for step, the very
losses of an uninterrupted run (bit for bit on CPU). A run killed with SIGKILL while a
checkpoint is being written resumes from the last complete one.
"""

import json
import os
import signal

import pytest

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


def _losses(workdir):
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return {row["step"]: row["loss"] for row in rows}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, small_emobench):
    workdir = tmp_path_factory.mktemp("uninterrupted")
    code, out = _finish(_start(workdir, small_emobench, "--config.checkpoint.every_steps=100"))
    assert code == 0, out
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
