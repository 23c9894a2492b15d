"""Ctrl-C during training: the step in flight finishes, every finished step has its metrics row,
a complete checkpoint of the last one is saved, one line on stderr (no traceback) and exit
status 130. A real subprocess and SIGINT; and the signal handling itself, in this process."""

import json
import os
import signal
import subprocess

import pytest

from emollm_jax.checkpoint.manager import TMP_MARK, RunCheckpoints
from emollm_jax.train.loop import _StopSignals, _StopWaiting
from tests.cli.helpers import EMOLLM
from tests.configs import REPO
from tests.train.helpers import train_command, wait_for

STEPS = 200  # far more than the test waits for


@pytest.mark.slow
def test_ctrl_c_saves_flushes_and_exits_130(tmp_path, small_emobench):
    workdir = tmp_path / "run"
    args = train_command(workdir, small_emobench, "--config.checkpoint.every_steps=1000",
                         steps=STEPS)[3:]  # fmt: skip
    proc = subprocess.Popen(
        [*EMOLLM, "train", *args], cwd=REPO, env=os.environ | {"PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # A shell's background job ignores SIGINT; a terminal's foreground one does not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    metrics = workdir / "metrics.jsonl"

    def two_rows():
        return metrics.exists() and len(metrics.read_text().splitlines()) >= 2

    try:
        assert wait_for(two_rows, proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    assert err.rstrip().splitlines()[-1] == "interrupted (Ctrl-C)"
    root = workdir / "checkpoints"
    assert not [p.name for p in root.iterdir() if TMP_MARK in p.name]  # no save left half-done
    saved = max(int(p.name) for p in root.iterdir() if p.name.isdigit())
    assert 2 <= saved < STEPS
    # complete: it reads back, data iterator state included
    assert RunCheckpoints(root, read_only=True).read_meta(saved)["step"] == saved
    assert (root / str(saved) / "data" / "process_0-of-1.json").is_file()
    # a row for every finished step, each once, up to the saved one
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [row["step"] for row in rows] == list(range(1, saved + 1))
    events = [json.loads(line) for line in (workdir / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events][-2:] == ["checkpoint", "interrupted"]
    assert events[-2]["step"] == events[-1]["step"] == saved and events[-1]["saved"]


def test_first_ctrl_c_is_noted_and_a_second_one_interrupts():
    # A process with Python's own Ctrl-C handler, as a command started from a shell has (a test
    # worker may have inherited SIGINT ignored, which _StopSignals rightly leaves alone).
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with _StopSignals() as stop:
            assert not stop.raised
            signal.raise_signal(signal.SIGINT)  # the handler runs before this returns
            assert stop.signum == signal.SIGINT
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, inherited)


def test_a_stop_signal_interrupts_only_the_wait_for_data():
    before = signal.getsignal(signal.SIGTERM)
    with _StopSignals() as stop:
        with pytest.raises(_StopWaiting), stop.waiting():
            signal.raise_signal(signal.SIGTERM)
        assert stop.signum == signal.SIGTERM
        signal.raise_signal(signal.SIGTERM)  # outside the wait: noted, nothing raised
    assert signal.getsignal(signal.SIGTERM) is before


def test_an_ignored_sigint_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with _StopSignals() as stop:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            signal.raise_signal(signal.SIGINT)
            assert not stop.raised
    finally:
        signal.signal(signal.SIGINT, previous)
