"""The local checkpoint tier with two JAX processes (loopback coordinator, gloo collectives),
through real processes and SIGKILL: a pair killed between two persistent saves resumes from
the newest step that every process holds in its local tier, and every step's loss equals an
uninterrupted pair's bit for bit; with one process's local tier wiped, both fall back to the
persistent tier (the log names the process that lacked the step), still bit-exact."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess

import pytest

from emollm_jax.checkpoint import tiers
from tests.configs import REPO
from tests.train.helpers import shared_compile_cache, train_command, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess]

STEPS = 8
PERSISTENT_EVERY = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pair(workdir, data_dir, *extra, cache=None) -> list[subprocess.Popen]:
    port = _free_port()
    env = dict(os.environ, **(shared_compile_cache(cache) if cache else {}))
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4 --xla_backend_optimization_level=0"
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = str(REPO)
    procs = []
    for pid in (0, 1):
        distributed = [
            "--config.distributed.initialize=on",
            f"--config.distributed.coordinator_address=127.0.0.1:{port}",
            "--config.distributed.num_processes=2",
            f"--config.distributed.process_id={pid}",
            # a hang ends in minutes with every thread's stack in the output, not at a timeout
            "--config.train.hang_first_step_timeout_s=240",
            "--config.train.hang_timeout_s=120",
        ]
        command = train_command(workdir, data_dir, *distributed, *extra, steps=STEPS)
        procs.append(
            subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    return procs


def _finish(procs) -> str:
    outs = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        outs.append(out)
        assert proc.returncode == 0, out[-4000:]
    return "\n".join(outs)


def _losses(workdir) -> dict:
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return {row["step"]: row["loss"] for row in rows}


def _tier_flags(local_dir) -> list[str]:
    return [
        f"--config.checkpoint.local_dir={local_dir}",
        "--config.checkpoint.local_every_steps=1",
        "--config.checkpoint.local_keep=3",
        f"--config.checkpoint.every_steps={PERSISTENT_EVERY}",
    ]


def test_local_tier_restores_bit_exact_and_falls_back_when_a_host_lost_it(
    tmp_path, small_emobench, uninterrupted_pair
):
    cache, expected = uninterrupted_pair["cache"], uninterrupted_pair["losses"]

    workdir, local = tmp_path / "run", tmp_path / "local"
    flags = _tier_flags(local)
    procs = _pair(workdir, small_emobench, *flags, cache=cache)

    def local_steps(pid):
        roots = list(local.glob(f"run-*/process_{pid}-of-2"))
        return tiers.complete_steps(roots[0]) if roots else []

    # Past the persistent save at step 4, short of the next one: both processes hold step 6.
    def both_hold_step_6():
        return min(max(local_steps(0), default=0), max(local_steps(1), default=0)) >= 6

    caught = wait_for(both_hold_step_6, procs[1])
    os.kill(procs[1].pid, signal.SIGKILL)  # one host lost...
    os.kill(procs[0].pid, signal.SIGKILL)  # ...and the scheduler tears the job down
    for proc in procs:
        proc.communicate(timeout=60)
    assert caught, "the pair ended before both processes saved local step 6"
    persistent = tiers.complete_steps(workdir / "checkpoints")
    assert persistent == [PERSISTENT_EVERY]
    newest_local = min(max(local_steps(0)), max(local_steps(1)))
    assert PERSISTENT_EVERY < newest_local < STEPS

    # The same run folders, twice: as the kill left them, and with process 1's local tier gone.
    shutil.copytree(workdir, tmp_path / "run_killed")
    shutil.copytree(local, tmp_path / "local_killed")

    out = _finish(_pair(workdir, small_emobench, *flags, cache=cache))
    assert f"restoring step {newest_local} from the local tier" in out
    assert f"resumed from checkpoint {newest_local} (local tier" in out
    assert _losses(workdir) == expected  # every step, bit for bit
    events = [json.loads(line) for line in (workdir / "events.jsonl").read_text().splitlines()]
    restores = [(e["tier"], e["step"]) for e in events if e["event"] == "restore"]
    assert restores == [("local", newest_local)]
    saved = {(e["tier"], e["step"]) for e in events if e["event"] == "checkpoint"}
    assert ("local", STEPS) in saved and ("persistent", STEPS) in saved
    # what each tier's saves cost the step loop, in every logged row
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert all(row["ckpt_blocked_s_local"] >= 0 for row in rows)
    assert sum(row["ckpt_blocked_s_local"] for row in rows) > 0

    shutil.rmtree(workdir)
    shutil.rmtree(local)
    shutil.copytree(tmp_path / "run_killed", workdir)
    shutil.copytree(tmp_path / "local_killed", local)
    shutil.rmtree(next(local.glob("run-*/process_1-of-2")))  # a replaced host
    out = _finish(_pair(workdir, small_emobench, *flags, cache=cache))
    assert f"restoring step {PERSISTENT_EVERY} from the persistent tier" in out
    assert re.search(r"local step \d+ is missing on process\(es\) \[1\]", out), out[-3000:]
    assert _losses(workdir) == expected
