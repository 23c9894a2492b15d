"""``train.vision_seed`` and ``train.llm_seed``: a fresh vision tower or language model drawn
from its own seed, the same in every run (as a pretrained part would be), while the rest of the
model follows ``config.seed``."""

import numpy as np
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


def test_each_part_follows_its_own_seed_and_the_rest_config_seed():
    default = _flat(build_model(from_config_dict(load_config("llava_tiny").model), 1))
    tower = [k for k in default if k.startswith("vision_tower/")]
    llm = [k for k in default if k.startswith("language_model/")]
    projector = [k for k in default if k.startswith("projector/")]
    assert tower and llm and projector and len(tower) + len(llm) + len(projector) == len(default)
    # -1 (the default) and part seeds equal to config.seed give build_model's weights, bit for
    # bit.
    for got in (_initial(1), _initial(1, vision_seed=1, llm_seed=1)):
        assert got.keys() == default.keys()
        for k in default:
            np.testing.assert_array_equal(got[k], default[k], err_msg=k)
    a = _initial(1, vision_seed=7, llm_seed=8)
    b = _initial(2, vision_seed=7, llm_seed=8)
    # Two seeds, fixed part seeds: the same tower and LLM, not seed 1's; the projector is each
    # run's own, seed 1's in run a.
    for k in tower + llm:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert any(not np.array_equal(a[k], default[k]) for k in tower)
    assert any(not np.array_equal(a[k], default[k]) for k in llm)
    for k in projector:
        np.testing.assert_array_equal(a[k], default[k], err_msg=k)
    assert any(not np.array_equal(a[k], b[k]) for k in projector)
    # Only the LLM fixed: the tower follows config.seed, and the LLM is llm seed 8's, as in a.
    c = _initial(1, llm_seed=8)
    for k in tower + projector:
        np.testing.assert_array_equal(c[k], default[k], err_msg=k)
    for k in llm:
        np.testing.assert_array_equal(c[k], a[k], err_msg=k)
