"""Typed config sections: the base config is their defaults, every shipped config builds, a bad
key, type or value names the field, and ``emollm config show`` / ``--help-config`` list every
field with its default and meaning."""

import dataclasses
import pathlib

import pytest

from emollm_jax.cli.main import main as emollm
from emollm_jax.config.base import base_config
from emollm_jax.config.section import defaults
from emollm_jax.config.sections import SECTIONS, Sections, build_sections, fields
from emollm_jax.errors import ConfigError
from tests.configs import REPO, load_config

CONFIGS = sorted(p.stem for p in pathlib.Path(REPO / "configs").glob("*.py"))


def test_the_base_config_is_the_sections_defaults():
    base = base_config()
    assert set(base) == {"seed", "model", *SECTIONS}
    assert [f.name for f in dataclasses.fields(Sections)] == list(SECTIONS)
    for name, cls in SECTIONS.items():
        assert base[name].to_dict() == defaults(cls), name
    built = build_sections(base)
    assert built.train.steps == 300 and built.train.profile.num_steps == 0
    assert built.mesh.rules is None and built.mesh.shape == {"data": -1, "fsdp": 1, "tensor": 1}
    base.mesh.rules = {"vocab": None}  # the placeholder takes a dict
    assert build_sections(base).mesh.rules == {"vocab": None}


def test_every_field_has_a_meaning():
    rows = list(fields())
    assert len(rows) > 70
    assert ("train.profile.num_steps", "int", 0) in [r[:3] for r in rows]
    assert [path for path, _, _, meaning in rows if not meaning.strip()] == []


@pytest.mark.parametrize("name", CONFIGS)
def test_every_shipped_config_builds(name):
    build_sections(load_config(name))


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        ("train", "stepz", 4, r"^config\.train\.stepz: no such field \(did you mean steps\?\)$"),
        ("checkpoint", "every_steps", 0,
         r"^config\.checkpoint\.every_steps: must be a positive int, got 0$"),
        ("log", "every_steps", -1, r"^config\.log\.every_steps: must be a positive int, got -1$"),
        ("data", "batch_size", "8", r"^config\.data\.batch_size: must be an int, got '8'$"),
        ("data", "source", "csv",
         r"^config\.data\.source: 'csv' is not one of \('jsonl', 'tfds'\)$"),
        ("train", "train_vision", 1, r"^config\.train\.train_vision: must be a bool, got 1$"),
        ("distributed", "initialize", "yes", r"^config\.distributed\.initialize: 'yes' is not one"),
        ("emoprompt", "rationale_position", "middle", r"^config\.emoprompt\.rationale_position: "),
    ],
)  # fmt: skip
def test_a_bad_key_or_value_names_the_field(section, key, value, message):
    config = base_config().to_dict()
    config[section][key] = value
    with pytest.raises(ConfigError, match=message):
        build_sections(config)


def test_a_nested_section_names_its_path():
    config = base_config().to_dict()
    config["train"]["profile"]["num_step"] = 2
    with pytest.raises(ConfigError, match=r"config\.train\.profile\.num_step: no such field"):
        build_sections(config)


def test_a_float_field_takes_an_int_and_a_tuple_field_a_list():
    config = base_config().to_dict()
    config["train"]["learning_rate"] = 1
    config["data"]["seq_buckets"] = [64]
    built = build_sections(config)
    assert built.train.learning_rate == 1.0 and isinstance(built.train.learning_rate, float)
    assert built.data.seq_buckets == (64,)


@pytest.mark.parametrize("args", [["config", "show"], ["train", "--help-config"]])
def test_config_show_lists_every_field_with_default_and_meaning(args, capsys):
    assert emollm(args) == 0
    out = capsys.readouterr().out
    for path, _, default, meaning in fields():
        assert f"config.{path} " in out and meaning in out
    assert "default 300" in out.split("config.train.steps ", 1)[1].splitlines()[0]
