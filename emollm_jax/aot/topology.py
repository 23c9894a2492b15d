"""Devices to compile for, named as users name them: ``v5p-64``, ``v4-32``, ``v5e-256``,
``v6e-256`` (TPU slices: compile-only devices from libtpu, no TPU needed) or ``cpu:8`` (that many
CPU devices of this host, where the step can also be run).

The number in a TPU name counts TensorCores for v4 and v5p (two per chip: ``v5p-64`` is 32
chips) and chips for v5e and v6e (``v6e-256`` is 256 chips), as Cloud TPU's accelerator types do.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re

LIBTPU_HINT = (
    "compiling for a TPU topology needs libtpu (no TPU needed): "
    "pip install -r requirements-tpu.txt  (libtpu==0.0.42.1, what jax[tpu]==0.10.2 pins)"
)

# Slice shapes Cloud TPU offers, by chip count: 3D tori for v4/v5p, 2D for v5e/v6e.
_SHAPES_3D = {
    4: (2, 2, 1), 8: (2, 2, 2), 16: (2, 2, 4), 32: (2, 4, 4), 64: (4, 4, 4), 128: (4, 4, 8),
    256: (4, 8, 8), 512: (8, 8, 8), 1024: (8, 8, 16), 2048: (8, 16, 16), 4096: (16, 16, 16),
}  # fmt: skip
_SHAPES_2D = {1: (1, 1), 4: (2, 2), 8: (2, 4), 16: (4, 4), 32: (4, 8), 64: (8, 8),
              128: (8, 16), 256: (16, 16)}  # fmt: skip
# kind -> (name counts TensorCores, shapes, libtpu topology prefix, chip config)
_KINDS = {
    "v4": (True, _SHAPES_3D, "v4", "megacore"),
    "v5p": (True, _SHAPES_3D, "v5p", "default"),
    "v5e": (False, _SHAPES_2D, "v5e", "default"),
    "v6e": (False, _SHAPES_2D, "v6e", "default"),
}


class TopologyError(ValueError):
    """An unknown or malformed topology name; the message lists the known ones."""


@dataclasses.dataclass(frozen=True)
class Topology:
    name: str  # as the user wrote it
    kind: str  # v4 | v5p | v5e | v6e | cpu
    chips: int  # per slice
    shape: tuple[int, ...]  # the slice's chip grid (cpu: (chips,))

    @property
    def platform(self) -> str:
        return "cpu" if self.kind == "cpu" else "tpu"


def known_names() -> str:
    lines = []
    for kind, (cores, shapes, _, _) in _KINDS.items():
        sizes = ", ".join(f"{kind}-{n * 2 if cores else n}" for n in shapes)
        lines.append(f"  {kind} ({'TensorCores' if cores else 'chips'}): {sizes}")
    lines.append("  cpu:N (N CPU devices of this host)")
    return "\n".join(lines)


def parse(name: str) -> Topology:
    """``v5p-64`` -> Topology(kind v5p, 32 chips, 2x4x4); ``cpu:8`` -> 8 CPU devices."""
    cpu = re.fullmatch(r"cpu:(\d+)", name)
    if cpu and int(cpu.group(1)) > 0:
        return Topology(name, "cpu", int(cpu.group(1)), (int(cpu.group(1)),))
    m = re.fullmatch(r"(v4|v5p|v5e|v6e)-(\d+)", name)
    if not m:
        raise TopologyError(
            f"--topology {name!r}: not a topology name. Known names (v4/v5p count "
            f"TensorCores, v5e/v6e count chips):\n{known_names()}"
        )
    kind, count = m.group(1), int(m.group(2))
    cores, shapes, _, _ = _KINDS[kind]
    chips = count // 2 if cores else count
    if (cores and count % 2) or chips not in shapes:
        raise TopologyError(
            f"--topology {name!r}: {kind} comes in these sizes ("
            f"{'TensorCores, 2 per chip' if cores else 'chips'}):\n{known_names()}"
        )
    return Topology(name, kind, chips, shapes[chips])


def _ensure_cpu_devices(n: int) -> None:
    flag = f"--xla_force_host_platform_device_count={n}"
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {flag}".strip()


@contextlib.contextmanager
def _host_named_for_libtpu(topology: Topology):
    """The host's TPU environment libtpu reads when it starts, set for that moment only.

    On a machine with no TPU these variables are unset, and libtpu says so in two lines that
    look like failures but concern no compile: ``Failed to find host bounds for accelerator
    type`` and ``E0000 ... INVALID_ARGUMENT: Error: unexpected worker hostname``. Naming this
    host as the only worker and the topology as the accelerator type silences both; the
    programs compiled are the same byte for byte (seen for v4, v5p, v5e and v6e). Only variables
    that were unset are set, and they are removed again afterwards, so that nothing later in
    the process (``jax.distributed``'s cluster detection) takes this host for a TPU VM."""
    wanted = {"TPU_WORKER_HOSTNAMES": "localhost", "TPU_ACCELERATOR_TYPE": topology.name}
    added = [name for name in wanted if name not in os.environ]
    os.environ.update({name: wanted[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def devices(topology: Topology, num_slices: int = 1) -> list:
    """The devices of ``num_slices`` slices of ``topology`` (compile-only for TPUs)."""
    if num_slices < 1:
        raise TopologyError(f"--num-slices must be at least 1, got {num_slices}")
    if topology.platform == "cpu":
        if num_slices != 1:
            raise TopologyError("--num-slices: cpu:N topologies have one slice")
        _ensure_cpu_devices(topology.chips)
        import jax

        found = jax.devices("cpu")
        if len(found) < topology.chips:
            raise TopologyError(
                f"--topology {topology.name}: this process has {len(found)} CPU devices "
                f"(set XLA_FLAGS=--xla_force_host_platform_device_count={topology.chips} "
                "before JAX starts)"
            )
        return found[: topology.chips]
    try:
        import libtpu  # noqa: F401
    except ImportError as e:
        raise TopologyError(LIBTPU_HINT) from e
    # Compile-only use: no chip to guard, so several processes (test workers, a sweep) may
    # load libtpu at once instead of failing on its lock file.
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
    os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")
    from jax.experimental import topologies

    _, _, prefix, chip_config = _KINDS[topology.kind]
    shape = "x".join(str(s) for s in topology.shape)
    host = (2, 2, 1) if len(topology.shape) == 3 else (2, 2)
    host = tuple(min(h, s) for h, s in zip(host, topology.shape, strict=True))
    if len(host) == 2:
        host = (*host, 1)
    with _host_named_for_libtpu(topology):
        desc = topologies.get_topology_desc(
            platform="tpu",
            topology_name=f"{prefix}:{shape}",
            chip_config_name=chip_config,
            chips_per_host_bounds=host,
            num_slices=num_slices,
        )
    found = list(desc.devices)
    expected = topology.chips * num_slices
    if len(found) != expected:
        raise TopologyError(
            f"--topology {topology.name}: libtpu gave {len(found)} devices, expected "
            f"{expected} ({num_slices} x {topology.chips} chips)"
        )
    return found


def grid(topology: Topology) -> str:
    return "x".join(map(str, topology.shape)) + f" ({math.prod(topology.shape)} chips)"
