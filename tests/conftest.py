"""Test-wide set-up: 8 fake CPU devices (set before jax is imported) and tiny HF fixtures."""

import json
import os

# Tiny test models spend far longer compiling than running: -O0 compiles 2-4x faster.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "")
    + " --xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import jax  # noqa: E402

jax.config.update("jax_default_matmul_precision", "highest")


import pathlib  # noqa: E402

import pytest  # noqa: E402

from tests.configs import REPO, load_config  # noqa: E402, F401


@pytest.fixture(scope="session")
def small_emobench(tmp_path_factory) -> pathlib.Path:
    """A small mini EmoBench (every task, images and videos), built once per test session."""
    from emollm_jax.data.mini import make_mini_emobench

    # Small but with every task, both labels of each yes/no task, and a few videos per split.
    sizes = {"train": 48, "validation": 24, "test": 24}
    return make_mini_emobench.build(tmp_path_factory.mktemp("small_emobench"), sizes=sizes)


@pytest.fixture(scope="session")
def mini_dir(tmp_path_factory) -> pathlib.Path:
    """A smaller mini EmoBench for the config, EmoPrompt and annotate tests: every task, and (30%
    of the emotion records) a few videos per split. ``tests/data/`` overrides it with
    ``small_emobench``."""
    from emollm_jax.data.mini import make_mini_emobench

    sizes = {"train": 36, "validation": 12, "test": 12}
    return make_mini_emobench.build(tmp_path_factory.mktemp("mini_emobench"), sizes=sizes)


@pytest.fixture(scope="session")
def uninterrupted_pair(tmp_path_factory, small_emobench) -> dict:
    """Two JAX processes (4 CPU devices each) that trained ``STEPS`` steps of
    ``tests/checkpoint/test_checkpoint_tiers.py`` without interruption, saving every
    ``PERSISTENT_EVERY``: the run folder (copy it before changing it), its losses, and the
    compilation cache later pairs load the step from. Trained once per test run: the xdist
    workers share it through a folder beside their own, the first to ask training it under a
    file lock while the others wait."""
    from filelock import FileLock

    from tests.checkpoint.test_checkpoint_tiers import (
        PERSISTENT_EVERY,
        STEPS,
        _finish,
        _losses,
        _pair,
    )

    # The parent of every worker's base folder (the base folder itself without xdist).
    root = tmp_path_factory.getbasetemp()
    root = (root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root) / "uninterrupted_pair"
    cache, workdir, done = root / "jax_cache", root / "run", root / "losses.json"
    with FileLock(f"{root}.lock"):
        if not done.exists():
            every = f"--config.checkpoint.every_steps={PERSISTENT_EVERY}"
            _finish(_pair(workdir, small_emobench, every, cache=cache))
            done.write_text(json.dumps(_losses(workdir)))
    losses = {int(step): loss for step, loss in json.loads(done.read_text()).items()}
    assert sorted(losses) == list(range(1, STEPS + 1))
    return {"workdir": workdir, "losses": losses, "cache": cache}


@pytest.fixture(scope="session")
def tokenizer():
    """The shipped tokenizer, loaded once per session."""
    from emollm_jax.data.pipeline import load_tokenizer

    return load_tokenizer("emollm_jax/assets/tokenizer")


# Full-size (7B) ahead-of-time compiles take minutes each on a 2-core machine: they run when
# asked for (-m full_size, or EMOLLM_FULL_SIZE=1) and are skipped, saying so, otherwise.
FULL_SIZE = "full_size"


def pytest_collection_modifyitems(config, items):
    asked = FULL_SIZE in (config.getoption("markexpr") or "")
    if asked or os.environ.get("EMOLLM_FULL_SIZE") == "1":
        return
    skip = pytest.mark.skip(
        reason="full-size compile (minutes on 2 cores): run with -m full_size or EMOLLM_FULL_SIZE=1"
    )
    for item in items:
        if FULL_SIZE in item.keywords:
            item.add_marker(skip)
