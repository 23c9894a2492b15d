"""Running a launch script and reading what its --dry-run prints."""

import os
import shlex
import subprocess
import sys

from tests.configs import REPO

LAUNCH = REPO / "launch"


def launch(script: str, *args: str, env: dict | None = None, check: bool = True):
    """Run ``launch/<script>`` (bash, or python for .py); the CompletedProcess."""
    full_env = dict(os.environ, PYTHONPATH=str(REPO)) | (env or {})
    prog = [sys.executable] if script.endswith(".py") else ["bash"]
    proc = subprocess.run(
        [*prog, str(LAUNCH / script), *args], env=full_env, capture_output=True, text=True
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def commands(stdout: str) -> list[list[str]]:
    """The printed commands, one per line, split as a shell would."""
    return [shlex.split(line) for line in stdout.splitlines() if line.strip()]


def flag(cmd: list[str], name: str) -> str:
    """The value of ``--name=value`` in ``cmd``."""
    values = [a.split("=", 1)[1] for a in cmd if a.startswith(name + "=")]
    assert len(values) == 1, (name, cmd)
    return values[0]
