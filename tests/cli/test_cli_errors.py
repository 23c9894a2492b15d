"""A bad config field prints its message alone (exit 2); ``--verbosity=1`` or
``EMOLLM_TRACEBACK=1`` shows the traceback."""

import os
import subprocess

import pytest

from tests.configs import REPO
from tests.train.helpers import train_command

MESSAGE = "error: config.train.steps: must be positive, got 0"


@pytest.mark.parametrize(
    "extra, env, traceback",
    [((), {}, False), (("--verbosity=1",), {}, True), ((), {"EMOLLM_TRACEBACK": "1"}, True)],
)
@pytest.mark.slow  # over ~8 s here
def test_config_error_message_alone_unless_verbose(tmp_path, extra, env, traceback):
    cmd = train_command(tmp_path / "run", tmp_path, "--config.train.steps=0", *extra)
    done = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=120, env=os.environ | env
    )
    if traceback:
        assert done.returncode != 0 and "Traceback" in done.stderr
        assert "emollm_jax.errors.ConfigError: config.train.steps" in done.stderr
    else:
        assert done.returncode == 2, done.stderr[-2000:]
        assert done.stderr.strip().splitlines()[-1] == MESSAGE
        assert "Traceback" not in done.stderr
