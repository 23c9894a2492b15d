"""One process per training workdir / evaluation folder: a second one is refused naming the
holder (a real second process holds the lock), and a lock left by a dead process is taken over."""

import json
import logging
import subprocess
import sys

import pytest

from emollm_jax.folder_lock import LOCK_NAME, FolderLock, FolderLockedError
from tests.configs import REPO
from tests.train.helpers import train_command

HOLD = """
import sys, time
from emollm_jax.folder_lock import FolderLock
lock = FolderLock(sys.argv[1], "test folder").acquire()
print("held", flush=True)
if sys.argv[2] == "die":
    import os; os._exit(0)  # dies without releasing: a stale lock
time.sleep(120)
"""


def _holder(folder, mode="hold"):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder), mode], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def held(tmp_path):
    proc = _holder(tmp_path)
    yield tmp_path, proc
    proc.kill()
    proc.wait(timeout=30)


def test_second_process_is_refused_naming_the_holder(held):
    folder, proc = held
    with pytest.raises(FolderLockedError, match=f"in use by pid {proc.pid} on this host"):
        FolderLock(folder, "evaluation folder").acquire()
    assert json.loads((folder / LOCK_NAME).read_text())["pid"] == proc.pid


def test_training_on_a_held_workdir_is_refused_and_writes_nothing(held, small_emobench):
    folder, proc = held
    done = subprocess.run(
        train_command(folder, small_emobench), cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"training workdir {folder} is in use by pid {proc.pid}" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in folder.iterdir()) == [LOCK_NAME]


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path, caplog):
    proc = _holder(tmp_path, "die")
    proc.wait(timeout=30)
    with caplog.at_level(logging.WARNING), FolderLock(tmp_path, "evaluation folder") as lock:
        assert json.loads(lock.path.read_text())["pid"] != proc.pid
    assert f"stale lock of pid {proc.pid}" in caplog.text
    assert not (tmp_path / LOCK_NAME).exists()  # released


def test_evaluation_into_a_held_folder_is_refused(held):
    from emollm_jax.config.model import from_config_dict
    from emollm_jax.inference.run import evaluate_generation
    from emollm_jax.models.build import build_model
    from tests.data.conftest import tiny_config

    folder, proc = held
    config = tiny_config()
    model = build_model(from_config_dict(config.model), 0)
    with pytest.raises(FolderLockedError, match=f"evaluation folder {folder} is in use by pid"):
        evaluate_generation(config, "tiny", "test", str(folder), model=model)
    assert sorted(p.name for p in folder.iterdir()) == [LOCK_NAME]
