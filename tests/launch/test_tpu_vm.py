"""launch/tpu_vm.sh --dry-run: the gcloud commands for one slice and for several (queued
resources), the train command every worker runs, and the worker count per accelerator type."""

import pytest

from tests.launch.helpers import commands, flag, launch

BASE = ("--name", "emo", "--zone", "us-east5-a", "--dry-run")


def _dry(action, *args, **kw):
    return commands(launch("tpu_vm.sh", action, *BASE, *args, **kw).stdout)


def test_create_one_slice_and_a_queued_multislice():
    (one,) = _dry("create", "--accelerator-type", "v5p-64")
    assert one[:5] == ["gcloud", "compute", "tpus", "tpu-vm", "create"] and one[5] == "emo"
    assert flag(one, "--accelerator-type") == "v5p-64"
    assert flag(one, "--version") == "v2-alpha-tpuv5"
    assert flag(one, "--zone") == "us-east5-a"
    (multi,) = _dry("create", "--accelerator-type", "v6e-256", "--num-slices", "4",
                    "--project", "p1")  # fmt: skip
    assert multi[3:5] == ["queued-resources", "create"]
    assert flag(multi, "--node-count") == "4" and flag(multi, "--node-prefix") == "emo"
    assert flag(multi, "--runtime-version") == "v2-alpha-tpuv6e"
    assert flag(multi, "--project") == "p1"


def test_train_starts_every_worker_at_once():
    (one,) = _dry("train", "--config", "configs/emollm_7b.py", "--workdir", "/nfs/run",
                  "--", "--config.train.steps=9")  # fmt: skip
    assert one[3:5] == ["tpu-vm", "ssh"] and "--worker=all" in one
    remote = flag(one, "--command")
    assert "JAX_PLATFORMS=tpu nohup .venv/bin/emollm train" in remote
    assert "--config configs/emollm_7b.py --workdir /nfs/run" in remote
    assert "--config.distributed.initialize=on --config.train.steps=9" in remote
    assert "~/emollm_logs/train-$(hostname).log" in remote  # one log per worker
    (multi,) = _dry("train", "--num-slices", "2", "--config", "c.py", "--workdir", "/w")
    assert multi[3:5] == ["queued-resources", "ssh"]
    assert "--node=all" in multi and "--worker=all" in multi


@pytest.mark.parametrize(
    "accel, slices, workers",
    [("v5p-8", 1, 1), ("v5p-64", 2, 8), ("v4-32", 1, 4), ("v5e-8", 1, 1), ("v6e-256", 1, 64)],
)
def test_logs_read_each_worker(accel, slices, workers):
    cmds = _dry("logs", "--accelerator-type", accel, "--num-slices", str(slices))
    assert len(cmds) == slices * workers
    nodes = ["emo"] if slices == 1 else [f"emo-{s}" for s in range(slices)]
    assert [(c[5], flag(c, "--worker")) for c in cmds] == [
        (n, str(w)) for n in nodes for w in range(workers)
    ]


def test_setup_copies_the_tree_and_builds_the_venv(tmp_path):
    cmds = _dry("setup", "--num-slices", "2", env={"TMPDIR": str(tmp_path)})
    archive = str(tmp_path / "emollm_jax-emo.tar.gz")
    assert cmds[0][:2] == ["git", "-C"] and cmds[0][-3:] == ["-o", archive, "HEAD"]
    assert [c[6] for c in cmds[1:3]] == ["emo-0:emollm_jax.tar.gz", "emo-1:emollm_jax.tar.gz"]
    remote = flag(cmds[3], "--command")
    assert "python3.11-venv" in remote and "source launch/env.sh" in remote
    assert not list(tmp_path.iterdir())  # nothing archived in a dry run
    (clone,) = _dry("setup", "--repo", "https://example.com/x.git", "--ref", "v1")[-1:]
    assert "git clone -q --branch v1 https://example.com/x.git ~/emollm_jax" in flag(
        clone, "--command"
    )


def test_stop_and_delete():
    (stop,) = _dry("stop")
    assert "kill $(cat ~/emollm_logs/train.pid)" in flag(stop, "--command")
    (delete,) = _dry("delete")
    assert delete[3:6] == ["tpu-vm", "delete", "emo"] and "--quiet" in delete
    (delete,) = _dry("delete", "--num-slices", "3")
    assert delete[3:6] == ["queued-resources", "delete", "emo"] and "--force" in delete


def test_bad_arguments_are_named():
    proc = launch("tpu_vm.sh", "create", *BASE, "--accelerator-type", "v9-8", check=False)
    assert proc.returncode == 2 and "--accelerator-type 'v9-8'" in proc.stderr
    proc = launch("tpu_vm.sh", "train", *BASE, check=False)
    assert proc.returncode == 2 and "train: --config is required" in proc.stderr
    proc = launch("tpu_vm.sh", "fly", *BASE, check=False)
    assert proc.returncode == 2 and "unknown action 'fly'" in proc.stderr
