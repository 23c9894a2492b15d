"""Record reading: our JSONL, LLaVA's JSON, placeholders, options, answers."""

import json

from emollm_jax.data.records import normalise, read_split


def _png(path):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (255, 0, 0)).save(path)


def test_llava_json_is_read_unchanged(tmp_path):
    _png(tmp_path / "coco" / "a.png")
    llava = [
        {
            "id": "000001",
            "image": "coco/a.png",
            "conversations": [
                {"from": "human", "value": "What is shown?"},
                {"from": "gpt", "value": "A red square."},
            ],
        }
    ]
    (tmp_path / "train.json").write_text(json.dumps(llava))
    (record,), bad = read_split(tmp_path, "train", max_pixels=10**6)
    assert bad.total == 0
    assert record["task"] is None and record["answer"] == "A red square."
    assert record["media"] == [{"type": "image", "path": str(tmp_path / "coco" / "a.png")}]
    # LLaVA puts the placeholder first when the text lacks it.
    assert record["conversations"][0]["value"] == "<image>\nWhat is shown?"


def test_options_override_the_task_labels_and_answers_ignore_case():
    record = {
        "id": 7,
        "task": "emotion_closed",
        "conversations": [
            {"from": "human", "value": "Pick: calm, tense"},
            {"from": "gpt", "value": "Calm"},
        ],
        "options": ["calm", "tense"],
    }
    out = normalise(record)
    assert out["id"] == "7" and out["answer"] == "Calm" and out["options"] == ["calm", "tense"]
    assert out["media"] == [] and out["conversations"][0]["value"] == "Pick: calm, tense"


def test_several_media_items_keep_their_placeholders():
    record = {
        "id": "m",
        "media": [{"type": "image", "path": "a.png"}, {"type": "video", "path": "b.mp4"}],
        "conversations": [
            {"from": "human", "value": "<image> then <image>: same person?"},
            {"from": "gpt", "value": "yes"},
        ],
    }
    out = normalise(record)
    assert [m["type"] for m in out["media"]] == ["image", "video"]
    assert out["conversations"][0]["value"].count("<image>") == 2
    # The exported processor's <video> marks a video the same way.
    record["conversations"][0]["value"] = "<image> then <video>: same person?"
    assert normalise(record)["conversations"] == out["conversations"]
