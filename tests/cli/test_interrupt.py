"""Ctrl-C during training: a checkpoint of the step reached, its metrics row written, one line
on stderr (no traceback) and exit status 130. A real subprocess and SIGINT."""

import json
import os
import signal
import subprocess

import pytest

from tests.cli.helpers import EMOLLM
from tests.configs import REPO
from tests.train.helpers import train_command, wait_for

pytestmark = pytest.mark.slow

STEPS = 200  # far more than the test waits for


@pytest.mark.skip(
    reason="flaky since the step loop gained checkpoint tiers and its event log: of two runs on "
    "a loaded 2-core host, one found no checkpoint after Ctrl-C and one found the last metrics "
    "row one step behind the saved step (2 vs 3)"
)
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
    assert wait_for(lambda: metrics.exists() and len(metrics.read_text().splitlines()) >= 2, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    assert err.rstrip().splitlines()[-1] == "interrupted (Ctrl-C)"
    saved = max(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert 2 <= saved < STEPS
    assert rows[-1]["step"] == saved  # the row of the last step done is in the file
