"""Fixtures of the EmoLLM tests: a small mini EmoBench per session and the tiny configs."""

import importlib.util
from pathlib import Path

import pytest

from emollm_jax.data import make_mini_emobench

REPO = Path(__file__).resolve().parents[2]
# Every task, and (30% of the emotion records) a few videos per split.
MINI_SIZES = {"train": 36, "validation": 12, "test": 12}


def load_config(name: str, arg: str | None = None):
    """``configs/<name>.py``'s ``get_config(arg)``, as ``--config configs/<name>.py:<arg>``."""
    spec = importlib.util.spec_from_file_location(name, REPO / "configs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


@pytest.fixture(scope="session")
def mini_dir(tmp_path_factory) -> Path:
    return make_mini_emobench.build(tmp_path_factory.mktemp("mini_emobench"), sizes=MINI_SIZES)


@pytest.fixture(scope="session")
def tokenizer():
    from emollm_jax.data.pipeline import load_tokenizer

    return load_tokenizer("emollm_jax/assets/tokenizer")
