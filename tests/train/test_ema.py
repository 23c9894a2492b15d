"""``train.ema_decay``: a moving average of the learning parameters kept beside them. It leaves
training's own trajectory untouched, follows its warmed-up formula step by step, is saved and
resumed bit for bit, and is what evaluation (``restore_model``) and export (``ParamsReader``)
read by default."""

import jax
import ml_collections
import numpy as np
import pytest
from flax import nnx

from emollm_jax.checkpoint.restore import restore_model, weights_read
from emollm_jax.config.model import from_config_dict
from emollm_jax.convert.model_card import card
from emollm_jax.convert.orbax_stream import ParamsReader
from emollm_jax.errors import ConfigError
from emollm_jax.inference.run import evaluated_weights
from emollm_jax.train.loop import Trainer
from tests.train.helpers import train_config

DECAY = 0.8
STEPS = 4


def _flat(state) -> dict:
    return {
        "/".join(map(str, p)): np.asarray(v.get_value() if hasattr(v, "get_value") else v)
        for p, v in nnx.to_flat_state(state)
    }


def _trainable(model, keys) -> dict:
    every = _flat(nnx.state(model, nnx.Param))
    return {k: every[k] for k in keys}


def _train(workdir, data_dir, steps=STEPS, **overrides):
    """Train up to step ``steps``: the learning parameters at the start and after each step,
    and the trainer's state at the end."""
    config = train_config(data_dir, **{"train.steps": STEPS, **overrides})
    trainer = Trainer(config, workdir, devices=jax.devices()[:1])
    start = _flat(jax.device_get(trainer.state.trainable))
    after = []
    while trainer.step < steps:
        trainer.train_step(next(trainer.iterator))
        after.append(_flat(jax.device_get(trainer.state.trainable)))
        if trainer.step == 2:
            trainer.save(wait=True)  # what a resume from step 2 starts from
    trainer.save(wait=True)
    state = jax.device_get(trainer.state)
    trainer.close()
    return start, after, state


def test_moving_average_follows_its_formula_is_saved_resumed_and_restored(tmp_path, small_emobench):
    _, plain, plain_state = _train(tmp_path / "plain", small_emobench)
    run = tmp_path / "ema"
    every = {"train.ema_decay": DECAY}
    start, after, state = _train(run, small_emobench, **every)
    assert plain_state.ema is None
    # Training itself is untouched: the same parameters after every step, bit for bit.
    for mine, theirs in zip(after, plain, strict=True):
        assert mine.keys() == theirs.keys()
        for k in mine:
            np.testing.assert_array_equal(mine[k], theirs[k], err_msg=k)
    # The average, step by step: d_s = min(decay, (1 + s) / (10 + s)), from the initial weights.
    expected = {k: v.astype(np.float64) for k, v in start.items()}
    for s, params in enumerate(after):
        d = min(DECAY, (1 + s) / (10 + s))
        expected = {k: d * expected[k] + (1 - d) * params[k] for k in expected}
    ema = _flat(state.ema)
    assert ema.keys() == expected.keys() == after[-1].keys()
    for k in ema:
        np.testing.assert_allclose(ema[k], expected[k], rtol=1e-5, atol=1e-7, err_msg=k)
    # Not the parameters (else the test below could not tell them apart).
    assert any(not np.allclose(ema[k], after[-1][k]) for k in ema)

    # Resumed from step 2, it ends where the uninterrupted run did, bit for bit.
    _, _, resumed = _train(run, small_emobench, **every, **{"train.resume_step": 2})
    for k, v in _flat(resumed.ema).items():
        np.testing.assert_array_equal(v, ema[k], err_msg=k)

    # restore_model reads the average by default (the frozen weights are the parameters), the
    # parameters when asked; a run without an average gives its parameters, and refuses "ema".
    keys = list(ema)
    for weights, want in (("auto", ema), ("ema", ema), ("params", after[-1])):
        got = _trainable(restore_model(run, weights=weights), keys)
        for k in keys:
            np.testing.assert_array_equal(got[k], want[k], err_msg=f"{weights}: {k}")
    frozen = _flat(jax.device_get(state.frozen))
    restored = _flat(nnx.state(restore_model(run), nnx.Param))
    for k, v in frozen.items():
        np.testing.assert_array_equal(restored[k], v, err_msg=k)
    got = _trainable(restore_model(tmp_path / "plain"), keys)
    for k in keys:
        np.testing.assert_array_equal(got[k], plain[-1][k], err_msg=k)
    with pytest.raises(ConfigError, match="eval.weights.*keeps no moving average"):
        restore_model(tmp_path / "plain", weights="ema")

    # The export's streamed reader picks the same weights.
    for weights, want in (("auto", ema), ("params", after[-1])):
        reader = ParamsReader(run, weights=weights)
        for k in keys:
            np.testing.assert_array_equal(reader.read(k), want[k], err_msg=f"{weights}: {k}")
    assert set(ParamsReader(run).leaves) == set(restored)  # frozen leaves from the parameters
    with pytest.raises(FileNotFoundError, match="keeps no moving average"):
        ParamsReader(tmp_path / "plain", weights="ema")

    # What was read is said: in evaluation results (weights_read) and on the export's card.
    step = ParamsReader(run).step
    assert [weights_read(run, step, w) for w in ("auto", "ema", "params")] == [
        "ema", "ema", "params"
    ]  # fmt: skip
    assert weights_read(tmp_path / "plain", step) == "params"
    config = ml_collections.ConfigDict({"eval": {"weights": "auto"}})
    said = [evaluated_weights(run, config, s) for s in (step, None)]
    assert said + [evaluated_weights(tmp_path / "plain", config, step)] == [
        "ema", "unknown", "params"
    ]  # fmt: skip
    assert [ParamsReader(p).weights for p in (run, tmp_path / "plain")] == ["ema", "params"]
    for reader, said in (
        (ParamsReader(run), "moving average"),
        (ParamsReader(run, weights="params"), "parameters at that step"),
    ):
        text = card(
            from_config_dict(reader.meta["model"]), reader.meta, run, "out", 1, reader.weights
        )
        assert f"- exported weights: the {said}" in text
