"""launch/slurm.sh and launch/slurm_job.sh --dry-run (the sbatch and srun commands), and JAX
reading the job from the variables srun sets."""

from emollm_jax.config.base import base_config
from emollm_jax.train import distributed
from tests.launch.helpers import commands, flag, launch


def test_sbatch_asks_for_nodes_gpus_and_requeue(tmp_path):
    workdir = tmp_path / "run"
    proc = launch(
        "slurm.sh", "--config", "configs/emollm_7b.py", "--workdir", str(workdir), "--nodes", "4",
        "--gpus-per-node", "8", "--partition", "gpu", "--signal-lead", "600", "--dry-run",
        "--", "--config.train.steps=7",
    )  # fmt: skip
    mkdir, sbatch = commands(proc.stdout)
    assert mkdir == ["mkdir", "-p", f"{workdir}/logs"]
    assert sbatch[0] == "sbatch"
    assert flag(sbatch, "--nodes") == "4"
    assert flag(sbatch, "--ntasks-per-node") == "8" == flag(sbatch, "--gpus-per-node")
    assert "--requeue" in sbatch and flag(sbatch, "--signal") == "B:USR1@600"
    assert flag(sbatch, "--partition") == "gpu"
    assert flag(sbatch, "--output") == f"{workdir}/logs/%x-%j.out"
    job = sbatch.index(next(a for a in sbatch if a.endswith("launch/slurm_job.sh")))
    assert sbatch[job + 1 :] == [
        "--config", "configs/emollm_7b.py", "--workdir", str(workdir), "--",
        "--config.train.steps=7",
    ]  # fmt: skip
    assert not workdir.exists()


def test_relative_workdir_becomes_absolute(tmp_path):
    proc = launch("slurm.sh", "--config", "c.py", "--workdir", "runs/a", "--dry-run")
    sbatch = commands(proc.stdout)[1]
    assert sbatch[sbatch.index("--workdir") + 1].endswith("/runs/a")
    assert sbatch[sbatch.index("--workdir") + 1].startswith("/")


def test_job_runs_one_process_per_gpu():
    env = {"SLURM_JOB_ID": "77", "SLURM_JOB_NUM_NODES": "2", "SLURM_GPUS_ON_NODE": "4"}
    proc = launch(
        "slurm_job.sh", "--config", "c.py", "--workdir", "/shared/run", "--dry-run", "--",
        "--config.train.steps=3", env=env,
    )  # fmt: skip
    (srun,) = commands(proc.stdout)
    assert srun[0] == "srun" and flag(srun, "--nodes") == "2"
    assert flag(srun, "--ntasks-per-node") == "4"
    assert srun[srun.index("env") + 1] == "JAX_PLATFORMS=cuda"
    assert srun[-7].endswith("/.venv/bin/emollm")
    assert srun[-6:] == [
        "train", "--config", "c.py", "--workdir", "/shared/run",
        "--config.train.steps=3",
    ]  # fmt: skip
    assert "restart 0" in proc.stderr and "8 processes" in proc.stderr


def test_jax_reads_the_job_from_srun_variables(monkeypatch):
    """What each srun task sees: the auto mode initialises, and JAX's own SLURM detection
    names the first node as coordinator, this task's rank and its GPU."""
    from jax._src import clusters

    srun_env = {
        "SLURM_JOB_ID": "4242", "SLURM_STEP_NODELIST": "gpu[007-008]", "SLURM_NTASKS": "16",
        "SLURM_PROCID": "11", "SLURM_LOCALID": "3",
    }  # fmt: skip
    for key, value in srun_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("JAX_COORDINATOR_ADDRESS", raising=False)
    calls = []
    monkeypatch.setattr(distributed.jax.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.jax.distributed, "initialize", lambda **kw: calls.append(kw))
    monkeypatch.setattr(distributed.jax, "process_index", lambda: 11)
    monkeypatch.setattr(distributed.jax, "process_count", lambda: 16)
    cfg = base_config().distributed
    cfg.cpu_collectives = ""
    assert distributed.maybe_initialize(cfg) is True
    assert calls == [{}]  # nothing passed: JAX detects the cluster itself
    address, count, pid, local = clusters.ClusterEnv.auto_detect_unset_distributed_params(
        None, None, None, None, None, None
    )
    assert address == f"gpu007:{4242 % 4096 + 61440}"
    assert (count, pid, list(local)) == (16, 11, [3])
