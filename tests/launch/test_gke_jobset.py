"""launch/gke_jobset.py: the rendered JobSet parses as YAML with one Job per slice and one pod
per TPU host; a mesh that cannot fit the slices is refused; --dry-run writes nothing."""

import yaml

from tests.launch.helpers import commands, launch

ARGS = ("--config", "configs/llava_tiny.py", "--image", "img:1", "--workdir", "/mnt/shared/r")


def _render(*args):
    return yaml.safe_load(launch("gke_jobset.py", *ARGS, *args).stdout)


def _job(manifest):
    (job,) = manifest["spec"]["replicatedJobs"]
    return job


def test_multislice_v5p():
    manifest = _render("--topology", "v5p-64", "--num-slices", "2", "--config.train.steps=5")
    assert manifest["kind"] == "JobSet"
    job = _job(manifest)
    assert job["replicas"] == 2
    spec = job["template"]["spec"]
    assert spec["parallelism"] == spec["completions"] == 8  # 32 chips, 4 per host
    pod = spec["template"]["spec"]
    assert pod["nodeSelector"] == {
        "cloud.google.com/gke-tpu-accelerator": "tpu-v5p-slice",
        "cloud.google.com/gke-tpu-topology": "2x4x4",
    }
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["google.com/tpu"] == 4
    assert container["command"][:3] == ["python", "-m", "emollm_jax.train"]
    assert container["command"][-2:] == [
        "--config.distributed.initialize=on", "--config.train.steps=5"
    ]  # fmt: skip
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MEGASCALE_NUM_SLICES"] == "2" and env["JAX_PLATFORMS"] == "tpu"
    assert env["MEGASCALE_COORDINATOR_ADDRESS"] == "$(JOBSET_NAME)-slice-0-0.$(JOBSET_NAME)"


def test_single_host_v5e_slice_with_a_shared_volume():
    manifest = _render("--topology", "v5e-8", "--pvc", "shared-fs")
    job = _job(manifest)
    assert job["replicas"] == 1 and job["template"]["spec"]["parallelism"] == 1
    pod = job["template"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["google.com/tpu"] == 8
    assert not any(e["name"].startswith("MEGASCALE") for e in container["env"])
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "shared-fs"
    assert container["volumeMounts"][0]["mountPath"] == "/mnt/shared"


def test_mesh_that_does_not_fit_is_refused():
    proc = launch("gke_jobset.py", *ARGS, "--topology", "v6e-16", "--config.mesh.shape.fsdp=3",
                  check=False)  # fmt: skip
    assert proc.returncode != 0 and "config.mesh.shape" in proc.stderr


def test_dry_run_prints_the_commands_and_writes_nothing(tmp_path):
    out = tmp_path / "jobset.yaml"
    proc = launch("gke_jobset.py", *ARGS, "--topology", "v4-32", "--out", str(out), "--apply",
                  "--dry-run")  # fmt: skip
    text = proc.stdout
    assert text.startswith(f"cat > {out} <<'EOF'\n")
    body, _, rest = text.partition("\nEOF\n")
    assert _job(yaml.safe_load(body.split("\n", 1)[1]))["template"]["spec"]["parallelism"] == 4
    assert commands(rest) == [["kubectl", "apply", "-f", str(out)]]
    assert not out.exists()
    proc = launch("gke_jobset.py", *ARGS, "--topology", "v4-32", "--xpk-cluster", "c1",
                  "--dry-run")  # fmt: skip
    (xpk,) = commands(proc.stdout)
    assert xpk[:3] == ["xpk", "workload", "create"] and "--tpu-type=v4-32" in xpk


def test_a_memory_volume_for_the_local_checkpoint_tier():
    manifest = _render("--topology", "v5e-8", "--pvc", "shared-fs", "--local-tier-gib", "48")
    pod = _job(manifest)["template"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["local-tier"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "48Gi"}
    assert "shared-fs" == volumes["shared"]["persistentVolumeClaim"]["claimName"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"shared": "/mnt/shared", "local-tier": "/mnt/local"}
    assert "--config.checkpoint.local_dir=/mnt/local/emollm" in container["command"]
    # A local_dir the user gives wins.
    manifest = _render("--topology", "v5e-8", "--local-tier-gib", "8",
                       "--config.checkpoint.local_dir=/mnt/local/mine")  # fmt: skip
    (container,) = _job(manifest)["template"]["spec"]["template"]["spec"]["containers"]
    locals_ = [a for a in container["command"] if a.startswith("--config.checkpoint.local_dir")]
    assert locals_ == ["--config.checkpoint.local_dir=/mnt/local/mine"]
