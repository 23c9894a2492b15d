"""The accelerator requirement files pin what requirements.txt's jax pins."""

import re

from tests.configs import REPO


def _pins(name: str) -> dict[str, str]:
    pins = {}
    for line in (REPO / name).read_text().splitlines():
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)", line.strip())
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def test_gpu_plugin_matches_jax():
    jax_version = _pins("requirements.txt")["jax"]
    gpu = _pins("requirements-gpu.txt")
    assert gpu == {"jax-cuda12-plugin": jax_version, "jax-cuda12-pjrt": jax_version}


def test_env_sh_installs_the_chosen_accelerator_file():
    env_sh = (REPO / "launch" / "env.sh").read_text()
    assert 'gpu) ACCEL_REQUIREMENTS="$ROOT/requirements-gpu.txt"' in env_sh
    assert 'tpu) ACCEL_REQUIREMENTS="$ROOT/requirements-tpu.txt"' in env_sh
