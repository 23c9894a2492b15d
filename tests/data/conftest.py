"""Fixtures of the data tests: one small mini EmoBench per session, and configs pointing at it."""

import importlib.util
import time
from pathlib import Path

import pytest

from emollm_jax.data import make_mini_emobench

# Small but with every task, both labels of each yes/no task, and a few videos per split.
MINI_SIZES = {"train": 48, "validation": 24, "test": 24}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def mini_dir(tmp_path_factory) -> Path:
    return make_mini_emobench.build(tmp_path_factory.mktemp("mini_emobench"), sizes=MINI_SIZES)


@pytest.fixture(scope="session")
def full_mini_dir(tmp_path_factory):
    """The default-size mini EmoBench (seed 0) and the seconds its build took."""
    start = time.perf_counter()
    out = make_mini_emobench.build(tmp_path_factory.mktemp("full_mini_emobench"))
    return out, time.perf_counter() - start


def tiny_config():
    spec = importlib.util.spec_from_file_location("llava_tiny", REPO / "configs" / "llava_tiny.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


@pytest.fixture
def data_config(mini_dir):
    """The tiny config reading the session's mini EmoBench, small batches, no worker processes."""
    c = tiny_config()
    c.data.dir = str(mini_dir)
    c.data.batch_size = 4
    c.data.eval_batch_size = 4
    c.data.prefetch_buffer = 4
    return c


@pytest.fixture(scope="session")
def tokenizer():
    from emollm_jax.data.pipeline import load_tokenizer

    return load_tokenizer("emollm_jax/assets/tokenizer")
