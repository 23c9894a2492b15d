"""``train.vision_seed`` and ``train.llm_seed``: a fresh vision tower or language model drawn
from its own seed, the same in every run (as a pretrained part would be), while the rest of the
model follows ``config.seed``."""

import numpy as np
import pytest
from flax import nnx

from emollm_jax.config.model import from_config_dict
from emollm_jax.models.build import build_model
from emollm_jax.train.loop import _initial_model
from tests.configs import load_config


def _flat(model):
    state = nnx.state(model, nnx.Param)
    return {"/".join(map(str, p)): np.asarray(v.get_value()) for p, v in nnx.to_flat_state(state)}


def _initial(seed: int, **part_seeds):
    config = load_config("llava_tiny")
    config.seed = seed
    # The tiny presets fix the vision tower: start from "every part follows config.seed".
    for field, value in ({"vision_seed": -1, "llm_seed": -1} | part_seeds).items():
        config.train[field] = value
    return _flat(_initial_model(config, from_config_dict(config.model), None, ()))


@pytest.fixture(scope="module")
def default():
    return _flat(build_model(from_config_dict(load_config("llava_tiny").model), 1))


@pytest.mark.parametrize(
    "field, prefix", [("vision_seed", "vision_tower/"), ("llm_seed", "language_model/")]
)
def test_the_part_follows_its_seed_and_the_rest_config_seed(default, field, prefix):
    # -1 (the default) and a part seed equal to config.seed give build_model's weights, bit
    # for bit.
    for part_seed in (-1, 1):
        got = _initial(1, **{field: part_seed})
        assert got.keys() == default.keys()
        for k in default:
            np.testing.assert_array_equal(got[k], default[k], err_msg=k)
    a, b = _initial(1, **{field: 7}), _initial(2, **{field: 7})
    part = [k for k in default if k.startswith(prefix)]
    rest = [k for k in default if not k.startswith(prefix)]
    assert part and rest
    # Two seeds, one part seed: the same part ...
    for k in part:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # ... and it is part seed 7's, not seed 1's; the rest is each run's own.
    assert any(not np.array_equal(a[k], default[k]) for k in part)
    for k in rest:
        np.testing.assert_array_equal(a[k], default[k], err_msg=k)
    assert any(not np.array_equal(a[k], b[k]) for k in rest)


def test_both_seeds_fix_both_parts_and_leave_the_projector_to_config_seed(default):
    a = _initial(1, vision_seed=7, llm_seed=8)
    b = _initial(2, vision_seed=7, llm_seed=8)
    fixed = [k for k in default if k.startswith(("vision_tower/", "language_model/"))]
    projector = [k for k in default if k.startswith("projector/")]
    assert fixed and projector
    for k in fixed:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    for k in projector:
        np.testing.assert_array_equal(a[k], default[k], err_msg=k)
    assert any(not np.array_equal(a[k], b[k]) for k in projector)
