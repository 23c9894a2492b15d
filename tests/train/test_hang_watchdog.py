"""A step that never returns: the watchdog dumps every thread's stack, writes a ``hang`` event
and ends the process with its own exit status, within the configured limit."""

import json
import os
import subprocess
import sys

import pytest

from emollm_jax.train.watchdog import HANG_EXIT_CODE
from tests.configs import REPO


@pytest.mark.slow
def test_a_step_that_never_returns_ends_the_run_with_the_hang_status(tmp_path, small_emobench):
    workdir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.train.hang_worker", str(small_emobench), str(workdir), "2"],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=300)  # the hook sleeps for an hour
    finally:
        proc.kill()
    assert proc.returncode == HANG_EXIT_CODE, out[-3000:]
    assert "step 4 never returns" in out
    assert "no training step finished for" in out
    # faulthandler's dump: the main thread, stuck in the hook, and the watchdog's own thread
    assert "most recent call first" in out
    assert "in stuck_at_step_4" in out
    events = [json.loads(line) for line in (workdir / "events.jsonl").read_text().splitlines()]
    hang = events[-1]
    assert hang["event"] == "hang"
    assert hang["step"] == 2  # steps 1 and 2 finished; step 3's result was never read
    assert hang["limit_s"] == 2.0 and hang["idle_s"] > 2.0
    assert [e["event"] for e in events if e["event"] == "steps"] and events[0]["event"] == "start"
    assert not (workdir / ".lock").exists()  # released for the restart, wherever it runs
