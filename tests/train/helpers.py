"""Configs for training tests: the tiny LLaVA on the session's small mini EmoBench, one batch
shape (so each test compiles one step), no TensorBoard."""

import os
import subprocess
import sys
import time

from tests.configs import REPO, load_config


def train_config(data_dir, **overrides):
    c = load_config("llava_tiny")
    c.data.dir = str(data_dir)
    c.data.batch_size = 8
    c.data.seq_buckets = (256,)
    c.data.frame_buckets = (8,)
    c.data.prefetch_buffer = 2
    c.data.read_threads = 1
    c.train.steps = 6
    c.train.warmup_steps = 2
    c.log.every_steps = 1
    c.log.tensorboard = False
    c.log.progress_bar = "off"
    c.checkpoint.every_steps = 2
    for key, value in overrides.items():
        node = c
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return c


def shared_compile_cache(cache_dir) -> dict[str, str]:
    """Environment variables under which JAX processes share compiled programs through JAX's
    persistent cache in ``cache_dir``: runs of one program after the first load it instead of
    compiling it again (a different program, or one changed by a bug, misses and compiles)."""
    return {
        "JAX_COMPILATION_CACHE_DIR": str(cache_dir),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",  # the tiny models compile in < 1 s
    }


def train_command(workdir, data_dir, *extra, steps: int = 8) -> list[str]:
    """``python -m emollm_jax.train`` on the tiny LLaVA with ``train_config``'s data settings;
    a ``--config.x=v`` in ``extra`` replaces the default one (absl keeps the first). The
    learning rate is the tests' own, not the preset's: the elastic-resume test needs every
    step to move the loss by far more than its tolerance, a property of this trajectory."""
    defaults = {
        "--config.train.learning_rate": 1e-3,
        "--config.data.dir": data_dir,
        "--config.data.batch_size": 8,
        "--config.data.seq_buckets": "(256,)",
        "--config.data.frame_buckets": "(8,)",
        "--config.data.read_threads": 1,
        "--config.train.steps": steps,
        "--config.train.warmup_steps": 2,
        "--config.log.every_steps": 1,
        "--config.log.tensorboard": False,
    }
    extra_keys = {e.split("=", 1)[0] for e in extra}
    return [
        sys.executable,
        "-m",
        "emollm_jax.train",
        "--config",
        str(REPO / "configs/llava_tiny.py"),
        "--workdir",
        str(workdir),
        *(f"{k}={v}" for k, v in defaults.items() if k not in extra_keys),
        *extra,
    ]


def start_training(
    workdir, data_dir, *extra, steps: int = 8, env: dict | None = None
) -> subprocess.Popen:
    """A training subprocess, stdout and stderr merged into ``proc.stdout``; ``env``: variables
    set on top of this process's environment."""
    return subprocess.Popen(
        train_command(workdir, data_dir, *extra, steps=steps),
        cwd=REPO,
        env=None if env is None else {**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(predicate, proc, timeout=300, poll=0.005):
    """Poll ``predicate`` until true (True), ``proc`` ends or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(poll)
    return False
