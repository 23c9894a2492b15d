"""The mini EmoBench v2 and v3 (scene rules): balanced, every label follows from its recorded
cause, benign confounders in hate, cue scales independent of labels, neither modality alone
deciding sarcasm in v3, reproducible; versions 1 and 2 unchanged byte for byte."""

import collections
import hashlib
import json

import pytest

from emollm_jax.data.mini import make_mini_emobench, scene_rules
from emollm_jax.data.mini.texts import BADGE_WORDS
from emollm_jax.data.records import read_split
from emollm_jax.tasks import TASK_LABELS, TASKS

SIZES = {"train": 240, "validation": 36, "test": 36}
# sha256 over (relative path, bytes) of every file of build(seed=7, sizes=V1_SIZES), version 1,
# computed with the builder before version 2 existed.
V1_SIZES = {"train": 14, "validation": 7, "test": 7}
V1_DIGEST = "5b502a3c2e4088b9d81c0a3e5fd883e54503f8edfcc9944c2fc3f5e3b220ab52"
# The same for version 2 at V2_SIZES, computed with the builder before version 3 existed.
V2_SIZES = {"train": 30, "validation": 12, "test": 12}
V2_DIGEST = "fb3ecaa5709caee1c8051bbf9dd3ac74a8e348adc0fb9cf1befc3a46cf7b179c"


def _digest(folder, skip=()):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name not in skip:
            h.update(p.relative_to(folder).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def _records(folder, split="train"):
    return [json.loads(x) for x in (folder / f"{split}.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module", params=[2, 3], ids=["v2", "v3"])
def built(request, tmp_path_factory):
    version = request.param
    folder = tmp_path_factory.mktemp(f"v{version}")
    return make_mini_emobench.build(folder, seed=0, sizes=SIZES, version=version)


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


def test_v2_unchanged_byte_for_byte(tmp_path):
    out = make_mini_emobench.build(tmp_path / "v2", seed=7, sizes=V2_SIZES, version=2)
    assert _digest(out) == V2_DIGEST


def test_same_seed_same_bytes_and_not_another_version(tmp_path, built):
    version = make_mini_emobench.built_version(built)
    again = make_mini_emobench.build(tmp_path / "again", seed=0, sizes=SIZES, version=version)
    assert _digest(again) == _digest(built)
    for other in sorted(set(make_mini_emobench.FORMAT_VERSIONS) - {version}):
        o = make_mini_emobench.build(tmp_path / f"v{other}", seed=0, sizes=SIZES, version=other)
        skip = ("dataset_info.json",)
        assert _digest(o, skip=skip) != _digest(built, skip=skip)
        assert make_mini_emobench.is_stale(built, version=other)


def test_labels_balanced_per_split_and_records_valid(built):
    for split in SIZES:
        records, bad = read_split(built, split, max_pixels=10**6, strict=True)
        assert bad.total == 0 and len(records) == SIZES[split]
        by_task = collections.defaultdict(collections.Counter)
        for r in _records(built, split):
            by_task[r["task"]][r["answer"]] += 1
        assert set(by_task) == set(TASKS)
        for task, counts in by_task.items():
            assert set(counts) <= set(TASK_LABELS[task])
            assert max(counts.values()) - min(counts.values()) <= 1, (split, task, counts)


def test_every_label_follows_from_its_cause(built):
    for split in SIZES:
        for r in _records(built, split):
            assert decide(r) == r["answer"], r
            assert r["cause"]["scale"] in scene_rules.SCALES[r["task"]]
            if r["task"].startswith("emotion") or r["task"] == "intent":
                assert r["answer"] in r["rationale"], r


def test_cue_scales_independent_of_labels(built):
    records = _records(built)
    for task in ("humor", "sarcasm"):
        pairs = collections.Counter(
            (r["cause"]["scale"], r["answer"]) for r in records if r["task"] == task
        )
        assert set(pairs) == {(s, a) for s in scene_rules.SCALES[task] for a in ("yes", "no")}
    # Every sarcasm "no" form occurs, so neither the caption nor the picture decides alone.
    forms = {r["cause"]["cues"]["form"] for r in records if r["task"] == "sarcasm"}
    assert forms == {"sarcastic", *scene_rules.SARCASM_NO_FORMS}


def test_hate_has_benign_confounders(built):
    records = [r for r in _records(built) if r["task"] == "hate"]
    by_caption = collections.defaultdict(set)
    by_picture = collections.defaultdict(set)
    for r in records:
        by_caption[_caption(r)].add(r["answer"])
        by_picture[(built / r["media"]["path"]).read_bytes()].add(r["answer"])
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
        unknown = max(make_mini_emobench.FORMAT_VERSIONS) + 1
        make_mini_emobench.build(tmp_path / "c", version=unknown)


def test_v3_sarcasm_needs_both_the_caption_and_the_picture(tmp_path):
    """In v3 neither the caption's wording nor the situation shown decides sarcasm alone (each
    alone is right on about 75% of the records; v2's caption alone reached 83%)."""
    folder = make_mini_emobench.build(tmp_path / "v3", seed=1, sizes={"train": 1200,
                                      "validation": 6, "test": 6}, version=3)
    records = [r for r in _records(folder) if r["task"] == "sarcasm"]
    yes = [r["answer"] == "yes" for r in records]
    caption = [r["cause"]["cues"]["wording"] == "positive" for r in records]
    situation = [r["cause"]["cues"]["valence"] == "negative" for r in records]
    for alone in (caption, situation):
        assert 0.65 * len(records) <= sum(a == y for a, y in zip(alone, yes)) <= 0.82 * len(records)
    assert {r["cause"]["cues"]["shown_by"] for r in records} == {"face", "crowd"}


def test_v3_upside_down_scene_not_told_by_its_colours():
    """v3's humour landscape takes sky and ground from one pool: the colour at the top edge is
    drawn alike for upright and upside-down scenes, so only the tree and house tell them apart."""
    import numpy as np

    tops = {"yes": set(), "no": set()}
    for i in range(160):
        label = ("yes", "no")[i % 2]
        out = scene_rules.humor(np.random.default_rng([5, i]), label, scale="global",
                                spec=scene_rules.V3)
        tops[label].add(out[4][0].getpixel((64, 1)))
    assert tops["yes"] == tops["no"]
    assert len(tops["yes"]) >= 6


def test_rationales_fit_the_default_generation_budget(built):
    """A rationale-first reply (rationale, answer line, end token) stays well inside
    ``eval.max_new_tokens``, so that scoring after the model's own rationale is not cut short."""
    from emollm_jax.data.pipeline import load_tokenizer
    from tests.configs import load_config

    config = load_config("emollm_tiny", "emoprompt")
    tokenizer = load_tokenizer(config.data.tokenizer)
    longest = max(
        len(tokenizer(f"{r['rationale']}\nAnswer: {r['answer']}")["input_ids"]) + 1
        for split in SIZES
        for r in _records(built, split)
    )
    assert longest <= config.eval.max_new_tokens - 8, longest
