"""The mini EmoBench v2: balanced, every label follows from its recorded cause, benign confounders
in hate, cue scales independent of labels, reproducible; version 1 unchanged byte for byte."""

import collections
import hashlib
import json

import pytest

from emollm_jax.data.mini import make_mini_emobench, rules_v2
from emollm_jax.data.mini.texts import BADGE_WORDS
from emollm_jax.data.records import read_split
from emollm_jax.tasks import TASK_LABELS, TASKS

SIZES = {"train": 240, "validation": 36, "test": 36}
# sha256 over (relative path, bytes) of every file of build(seed=7, sizes=V1_SIZES), version 1,
# computed with the builder before version 2 existed.
V1_SIZES = {"train": 14, "validation": 7, "test": 7}
V1_DIGEST = "5b502a3c2e4088b9d81c0a3e5fd883e54503f8edfcc9944c2fc3f5e3b220ab52"


def _digest(folder, skip=()):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name not in skip:
            h.update(p.relative_to(folder).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def _records(folder, split="train"):
    return [json.loads(x) for x in (folder / f"{split}.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def v2(tmp_path_factory):
    return make_mini_emobench.build(tmp_path_factory.mktemp("v2"), seed=0, sizes=SIZES, version=2)


def _caption(record) -> str:
    return record["conversations"][0]["value"].split('"')[1]


def decide(record) -> str:
    """The label, from the recorded cues alone, by the rule the record names."""
    cues = record["cause"]["cues"]
    rule = record["cause"]["rule"]
    if rule in ("emotion_face", "emotion_marked_face"):
        return cues["expression"]
    if rule == "emotion_crowd":
        return cues["majority_expression"]
    if rule.startswith("intent_"):
        return next(i for i, words in BADGE_WORDS.items() if words == cues["symbol"])
    if rule.startswith("humor_"):
        (flag,) = cues.values()
        return "yes" if flag else "no"
    if rule == "hate_caption_and_referent":
        hateful = cues["caption"] == "demeaning" and cues["referent"] == "people"
        return "yes" if hateful else "no"
    if rule == "sarcasm_incongruity":
        sarcastic = cues["wording"] == "positive" and cues["valence"] == "negative"
        return "yes" if sarcastic else "no"
    raise AssertionError(rule)


def test_v1_unchanged_byte_for_byte(tmp_path):
    out = make_mini_emobench.build(tmp_path / "v1", seed=7, sizes=V1_SIZES)
    assert _digest(out) == V1_DIGEST
    assert make_mini_emobench.built_version(out) == 1


def test_same_seed_same_bytes_and_not_v1(tmp_path, v2):
    again = make_mini_emobench.build(tmp_path / "again", seed=0, sizes=SIZES, version=2)
    assert _digest(again) == _digest(v2)
    v1 = make_mini_emobench.build(tmp_path / "v1", seed=0, sizes=SIZES, version=1)
    assert _digest(v1, skip=("dataset_info.json",)) != _digest(v2, skip=("dataset_info.json",))
    assert make_mini_emobench.built_version(v2) == 2
    assert make_mini_emobench.is_stale(v2, version=1)


def test_labels_balanced_per_split_and_records_valid(v2):
    for split in SIZES:
        records, bad = read_split(v2, split, max_pixels=10**6, strict=True)
        assert bad.total == 0 and len(records) == SIZES[split]
        by_task = collections.defaultdict(collections.Counter)
        for r in _records(v2, split):
            by_task[r["task"]][r["answer"]] += 1
        assert set(by_task) == set(TASKS)
        for task, counts in by_task.items():
            assert set(counts) <= set(TASK_LABELS[task])
            assert max(counts.values()) - min(counts.values()) <= 1, (split, task, counts)


def test_every_label_follows_from_its_cause(v2):
    for split in SIZES:
        for r in _records(v2, split):
            assert decide(r) == r["answer"], r
            assert r["cause"]["scale"] in rules_v2.SCALES[r["task"]]
            if r["task"].startswith("emotion") or r["task"] == "intent":
                assert r["answer"] in r["rationale"], r


def test_cue_scales_independent_of_labels(v2):
    records = _records(v2)
    for task in ("humor", "sarcasm"):
        pairs = collections.Counter(
            (r["cause"]["scale"], r["answer"]) for r in records if r["task"] == task
        )
        assert set(pairs) == {(s, a) for s in rules_v2.SCALES[task] for a in ("yes", "no")}
    # Every sarcasm "no" form occurs, so neither the caption nor the picture decides alone.
    forms = {r["cause"]["cues"]["form"] for r in records if r["task"] == "sarcasm"}
    assert forms == {"sarcastic", *rules_v2.SARCASM_NO_FORMS}


def test_hate_has_benign_confounders(v2):
    records = [r for r in _records(v2) if r["task"] == "hate"]
    by_caption = collections.defaultdict(set)
    by_picture = collections.defaultdict(set)
    for r in records:
        by_caption[_caption(r)].add(r["answer"])
        by_picture[(v2 / r["media"]["path"]).read_bytes()].add(r["answer"])
    # The same caption is hateful with one picture and not with another ...
    assert any(labels == {"yes", "no"} for labels in by_caption.values())
    # ... and the same picture (the same bytes) hateful with one caption and not with another.
    assert any(labels == {"yes", "no"} for labels in by_picture.values())
    kinds = collections.Counter(r["cause"]["cues"]["confounder"] for r in records)
    assert kinds["image"] > 0 and kinds["text"] > 0
    # Neither modality alone decides: each alone is right on at most 80% of the records.
    caption_alone = sum(
        (r["cause"]["cues"]["caption"] == "demeaning") == (r["answer"] == "yes") for r in records
    )
    picture_alone = sum(
        (r["cause"]["cues"]["referent"] == "people") == (r["answer"] == "yes") for r in records
    )
    assert max(caption_alone, picture_alone) <= 0.8 * len(records)


def test_cli_builds_the_version_asked(tmp_path):
    sizes = ["--train=6", "--validation=6", "--test=6"]
    make_mini_emobench.main([str(tmp_path / "b"), "--version=2", *sizes])
    assert make_mini_emobench.built_version(tmp_path / "b") == 2
    assert all("cause" in r for r in _records(tmp_path / "b"))
    with pytest.raises(ValueError, match="version"):
        make_mini_emobench.build(tmp_path / "c", version=3)


def test_rationales_fit_the_default_generation_budget(v2):
    """A rationale-first reply (rationale, answer line, end token) stays well inside
    ``eval.max_new_tokens``, so that scoring after the model's own rationale is not cut short."""
    from emollm_jax.data.pipeline import load_tokenizer
    from tests.configs import load_config

    config = load_config("emollm_tiny", "emoprompt")
    tokenizer = load_tokenizer(config.data.tokenizer)
    longest = max(
        len(tokenizer(f"{r['rationale']}\nAnswer: {r['answer']}")["input_ids"]) + 1
        for split in SIZES
        for r in _records(v2, split)
    )
    assert longest <= config.eval.max_new_tokens - 8, longest
