"""Fixtures of the EmoLLM tests: a small mini EmoBench per session and the tiny configs."""

from pathlib import Path

import pytest

from emollm_jax.data.mini import make_mini_emobench
from tests.configs import REPO, load_config  # noqa: F401 (the EmoLLM tests import them here)

# Every task, and (30% of the emotion records) a few videos per split.
MINI_SIZES = {"train": 36, "validation": 12, "test": 12}


@pytest.fixture(scope="session")
def mini_dir(tmp_path_factory) -> Path:
    return make_mini_emobench.build(tmp_path_factory.mktemp("mini_emobench"), sizes=MINI_SIZES)


@pytest.fixture(scope="session")
def tokenizer():
    from emollm_jax.data.pipeline import load_tokenizer

    return load_tokenizer("emollm_jax/assets/tokenizer")
