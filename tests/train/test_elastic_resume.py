"""Elastic resume through real processes: a run saved by two JAX processes (4 CPU devices each,
loopback coordinator) resumes on one process (8 devices: the same mesh) with the same global
batch and data position, and gives the uninterrupted pair's losses; a resume that would change
the global batch is refused naming the field."""

import os
import shutil

import numpy as np
import pytest

from tests.checkpoint.test_checkpoint_tiers import PERSISTENT_EVERY, STEPS, _losses
from tests.configs import REPO
from tests.train.helpers import shared_compile_cache, start_training

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess]

SAVED = PERSISTENT_EVERY  # the step the single process resumes from
BATCH = 8  # train_command's global batch
# Not bit for bit: the pair's global batch holds the same records in another row order (process p
# reads records p, p + 2, ...; the rows of process 0 come first), so every sum over the batch
# adds the same numbers in another order (float32 rounding), as between a pair and one process
# in test_multihost.py.
RTOL = 2e-5


def _one_process(workdir, data_dir, *extra, cache):
    env = shared_compile_cache(cache) | {
        "XLA_FLAGS": "--xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": str(REPO),
    }
    proc = start_training(workdir, data_dir, *extra, steps=STEPS, env=env)
    out, _ = proc.communicate(timeout=600)
    return proc.returncode, out


def test_two_processes_resume_on_one_with_the_uninterrupted_losses(
    tmp_path, small_emobench, uninterrupted_pair
):
    cache, workdir = tmp_path / "jax_cache", tmp_path / "run"
    shutil.copytree(uninterrupted_pair["workdir"], workdir)
    uninterrupted = uninterrupted_pair["losses"]
    every = f"--config.checkpoint.every_steps={SAVED}"
    resume = f"--config.train.resume_step={SAVED}"

    code, out = _one_process(
        workdir, small_emobench, every, resume, "--config.data.batch_size=16", cache=cache
    )
    assert code == 2, out[-3000:]
    assert "config.data.batch_size is 8 in the checkpoint, 16 now" in out
    assert "saved by 2 JAX process(es); this run has 1" in out

    code, out = _one_process(workdir, small_emobench, every, resume, cache=cache)
    assert code == 0, out[-4000:]
    assert f"resuming at record {SAVED * BATCH} of the data stream (global batch {BATCH})" in out
    assert "read again" not in out  # no record refused: nothing read twice, nothing skipped
    assert f"resumed from checkpoint {SAVED} (persistent tier" in out
    resumed = _losses(workdir)
    assert sorted(resumed) == list(range(1, STEPS + 1))
    assert all(resumed[s] == uninterrupted[s] for s in range(1, SAVED + 1))  # the pair's rows
    after = range(SAVED + 1, STEPS + 1)
    want = np.array([uninterrupted[s] for s in after])
    np.testing.assert_allclose([resumed[s] for s in after], want, rtol=RTOL)
    # The tolerance is far below what another batch would change: consecutive steps' losses
    # differ by more than 100x it.
    losses = np.array([uninterrupted[s] for s in range(1, STEPS + 1)])
    assert np.min(np.abs(np.diff(losses)) / losses[1:]) > 100 * RTOL
    assert os.path.isdir(workdir / "checkpoints" / str(STEPS))  # saved again, by one process
