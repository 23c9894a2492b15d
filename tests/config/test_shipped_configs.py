"""Configs: every shipped config validates; a bad field fails at start-up, naming the field."""

import math
import pathlib
import pickle

import jax
import pytest
from flax import nnx

from emollm_jax.config.model import from_config_dict
from emollm_jax.errors import ConfigError
from emollm_jax.models.build import abstract_model
from tests.configs import REPO, load_config

CONFIGS = sorted(p.stem for p in pathlib.Path(REPO / "configs").glob("*.py"))


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_validates(name):
    assert from_config_dict(load_config(name).model).arch == "llava"


def test_llava_7b_has_the_shapes_of_llava_1_5_7b():
    model = abstract_model(from_config_dict(load_config("llava_7b").model))
    n = sum(math.prod(x.shape) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    assert n == 7_063_427_072  # llava-hf/llava-1.5-7b-hf's parameter count


@pytest.mark.parametrize(
    "field, value, message",
    [
        (
            "text.num_kv_heads",
            3,
            r"config\.model\.text\.num_kv_heads: num_heads 4 is not divisible",
        ),
        ("vision.patch_size", 15, r"config\.model\.vision\.patch_size: image_size 64"),
        ("image_token_id", 5000, r"config\.model\.image_token_id: 5000 is outside"),
        ("vision_feature_layer", -7, r"config\.model\.vision_feature_layer: -7 is outside"),
        ("dtype", "float8", r"config\.model\.dtype: 'float8'"),
        ("text.hidden_size", "64", r"config\.model\.text\.hidden_size: expected an int"),
        ("text.rope_thetta", 1.0, r"config\.model\.text\.rope_thetta: unknown field"),
        ("lora.rank", -1, r"config\.model\.lora\.rank: must be >= 0"),
    ],
)
def test_bad_model_field_is_named(field, value, message):
    values = load_config("llava_tiny").model.to_dict()
    node = values
    *parents, leaf = field.split(".")
    for p in parents:
        node = node[p]
    node[leaf] = value
    with pytest.raises(ConfigError, match=message):
        from_config_dict(values)


def test_config_error_carries_field_value_and_expected_across_processes():
    error = ConfigError("train.steps", value=0, expected="positive")
    assert str(error) == "config.train.steps: must be positive, got 0"
    assert (error.field, error.value, error.expected) == ("train.steps", 0, "positive")
    back = pickle.loads(pickle.dumps(error))  # as a data worker hands it back
    assert type(back) is ConfigError and str(back) == str(error)
    assert (back.field, back.value, back.expected) == ("train.steps", 0, "positive")
    choice = ConfigError.not_one_of("data.source", "csv", ["jsonl", "tfds"])
    assert str(choice) == "config.data.source: 'csv' is not one of ('jsonl', 'tfds')"
    assert choice.expected == "one of ('jsonl', 'tfds')"
    whole = ConfigError("config.eval.top_p: must be in (0, 1], got 2")  # a preformatted message
    assert (whole.field, whole.problem) == ("eval.top_p", "must be in (0, 1], got 2")
    assert str(whole) == "config.eval.top_p: must be in (0, 1], got 2"
