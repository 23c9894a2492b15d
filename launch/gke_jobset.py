#!/usr/bin/env python3
"""A JobSet manifest for training on GKE TPU slices, rendered from a config for a topology and
a slice count: one Job per slice, one pod per TPU host, each running
``python -m emollm_jax.train`` (jax.distributed reads the slice from the variables GKE's TPU
webhook sets, and across slices from the MEGASCALE_* variables set here).

Needs: Python with this project installed (launch/env.sh) to render; ``kubectl`` and a GKE
cluster with the JobSet controller and TPU node pools of that topology to apply; ``xpk`` for
--xpk-cluster. A container image holding this checkout and its venv (--image) is yours to build.

Usage:
  python launch/gke_jobset.py --config configs/X.py --topology v5p-64 --num-slices 2 \
      --image IMAGE --workdir /mnt/shared/run [--pvc CLAIM] [--local-tier-gib 64] \
      [--name emollm] \
      [--out jobset.yaml] [--apply | --xpk-cluster CLUSTER] [--dry-run] [--config.a.b=v ...]
Without --out the manifest goes to stdout. --apply runs ``kubectl apply -f OUT``; --xpk-cluster
runs the equivalent ``xpk workload create`` instead. --dry-run prints the commands that would
run (the manifest written by a here-document) and runs nothing. The workdir must be storage
every pod sees (--pvc mounts a ReadWriteMany claim at /mnt/shared); gs:// is not supported yet.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import yaml  # noqa: E402
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from emollm_jax.aot import topology as topo  # noqa: E402
from emollm_jax.aot.cli import underscore_flags  # noqa: E402
from emollm_jax.sharding.mesh import MeshError, resolve_shape  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.")
_TOPOLOGY = flags.DEFINE_string("topology", None, "v4-32, v5e-16, v5p-64, v6e-256, ...")
_SLICES = flags.DEFINE_integer("num_slices", 1, "Slices (one Job each).")
_IMAGE = flags.DEFINE_string("image", None, "Container image with this checkout and its venv.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder every pod sees.")
_NAME = flags.DEFINE_string("name", "emollm", "JobSet name (a DNS label).")
_PVC = flags.DEFINE_string("pvc", "", "A ReadWriteMany PersistentVolumeClaim for /mnt/shared.")
_OUT = flags.DEFINE_string("out", "", "Write the manifest here (default: stdout).")
_APPLY = flags.DEFINE_bool("apply", False, "kubectl apply -f OUT.")
_XPK = flags.DEFINE_string("xpk_cluster", "", "Submit with xpk to this cluster instead.")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Print the commands; run nothing.")
_RESTARTS = flags.DEFINE_integer("max_restarts", 3, "JobSet restarts (each resumes the run).")
_LOCAL_GIB = flags.DEFINE_integer(
    "local_tier_gib", 0, "Mount a memory emptyDir of this many GiB at /mnt/local for the "
    "checkpoints' local tier (config.checkpoint.local_dir, set to /mnt/local/emollm unless "
    "given); 0: none.",
)
flags.mark_flags_as_required(["config", "topology", "image", "workdir"])

# GKE's node label for each TPU generation.
_GKE_ACCELERATOR = {
    "v4": "tpu-v4-podslice",
    "v5e": "tpu-v5-lite-podslice",
    "v5p": "tpu-v5p-slice",
    "v6e": "tpu-v6e-slice",
}
SHARED_MOUNT = "/mnt/shared"
LOCAL_MOUNT = "/mnt/local"


def chips_per_host(t: topo.Topology) -> int:
    """4 chips per TPU host, except single-host v5e/v6e slices of up to 8 chips."""
    single_host_max = 8 if t.kind in ("v5e", "v6e") else 4
    return t.chips if t.chips <= single_host_max else 4


def train_command(config_path: str, workdir: str, overrides: list[str]) -> list[str]:
    return [
        "python", "-m", "emollm_jax.train", "--config", config_path, "--workdir", workdir,
        "--config.distributed.initialize=on", *overrides,
    ]  # fmt: skip


def _annotation(key: str) -> dict:
    return {"valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{key}']"}}}


def render(t: topo.Topology, slices: int, name: str, image: str, command: list[str], pvc: str,
           max_restarts: int, local_tier_gib: int = 0) -> dict:
    """The JobSet: ``slices`` Jobs of ``chips / chips_per_host`` pods; ``local_tier_gib`` > 0
    mounts a memory ``emptyDir`` of that size at ``LOCAL_MOUNT`` (it survives a container's
    restart in its pod, not a rescheduled pod)."""
    per_host = chips_per_host(t)
    hosts = t.chips // per_host
    env = [{"name": "JAX_PLATFORMS", "value": "tpu"}]
    if slices > 1:
        env += [
            {"name": "JOBSET_NAME", **_annotation("jobset.sigs.k8s.io/jobset-name")},
            {"name": "MEGASCALE_SLICE_ID", **_annotation("jobset.sigs.k8s.io/job-index")},
            {"name": "MEGASCALE_NUM_SLICES", "value": str(slices)},
            {"name": "MEGASCALE_COORDINATOR_ADDRESS", "value": "$(JOBSET_NAME)-slice-0-0.$(JOBSET_NAME)"},
        ]  # fmt: skip
    container = {
        "name": "train",
        "image": image,
        "command": command,
        "env": env,
        "ports": [{"containerPort": 8471}, {"containerPort": 8080}],
        "securityContext": {"privileged": True},
        "resources": {"limits": {"google.com/tpu": per_host}},
    }
    pod = {
        "restartPolicy": "Never",
        "hostNetwork": True,
        "dnsPolicy": "ClusterFirstWithHostNet",
        "nodeSelector": {
            "cloud.google.com/gke-tpu-accelerator": _GKE_ACCELERATOR[t.kind],
            "cloud.google.com/gke-tpu-topology": "x".join(map(str, t.shape)),
        },
        "containers": [container],
    }
    mounts, volumes = [], []
    if pvc:
        mounts.append({"name": "shared", "mountPath": SHARED_MOUNT})
        volumes.append({"name": "shared", "persistentVolumeClaim": {"claimName": pvc}})
    if local_tier_gib > 0:
        mounts.append({"name": "local-tier", "mountPath": LOCAL_MOUNT})
        memory = {"medium": "Memory", "sizeLimit": f"{local_tier_gib}Gi"}
        volumes.append({"name": "local-tier", "emptyDir": memory})
    if mounts:
        container["volumeMounts"], pod["volumes"] = mounts, volumes
    return {
        "apiVersion": "jobset.x-k8s.io/v1alpha2",
        "kind": "JobSet",
        "metadata": {
            "name": name,
            "annotations": {
                "alpha.jobset.sigs.k8s.io/exclusive-topology": "cloud.google.com/gke-nodepool"
            },
        },
        "spec": {
            "failurePolicy": {"maxRestarts": max_restarts},
            "replicatedJobs": [
                {
                    "name": "slice",
                    "replicas": slices,
                    "template": {
                        "spec": {
                            "parallelism": hosts,
                            "completions": hosts,
                            "backoffLimit": 0,
                            "template": {"spec": pod},
                        }
                    },
                }
            ],
        },
    }


def _overrides(argv: list[str]) -> list[str]:
    """The ``--config.a.b=v`` overrides as given, passed on to the training command."""
    return [a for a in argv if a.startswith("--config.")]


def main(argv):
    del argv
    try:
        t = topo.parse(_TOPOLOGY.value)
        if t.platform != "tpu":
            raise topo.TopologyError(f"--topology {t.name}: GKE JobSets are for TPU slices")
        if _SLICES.value < 1:
            raise topo.TopologyError(f"--num-slices must be at least 1, got {_SLICES.value}")
        resolve_shape(dict(_CONFIG.value.mesh.shape), t.chips * _SLICES.value)
    except (topo.TopologyError, MeshError) as e:
        sys.exit(f"gke_jobset: {e}")
    config_path = flags.FLAGS["config"].config_filename
    overrides = _overrides(sys.argv[1:])
    if _LOCAL_GIB.value > 0 and not any(
        o.startswith("--config.checkpoint.local_dir=") for o in overrides
    ):
        overrides.append(f"--config.checkpoint.local_dir={LOCAL_MOUNT}/emollm")
    command = train_command(config_path, _WORKDIR.value, overrides)
    manifest = render(
        t, _SLICES.value, _NAME.value, _IMAGE.value, command, _PVC.value, _RESTARTS.value,
        _LOCAL_GIB.value,
    )
    text = yaml.safe_dump(manifest, sort_keys=False)
    commands = []
    if _XPK.value:
        commands.append(
            ["xpk", "workload", "create", f"--cluster={_XPK.value}", f"--workload={_NAME.value}",
             f"--tpu-type={_TOPOLOGY.value}", f"--num-slices={_SLICES.value}",
             f"--docker-image={_IMAGE.value}", f"--command={shlex.join(command)}"]
        )  # fmt: skip
    elif _APPLY.value:
        if not _OUT.value:
            sys.exit("gke_jobset: --apply needs --out (the manifest file kubectl applies)")
        commands.append(["kubectl", "apply", "-f", _OUT.value])
    if _DRY_RUN.value:
        if _OUT.value:
            print(f"cat > {shlex.quote(_OUT.value)} <<'EOF'\n{text}EOF")
        for cmd in commands:
            print(shlex.join(cmd))
        return
    if not _OUT.value:
        sys.stdout.write(text)
    else:
        tmp = _OUT.value + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, _OUT.value)
    for cmd in commands:
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    app.run(main, argv=underscore_flags(sys.argv))
