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
    # configs/lm.py is a bare decoder LM (text only); every other config is a LLaVA.
    assert from_config_dict(load_config(name).model).arch == ("llama" if name == "lm" else "llava")


@pytest.mark.parametrize("model", ["llama2-7b", "llama3.1-8b", "mistral-7b", "llama3.1-70b", "16b", "32b"])
def test_lm_presets_have_the_published_parameter_counts(model):
    """The published models' sizes (billions): LLaMA 2 7B 6.74, Llama 3.1 8B 8.03, Mistral 7B
    7.24, Llama 3.1 70B 70.55; MaxText's synthetic 16B and 32B 16.27 and 32.55."""
    expected = {"llama2-7b": 6.738, "llama3.1-8b": 8.030, "mistral-7b": 7.242,
                "llama3.1-70b": 70.554, "16b": 16.274, "32b": 32.548}[model]  # fmt: skip
    cfg = from_config_dict(load_config("lm", f"model={model}").model)
    n = sum(math.prod(x.shape) for x in jax.tree.leaves(nnx.state(abstract_model(cfg))))
    assert abs(n / 1e9 - expected) < 0.001
    tiny = from_config_dict(load_config("lm", f"model={model},runlocal=True").model)
    assert tiny.text.gated_mlp == cfg.text.gated_mlp and tiny.text.hidden_act == cfg.text.hidden_act


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
