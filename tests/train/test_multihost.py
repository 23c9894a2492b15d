"""Two processes on this machine form one 8-device JAX system (loopback coordinator, gloo CPU
collectives): FSDP steps with a checkpoint save and restore give both processes the losses a
single process computes."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.configs import REPO
from tests.train.helpers import shared_compile_cache

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(devices: int, cache_dir) -> dict:
    # Each worker builds its Trainer twice (before and after the restore): the second loads the
    # training step the first compiled.
    env = dict(os.environ, **shared_compile_cache(cache_dir))
    env["XLA_FLAGS"] = (
        f"--xla_force_host_platform_device_count={devices} --xla_backend_optimization_level=0"
    )
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = str(REPO)
    return env


def _worker(data_dir, workdir, nproc, pid, port, devices):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.train.multihost_worker",
            str(data_dir),
            str(workdir),
            str(nproc),
            str(pid),
            str(port),
        ],
        cwd=REPO,
        env=_env(devices, workdir.parent / f"{workdir.name}_jax_cache"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _result(proc):
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-4000:]
    return json.loads(out.strip().splitlines()[-1])


def test_two_processes_match_one(tmp_path, small_emobench):
    port = _free_port()
    procs = [_worker(small_emobench, tmp_path / "multi", 2, pid, port, 4) for pid in (0, 1)]
    single = _worker(small_emobench, tmp_path / "single", 1, 0, port, 8)
    results = [_result(p) for p in procs]
    reference = _result(single)["losses"]
    assert sorted(results[0]["losses"]) == [str(s) for s in range(1, 7)]
    for result in results:
        assert result["losses"] == results[0]["losses"]  # both processes see the same
        for step, loss in reference.items():
            # The same examples, in another row order: equal up to float summation order.
            np.testing.assert_allclose(result["losses"][step], loss, rtol=2e-5)
    # each process wrote its own data-iterator state into the checkpoint
    data_dir = tmp_path / "multi" / "checkpoints" / "6" / "data"
    assert sorted(p.name for p in data_dir.iterdir() if p.name.startswith("process_")) == [
        "process_0-of-2.json",
        "process_1-of-2.json",
    ]
