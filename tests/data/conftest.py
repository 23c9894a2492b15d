"""Fixtures of the data tests: one small mini EmoBench per session, and configs pointing at it."""

from pathlib import Path

import pytest

from emollm_jax.data.mini import make_mini_emobench
from tests.configs import load_config


@pytest.fixture(scope="session")
def mini_dir(small_emobench) -> Path:
    """The session's small mini EmoBench (tests/conftest.py builds it once for every folder)."""
    return small_emobench


@pytest.fixture(scope="session")
def full_mini_dir(tmp_path_factory):
    """The default-size mini EmoBench (seed 0)."""
    return make_mini_emobench.build(tmp_path_factory.mktemp("full_mini_emobench"))


def tiny_config():
    return load_config("llava_tiny")


@pytest.fixture
def data_config(mini_dir):
    """The tiny config reading the session's mini EmoBench, small batches, no worker processes."""
    c = tiny_config()
    c.data.dir = str(mini_dir)
    c.data.batch_size = 4
    c.data.eval_batch_size = 4
    c.data.prefetch_buffer = 4
    return c
