"""EmoPrompt's ablation levers: a rationale-token loss weight and bare-label records mixed into
training, checked on built examples and batches."""

import copy
import itertools

import numpy as np
import pytest

from emollm_jax.data import pipeline, records
from emollm_jax.emoprompt.hook import EmoPromptHook, make_prompt_hook
from emollm_jax.errors import ConfigError
from tests.configs import load_config
from tests.emoprompt.test_emoprompt import CLOSED


def _config(mini_dir, **emoprompt):
    c = load_config("emollm_tiny", "emoprompt")
    c.data.dir = str(mini_dir)
    c.data.batch_size = 4
    c.data.prefetch_buffer = 4
    for key, value in emoprompt.items():
        c.emoprompt[key] = value
    return c


def _weighted_example(config, tokenizer, record):
    hook = make_prompt_hook(config, "train")
    encoder = pipeline.make_encoder(config, "train", tokenizer=tokenizer, prompt_hook=hook)
    return encoder(record)


@pytest.mark.parametrize("position", ["before_answer", "after_answer"])
def test_rationale_tokens_weigh_what_is_configured_and_the_answer_one(
    mini_dir, tokenizer, position
):
    c = _config(mini_dir, rationale_loss_weight=0.3, rationale_position=position)
    record = records.read_split(mini_dir, "train", max_pixels=None)[0][0]
    ex = _weighted_example(c, tokenizer, record)
    ids, labels, w = ex["input_ids"], ex["labels"], ex["loss_weights"]
    assert w.shape == ids.shape and w.dtype == np.float32
    target = labels != -100
    assert (w[~target] == 0).all() and (w[target] > 0).all()
    low, full = target & np.isclose(w, 0.3), target & (w == 1.0)
    assert (low | full).sum() == target.sum()
    rationale = record["rationale"].strip()
    assert tokenizer.decode(ids[low]).strip() == rationale
    answer = tokenizer.decode(ids[full])
    assert f"Answer: {record['answer']}" in answer and rationale not in answer
    assert answer.endswith("</s>")  # the end of turn keeps its full weight
    # weight 1 emits no weights at all: the batch is the unweighted one
    plain = _weighted_example(_config(mini_dir, rationale_position=position), tokenizer, record)
    assert "loss_weights" not in plain
    np.testing.assert_array_equal(plain["labels"], labels)


def test_weighted_batches_plain_and_packed(mini_dir, tokenizer):
    for pack in (False, True):
        c = _config(mini_dir, rationale_loss_weight=0.3)
        c.data.pack = pack
        hook = make_prompt_hook(c, "train")
        for batch in itertools.islice(
            pipeline.train_dataset(c, tokenizer=tokenizer, prompt_hook=hook), 2
        ):
            w, target = batch["loss_weights"], batch["labels"] != -100
            assert w.shape == batch["labels"].shape
            assert (w[~target] == 0).all()
            assert np.isclose(w[target], 0.3).any() and (w[target] == 1).any()
    # Eval prompts carry no weights, and the grounding phase (rationale targets off) none.
    weighted = _config(mini_dir, rationale_loss_weight=0.3)
    assert not make_prompt_hook(weighted, "eval").weights_targets
    off = _config(mini_dir, rationale_loss_weight=0.3, rationale_targets=False)
    assert not make_prompt_hook(off, "train").weights_targets


def _hook(share, seed, mode="train"):
    return EmoPromptHook(
        guiding_prompts=True,
        rationale_targets=True,
        mode=mode,
        bare_label_fraction=share,
        seed=seed,
    )


def _bare_ids(hook, n=2000):
    out = set()
    for k in range(n):
        record = {**copy.deepcopy(CLOSED), "id": f"r{k}"}
        if hook(record)["conversations"][1]["value"] == CLOSED["answer"]:
            out.add(k)
    return out


def test_bare_label_share_is_as_configured_and_fixed_per_seed():
    n = 2000
    for share in (0.25, 0.5):
        bare = _bare_ids(_hook(share, seed=0), n)
        # each record's lot is independent: the share is within 4 standard deviations
        assert abs(len(bare) / n - share) < 4 * (share * (1 - share) / n) ** 0.5
    half = _bare_ids(_hook(0.5, seed=0), n)
    assert _bare_ids(_hook(0.5, seed=0), n) == half
    assert _bare_ids(_hook(0.5, seed=1), n) != half
    assert _bare_ids(_hook(0.25, seed=0), n) <= half  # a smaller share's records are among them
    assert _bare_ids(_hook(0.0, seed=0), n) == set()
    assert _bare_ids(_hook(1.0, seed=0), n) == set(range(n))
    # evaluation never mixes: every prompt asks for the rationale format
    evaluate = _hook(1.0, seed=0, mode="eval")
    for k in range(50):
        prompt = evaluate({**copy.deepcopy(CLOSED), "id": f"r{k}"})["conversations"][0]["value"]
        assert "First explain in one or two sentences" in prompt


def test_bare_label_records_get_the_plain_format_and_no_weights():
    hook = EmoPromptHook(
        guiding_prompts=True,
        rationale_targets=True,
        mode="train",
        bare_label_fraction=1.0,
        rationale_loss_weight=0.3,
    )
    out = hook(copy.deepcopy(CLOSED))
    assert out["conversations"][0]["value"].endswith("Answer with exactly one of: joy, fear.")
    assert out["conversations"][1]["value"] == "fear"
    assert "target_weights" not in out


def test_lever_settings_are_checked(mini_dir):
    c = _config(mini_dir)
    assert make_prompt_hook(c, "train").seed == c.data.seed
    c.data.seed = 7
    assert make_prompt_hook(c, "train").seed == 7
    for field, bad in (("rationale_loss_weight", -0.5), ("bare_label_fraction", 1.5)):
        c = _config(mini_dir).to_dict()
        c["emoprompt"][field] = bad
        with pytest.raises(ConfigError, match=f"^config.emoprompt.{field}: "):
            make_prompt_hook(c, "train")
