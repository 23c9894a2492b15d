"""``train.vision_seed``: a fresh vision tower drawn from its own seed, the same in every run
(as a pretrained tower would be), while the rest of the model follows ``config.seed``."""

import numpy as np
from flax import nnx

from emollm_jax.config.model import from_config_dict
from emollm_jax.models.build import build_model
from emollm_jax.train.loop import _initial_model
from tests.configs import load_config


def _flat(model):
    state = nnx.state(model, nnx.Param)
    return {"/".join(map(str, p)): np.asarray(v.get_value()) for p, v in nnx.to_flat_state(state)}


def _initial(seed: int, vision_seed: int):
    config = load_config("llava_tiny")
    config.seed = seed
    config.train.vision_seed = vision_seed
    return _flat(_initial_model(config, from_config_dict(config.model), None, ()))


def test_the_tower_follows_vision_seed_and_the_rest_config_seed():
    cfg = from_config_dict(load_config("llava_tiny").model)
    default = _flat(build_model(cfg, 1))
    # -1 (the default) and vision_seed == seed both give build_model's weights, bit for bit.
    for vision_seed in (-1, 1):
        got = _initial(1, vision_seed)
        assert got.keys() == default.keys()
        for k in default:
            np.testing.assert_array_equal(got[k], default[k], err_msg=k)
    a, b = _initial(1, 7), _initial(2, 7)
    tower = [k for k in default if k.startswith("vision_tower/")]
    rest = [k for k in default if not k.startswith("vision_tower/")]
    assert tower and rest
    # Two seeds, one vision seed: the same tower ...
    for k in tower:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # ... and it is vision seed 7's, not seed 1's; the rest is each run's own.
    assert any(not np.array_equal(a[k], default[k]) for k in tower)
    for k in rest:
        np.testing.assert_array_equal(a[k], default[k], err_msg=k)
    assert any(not np.array_equal(a[k], b[k]) for k in rest)
