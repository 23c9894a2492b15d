"""Running ``emollm`` in a subprocess, as a user would (``python -m emollm_jax.cli.main`` is the
console script's module)."""

import os
import subprocess
import sys

from tests.configs import REPO

EMOLLM = [sys.executable, "-m", "emollm_jax.cli.main"]


def emollm(*args, cwd=REPO, env=None, timeout=180) -> subprocess.CompletedProcess:
    """``emollm ARGS`` from ``cwd`` with this repository importable; output captured."""
    env = os.environ | {"PYTHONPATH": str(REPO)} | (env or {})
    return subprocess.run(
        [*EMOLLM, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
