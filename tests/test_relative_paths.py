"""Every path argument works relative to the working directory as well as absolute: convert in
both directions (with --verify), training (workdir, data dir, init_from) and evaluation
(checkpoint, data dir, output folder). Orbax itself takes only absolute paths."""

import os

import numpy as np
import pytest

from emollm_jax.convert import cli
from emollm_jax.convert.safetensors_io import TensorSource
from tests import hf_models
from tests.train.helpers import train_config


def test_convert_both_ways_with_relative_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    hf_models.save(hf_models.llava(), "src")
    assert cli.main(["hf-to-orbax", "src", "orbax"]) == 0
    assert cli.main(["orbax-to-hf", "orbax", "export/main", "--verify"]) == 0
    before, after = dict(TensorSource("src").items()), dict(TensorSource("export/main").items())
    assert sorted(before) == sorted(after)
    for name, value in before.items():
        assert np.array_equal(value, after[name]), name


@pytest.mark.slow
def test_train_and_evaluate_with_relative_paths(tmp_path, monkeypatch, small_emobench):
    from emollm_jax.inference.run import evaluate
    from emollm_jax.train.loop import Trainer

    monkeypatch.chdir(tmp_path)
    data = os.path.relpath(small_emobench, tmp_path)
    cfg = train_config(data, **{"train.steps": 1})
    trainer = Trainer(cfg, "runs/first")
    try:
        trainer.train()
    finally:
        trainer.close()
    # A second run starting from the first one's weights, named relatively.
    cfg = train_config(data, **{"train.steps": 1, "train.init_from": "runs/first"})
    trainer = Trainer(cfg, "runs/second")
    try:
        trainer.train()
    finally:
        trainer.close()
    assert (tmp_path / "runs" / "second" / "checkpoints" / "1").is_dir()
    cfg.data.eval_batch_size = 4
    cfg.eval.limit = 4
    cfg.eval.max_new_tokens = 4
    cfg.eval.plots = False
    result = evaluate(cfg, "runs/second", "test", "eval/second")
    assert result.paths and (tmp_path / "eval" / "second" / "results.json").is_file()
