"""pyproject.toml's ranges and the pins of requirements*.txt describe the same packages: every
pin lies inside its range, every range has a pin, and each requirement file matches the part of
pyproject.toml it stands for (the base and the torch, cloud and test extras for
requirements.txt; the tpu and gpu extras for their files). The base and the tpu extra install
no torch and no test tools: as declared, and (slow, with network to the package index) as pip
resolves ``.[tpu]`` with everything they pull in."""

import json
import shutil
import subprocess
import sys
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.configs import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
EXTRAS = PROJECT["optional-dependencies"]

# Which part of pyproject.toml each pinned file stands for.
LOCKS = {
    "requirements.txt": ["dependencies", "torch", "cloud", "test"],
    "requirements-tpu.txt": ["tpu"],
    "requirements-gpu.txt": ["gpu"],
}


def _by_name(lines: list[str]) -> dict[str, Requirement]:
    reqs = {}
    for line in lines:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name not in reqs, f"{name} listed twice"
        reqs[name] = req
    return reqs


def _pins(file: str) -> dict[str, Requirement]:
    lines = (REPO / file).read_text().splitlines()
    return _by_name([s for line in lines if (s := line.split("#")[0].strip())])


def _ranges(parts: list[str]) -> dict[str, Requirement]:
    lines = []
    for part in parts:
        lines += PROJECT["dependencies"] if part == "dependencies" else EXTRAS[part]
    return _by_name(lines)


@pytest.mark.parametrize("file", sorted(LOCKS))
def test_pins_and_ranges_name_the_same_packages(file):
    pins, ranges = _pins(file), _ranges(LOCKS[file])
    assert sorted(pins) == sorted(ranges), (
        f"pinned in {file} only: {sorted(set(pins) - set(ranges))}; "
        f"in pyproject.toml {LOCKS[file]} only: {sorted(set(ranges) - set(pins))}"
    )


@pytest.mark.parametrize("file", sorted(LOCKS))
def test_every_pin_lies_in_its_range(file):
    pins, ranges = _pins(file), _ranges(LOCKS[file])
    for name, pin in pins.items():
        (spec,) = pin.specifier
        assert spec.operator == "==", f"{file}: {pin} is not an exact pin"
        assert ranges[name].specifier.contains(spec.version, prereleases=True), (
            f"{file} pins {pin}, outside pyproject.toml's {ranges[name]}"
        )
        assert pin.extras == ranges[name].extras, f"{name}: extras {pin.extras} vs {ranges[name]}"


def test_every_range_has_an_upper_bound_or_is_calendar_versioned():
    """Compatible ranges: a new major release (minor, below 1.0) is not taken unseen."""
    for name, req in _ranges([*EXTRAS, "dependencies"]).items():
        ops = {s.operator for s in req.specifier}
        lower = [s.version for s in req.specifier if s.operator in (">=", "~=")]
        assert lower, f"{req}: no lower bound"
        calendar = int(lower[0].split(".")[0]) >= 2000
        assert "<" in ops or "~=" in ops or calendar, f"{req}: no upper bound"


NOT_ON_A_TPU_VM = [
    "torch", "peft", "pytest", "pytest-xdist", "nbclient", "gcp-storage-emulator", "moto",
]  # fmt: skip


def test_the_base_installs_no_torch_and_no_test_tools():
    base = _ranges(["dependencies"])
    for name in [*NOT_ON_A_TPU_VM, "libtpu", "gcsfs", "s3fs"]:
        assert name not in base, f"{name} is in the base dependencies"
    tpu = _ranges(["dependencies", "tpu"])
    for name in NOT_ON_A_TPU_VM:
        assert name not in tpu, f"{name} is in the tpu extra"


# pip's words for an index it cannot reach (then the resolution says nothing about the package).
_NO_NETWORK = (
    "NewConnectionError", "Could not fetch URL", "Max retries exceeded",
    "Temporary failure in name resolution", "Network is unreachable",
)  # fmt: skip


@pytest.mark.slow  # a fresh venv and a full resolution: about 40 s with a warm index
def test_pip_resolves_the_tpu_extra_without_torch_or_test_tools(tmp_path):
    """``pip install --dry-run '.[tpu]'`` in a fresh venv, on a copy of the package (pip's
    metadata build writes an egg-info folder into the source): every package pip would install,
    dependencies of dependencies included."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "emollm_jax", source / "emollm_jax",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    subprocess.run([sys.executable, "-m", "venv", tmp_path / "venv"], check=True, timeout=120)
    report = tmp_path / "report.json"
    done = subprocess.run(
        [tmp_path / "venv/bin/pip", "install", "--dry-run", "--quiet", "--ignore-installed",
         "--report", report, f"{source}[tpu]"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if done.returncode != 0 and any(word in done.stderr for word in _NO_NETWORK):
        pytest.skip(f"no network to the package index: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr[-3000:]
    names = {
        canonicalize_name(item["metadata"]["name"])
        for item in json.loads(report.read_text())["install"]
    }
    assert {"emollm-jax", "jax", "libtpu"} <= names
    assert not names & set(NOT_ON_A_TPU_VM), sorted(names & set(NOT_ON_A_TPU_VM))
    assert not {n for n in names if n.startswith("nvidia-")}  # no CUDA wheels either


def test_the_console_script_points_at_the_dispatcher():
    module, _, function = PROJECT["scripts"]["emollm"].partition(":")
    from importlib import import_module

    assert callable(getattr(import_module(module), function))
