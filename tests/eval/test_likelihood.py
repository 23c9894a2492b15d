"""Option-likelihood scoring: choosing on hand-made numbers, the batched, sharded forward against
log-probabilities computed here with the plain unpadded forward pass, and both modes end to end
on a 12-record mini EmoBench."""

import json
import math

import jax
import numpy as np
import pytest

from emollm_jax.config.model import from_config_dict
from emollm_jax.data.mini import make_mini_emobench
from emollm_jax.data.pipeline import load_tokenizer, make_encoder, open_source
from emollm_jax.errors import ConfigError
from emollm_jax.eval.answers import parse_answer
from emollm_jax.eval.likelihood import LIKELIHOOD_TASKS, choose, likelihood_row
from emollm_jax.inference.likelihood_run import answer_text, option_record, without_end_token
from emollm_jax.inference.modes import check_modes, evaluate_modes
from emollm_jax.models.build import build_model
from emollm_jax.tasks import TASKS, labels_for
from tests.data.conftest import tiny_config

SIZES = {"train": 0, "validation": 0, "test": 12}  # two records per sub-task


def test_choose_sums_or_means_and_breaks_ties_to_the_first():
    # sums: -3.0 beats -3.5; per token: -3.5 / 5 = -0.7 beats -3.0 / 2 = -1.5
    assert choose([-3.0, -3.5], [2, 5]) == 0
    assert choose([-3.0, -3.5], [2, 5], norm="tokens") == 1
    assert choose([-1.0, -0.5, -0.5], [1, 1, 1]) == 1
    with pytest.raises(ValueError, match="likelihood_norm"):
        choose([-1.0], [1], norm="bytes")
    with pytest.raises(ValueError, match="one token count per option"):
        choose([-1.0, -2.0], [1])


def test_row_and_option_record():
    meta = {"id": "r1", "task": "hate", "answer": "no", "options": ["yes", "no"]}
    row = likelihood_row(meta, [-2.0, -0.25], [2, 2], "none", 7)
    assert (row["parsed"], row["gold"], row["checkpoint_step"]) == ("no", "no", 7)
    assert row["logprobs"] == [-2.0, -0.25] and row["tokens"] == [2, 2]
    record = {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}
    assert option_record(record, "yes")["conversations"][1]["value"] == "yes"
    assert record["conversations"][1]["value"] == "a"  # a copy was changed
    assert answer_text("joy", False) == "joy" and answer_text("joy", True) == "Answer: joy"


def test_end_token_dropped_for_answer_first():
    labels = np.array([-100, -100, 7, 8, 2, -100], np.int32)
    np.testing.assert_array_equal(without_end_token(labels), [-100, -100, 7, 8, -100, -100])
    assert labels[4] == 2  # a copy
    # what generation makes of an answer-first reply: the answer line decides
    reply = "Answer: fear\nThe mouth is happy, not fearful."
    assert parse_answer(reply, "emotion_closed", ["joy", "fear"]) == "fear"


def test_modes_are_checked():
    c = tiny_config()
    c.eval.modes = ("generate", "beam")
    with pytest.raises(ConfigError, match="config.eval.modes"):
        check_modes(c.eval)
    c.eval.modes = ()
    with pytest.raises(ConfigError, match="config.eval.modes"):
        check_modes(c.eval)
    c.eval.modes = ("likelihood",)
    assert check_modes(c.eval) == ("likelihood",)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("likelihood")
    data = make_mini_emobench.build(root / "data", sizes=SIZES)
    c = tiny_config()
    c.data.dir = str(data)
    c.data.eval_batch_size = 4
    c.data.prefetch_buffer = 4
    c.eval.max_new_tokens = 4
    c.eval.plots = False
    c.eval.model_name = "tiny"
    model = build_model(from_config_dict(c.model), 0)
    result = evaluate_modes(c, str(root / "ckpt"), "test", str(root / "out"), model=model)
    return c, model, result


def _plain_logprob(model, config, tokenizer, record, option) -> tuple[float, int]:
    """log p(" <option></s>" | eval prompt), one unpadded row through the model's forward."""
    prompt = make_encoder(config, "eval", tokenizer=tokenizer)(record)
    target = tokenizer(f" {option}{tokenizer.eos_token}", add_special_tokens=False)["input_ids"]
    ids = np.concatenate([prompt["input_ids"], np.asarray(target, np.int32)])[None]
    logits = model(
        ids,
        pixel_values=prompt["pixel_values"][None],
        frame_media=prompt["frame_media"][None],
    )
    logp = jax.nn.log_softmax(np.asarray(logits[0], np.float64), axis=-1)
    start = len(prompt["input_ids"])
    total = sum(float(logp[start + k - 1, t]) for k, t in enumerate(target))
    return total, len(target)


@pytest.mark.slow  # the set-up generates and scores (~35 s), the plain forward runs eagerly
def test_likelihoods_match_the_plain_forward_pass(setup):
    config, model, result = setup
    rows = {row["id"]: row for row in result.likelihood.rows}
    tokenizer = load_tokenizer(config.data.tokenizer)
    records = [r for r in open_source(config.data, "test") if r["task"] in LIKELIHOOD_TASKS]
    assert len(rows) == len(records) == 10
    for record in records[:3]:  # close-set emotion has 4 options, yes/no 2
        row = rows[record["id"]]
        assert row["options"] == list(labels_for(record["task"], record.get("options")))
        expected = [_plain_logprob(model, config, tokenizer, record, o) for o in row["options"]]
        np.testing.assert_allclose(row["logprobs"], [lp for lp, _ in expected], atol=1e-3)
        assert row["tokens"] == [n for _, n in expected]
        best = max(range(len(expected)), key=lambda i: expected[i][0])
        assert row["parsed"] == row["options"][best]


@pytest.mark.slow
def test_both_modes_reported(setup):
    config, _, result = setup
    lik, gen = result.likelihood.metrics, result.generate.metrics
    assert lik.missing == ("emotion_open",) and lik.unparsed == 0 and lik.n == 10
    assert gen.n == 12 and set(gen.tasks) == set(TASKS)
    assert "| tiny |" in result.table and "| tiny (likelihood) |" in result.table
    assert "likelihood: Mean over 5 of 6 sub-tasks; missing: emotion_open." in result.table
    out = result.out_dir / "likelihood"
    stored = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert stored == result.likelihood.rows
    document = json.loads((out / "results.json").read_text())
    assert document["meta"]["mode"] == "likelihood"
    accuracy = sum(r["parsed"] == r["gold"] for r in stored if r["task"] == "hate") / 2
    assert math.isclose(document["metrics"]["tasks"]["hate"]["accuracy"], accuracy)
