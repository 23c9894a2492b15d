"""The generated mini EmoBench: deterministic, balanced, decodable, labels follow their rules."""

import collections
import hashlib
import json
from pathlib import Path

import pytest

from emollm_jax.data import media
from emollm_jax.data.mini import make_mini_emobench
from emollm_jax.data.records import read_split
from emollm_jax.tasks import EMOTIONS, TASK_LABELS, TASKS


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != "dataset_info.json":
            h.update(p.relative_to(folder).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    sizes = {"train": 12, "validation": 6, "test": 6}
    a = make_mini_emobench.build(tmp_path / "a", seed=3, sizes=sizes)
    b = make_mini_emobench.build(tmp_path / "b", seed=3, sizes=sizes)
    c = make_mini_emobench.build(tmp_path / "c", seed=4, sizes=sizes)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_every_task_and_label_balanced(mini_dir):
    records = _lines(mini_dir / "train.jsonl")
    assert len(records) == 48
    by_task = collections.defaultdict(list)
    for r in records:
        by_task[r["task"]].append(r["answer"])
    assert set(by_task) == set(TASKS)
    for task, answers in by_task.items():
        counts = collections.Counter(answers)
        assert set(counts) <= set(TASK_LABELS[task])
        assert max(counts.values()) - min(counts.values()) <= 1, (task, counts)
        if len(answers) >= len(TASK_LABELS[task]):
            assert set(counts) == set(TASK_LABELS[task])


def test_records_are_valid_and_media_decode(mini_dir):
    for split in ("train", "validation", "test"):
        records, bad = read_split(mini_dir, split, max_pixels=10**6, strict=True)
        assert bad.total == 0
        for r in records:
            assert r["rationale"] and r["conversations"][0]["value"].startswith("<image>\n")
            assert r["conversations"][-1]["value"] == r["answer"]
    kinds = collections.Counter()
    for r in records:
        (item,) = r["media"]
        kinds[item["type"]] += 1
        frames = media.decode(
            item["type"], Path(item["path"]).read_bytes(), num_frames=8, max_pixels=10**6
        )
        assert frames.shape[1:] == (128, 128, 3)
    assert kinds["video"] > 0 and kinds["image"] > 0


def test_closed_set_options_hold_the_answer_and_videos_name_the_end(mini_dir):
    records = _lines(mini_dir / "train.jsonl")
    for r in records:
        if r["task"] == "emotion_closed":
            assert r["answer"] in r["options"] and len(r["options"]) == 4
            assert set(r["options"]) <= set(EMOTIONS)
            assert ", ".join(r["options"]) in r["conversations"][0]["value"]
        if r["task"] == "emotion_open":
            assert "options" not in r
        if r["media"]["type"] == "video":
            assert r["task"].startswith("emotion")
            assert r["rationale"].endswith(f"the expression at the end is {r['answer']}.")


def test_sarcasm_and_hate_rules_in_rationales(mini_dir):
    for r in _lines(mini_dir / "train.jsonl"):
        if r["task"] == "sarcasm":
            positive_words = "The caption sounds positive." in r["rationale"]
            negative_face = "which is negative." in r["rationale"]
            assert (positive_words and negative_face) == (r["answer"] == "yes"), r
            assert r["rationale"].endswith(
                "so it is sarcastic." if r["answer"] == "yes" else "so it is not sarcastic."
            )
        if r["task"] == "hate":
            assert ("demeaning a group of people is hateful" in r["rationale"]) == (
                r["answer"] == "yes"
            )


@pytest.mark.slow
def test_full_build_sizes(full_mini_dir):
    out = full_mini_dir
    per_task = {split: collections.Counter() for split in ("train", "validation", "test")}
    for split, counts in per_task.items():
        counts.update(json.loads(line)["task"] for line in (out / f"{split}.jsonl").open())
    assert sum(per_task["train"].values()) == 2000
    for split in ("validation", "test"):  # 200 per sub-task: one record is half a point
        assert dict(per_task[split]) == {task: 200 for task in TASKS}
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert size < 20e6
    assert not make_mini_emobench.is_stale(out)
    assert make_mini_emobench.is_stale(out, seed=1)
    assert not make_mini_emobench.is_stale(out / "media")  # not a mini EmoBench build
