"""Every shell script in launch/ passes shellcheck (skipped, saying so, where it is missing)."""

import shutil
import subprocess

import pytest

from tests.configs import REPO


def test_launch_scripts_pass_shellcheck():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (Debian: apt-get install shellcheck)")
    scripts = sorted(str(p.relative_to(REPO)) for p in (REPO / "launch").glob("*.sh"))
    assert "launch/tpu_vm.sh" in scripts and "launch/slurm_job.sh" in scripts
    proc = subprocess.run(
        ["shellcheck", "-x", *scripts], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
