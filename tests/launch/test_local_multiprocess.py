"""launch/local_multiprocess.sh: the per-process commands of --dry-run, and a real two-process
run of a few steps on this machine."""

import json

import pytest

from tests.launch.helpers import commands, launch
from tests.train.test_multihost import _free_port


def test_dry_run_prints_one_command_per_process(tmp_path):
    workdir = tmp_path / "run"
    proc = launch(
        "local_multiprocess.sh", "--config", "configs/llava_tiny.py", "--workdir", str(workdir),
        "--processes", "3", "--devices-per-process", "2", "--port", "23456", "--dry-run",
        "--", "--config.train.steps=4",
    )  # fmt: skip
    cmds = commands(proc.stdout)
    assert cmds[0][-1].endswith("launch/env.sh") and cmds[0][0] == "source"
    assert cmds[1] == ["mkdir", "-p", f"{workdir}/logs"]
    trains = cmds[2:]
    assert len(trains) == 3
    for i, cmd in enumerate(trains):
        assert cmd[:2] == ["env", "JAX_PLATFORMS=cpu"]
        assert cmd[2].startswith("XLA_FLAGS=") and cmd[2].endswith("device_count=2")
        assert cmd[3:6] == ["python", "-m", "emollm_jax.train"]
        assert "--config.distributed.initialize=on" in cmd
        assert "--config.distributed.coordinator_address=127.0.0.1:23456" in cmd
        assert "--config.distributed.num_processes=3" in cmd
        assert f"--config.distributed.process_id={i}" in cmd
        assert cmd[-1] == "--config.train.steps=4"
    assert not workdir.exists()  # a dry run touches nothing


def test_bad_arguments_name_the_flag(tmp_path):
    proc = launch(
        "local_multiprocess.sh", "--config", "c.py", "--workdir", str(tmp_path), "--processes",
        "0", "--dry-run", check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and "--processes must be a positive integer" in proc.stderr
    proc = launch("local_multiprocess.sh", "--workdir", str(tmp_path), check=False)
    assert proc.returncode == 2 and "--config is required" in proc.stderr


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_processes_train_together(tmp_path, small_emobench):
    workdir = tmp_path / "run"
    overrides = [
        f"--config.data.dir={small_emobench}", "--config.data.batch_size=8",
        "--config.data.seq_buckets=(256,)", "--config.data.frame_buckets=(8,)",
        "--config.data.read_threads=1", "--config.data.prefetch_buffer=2",
        "--config.train.steps=2", "--config.train.warmup_steps=1", "--config.log.every_steps=1",
        "--config.log.tensorboard=False", "--config.log.progress_bar=off",
        "--config.mesh.strategy=fsdp", "--config.mesh.shape.data=1", "--config.mesh.shape.fsdp=4",
    ]  # fmt: skip
    proc = launch(
        "local_multiprocess.sh", "--config", "configs/llava_tiny.py", "--workdir", str(workdir),
        "--processes", "2", "--devices-per-process", "2", "--port", str(_free_port()),
        "--", *overrides,
        env={"EMOLLM_NO_VENV": "1", "XLA_FLAGS": "--xla_backend_optimization_level=0"},
        check=False,
    )  # fmt: skip
    logs = {p.name: p.read_text() for p in (workdir / "logs").glob("*.log")}
    assert proc.returncode == 0, proc.stderr + "\n".join(v[-3000:] for v in logs.values())
    assert sorted(logs) == ["process_0.log", "process_1.log"]
    for text in logs.values():
        assert "process 0 of 2" in text or "process 1 of 2" in text
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    data = workdir / "checkpoints" / "2" / "data"
    pieces = sorted(p.name for p in data.iterdir() if p.name.startswith("process_"))
    assert pieces == ["process_0-of-2.json", "process_1-of-2.json"]
