"""Each kind of bad input is skipped and counted by reason, or raised in strict mode."""

import json
import logging
import shutil

import pytest

from emollm_jax.data import pipeline
from emollm_jax.data.bad_input import BadRecordError
from emollm_jax.data.records import read_split


@pytest.fixture
def folder(mini_dir, tmp_path):
    """A split folder holding one good image record and one good video record."""
    records = [json.loads(x) for x in (mini_dir / "train.jsonl").read_text().splitlines()]
    image = next(r for r in records if r["media"]["type"] == "image")
    video = next(r for r in records if r["media"]["type"] == "video")
    for r in (image, video):
        dst = tmp_path / r["media"]["path"]
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(mini_dir / r["media"]["path"], dst)
    return tmp_path, image, video


def _write(root, records, extra_lines=()):
    lines = [json.dumps(r).encode() for r in records] + list(extra_lines)
    (root / "train.jsonl").write_bytes(b"\n".join(lines) + b"\n")


def _bad(record, **changes):
    out = json.loads(json.dumps(record))
    out["id"] = "bad-1"
    out.update(changes)
    return out


def _read(root, strict=False, max_pixels=10**6):
    return read_split(root, "train", max_pixels=max_pixels, strict=strict)


def _expect_skip(root, reason, **kwargs):
    found, bad = _read(root, **kwargs)
    assert dict(bad.counts) == {reason: 1}
    assert "bad-1" not in [r["id"] for r in found] and len(found) == 2
    with pytest.raises(BadRecordError, match=reason) as err:
        _read(root, strict=True, **kwargs)
    return err


def test_missing_media(folder):
    root, image, video = folder
    _write(root, [image, _bad(image, media={"type": "image", "path": "media/nope.png"}), video])
    err = _expect_skip(root, "missing_media")
    assert "'bad-1'" in str(err.value)


def test_corrupt_image(folder):
    root, image, video = folder
    (root / "junk.png").write_bytes(b"\x89PNG not really")
    _write(root, [image, _bad(image, media={"type": "image", "path": "junk.png"}), video])
    _expect_skip(root, "corrupt_media")


def test_corrupt_video(folder):
    root, image, video = folder
    (root / "junk.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x17" * 300)
    _write(root, [image, _bad(video, media={"type": "video", "path": "junk.mp4"}), video])
    _expect_skip(root, "corrupt_media")


def test_truncated_image_is_caught_when_decoded(folder, data_config, tokenizer):
    """A valid header with cut-off pixel data passes the source check, fails in the pipeline."""
    root, image, video = folder
    data = (root / image["media"]["path"]).read_bytes()
    (root / "cut.png").write_bytes(data[: len(data) // 2])
    _write(root, [image, _bad(image, media={"type": "image", "path": "cut.png"}), video])
    found, bad = _read(root)
    assert bad.total == 0 and len(found) == 3
    encoder = pipeline.make_encoder(data_config, "train", tokenizer=tokenizer)
    outputs = {r["id"]: encoder(r) for r in found}
    assert outputs["bad-1"] is None and outputs[image["id"]] is not None
    assert dict(encoder.bad.counts) == {"corrupt_media": 1}
    data_config.data.strict = True
    strict = pipeline.make_encoder(data_config, "train", tokenizer=tokenizer)
    with pytest.raises(BadRecordError, match="'bad-1'.*corrupt_media"):
        strict(found[1])


@pytest.mark.parametrize(
    "path", ["../outside.png", "media/../../outside.png", "/etc/passwd", "gs://bucket/x.png"]
)
def test_path_leaving_the_data_folder(folder, path):
    root, image, video = folder
    shutil.copy(root / image["media"]["path"], root.parent / "outside.png")
    _write(root, [image, _bad(image, media={"type": "image", "path": path}), video])
    _expect_skip(root, "path_escapes_root")


def test_symlink_leaving_the_data_folder(folder, tmp_path_factory):
    root, image, video = folder
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "x.png"
    shutil.copy(root / image["media"]["path"], elsewhere)
    (root / "link.png").symlink_to(elsewhere)
    _write(root, [image, _bad(image, media={"type": "image", "path": "link.png"}), video])
    _expect_skip(root, "path_escapes_root")


def test_image_over_the_pixel_limit(folder):
    root, image, video = folder
    from PIL import Image

    Image.new("RGB", (400, 300)).save(root / "big.png")
    _write(root, [image, _bad(image, media={"type": "image", "path": "big.png"}), video])
    # 128x128 = 16384 pixels pass, 400x300 = 120000 do not.
    _expect_skip(root, "too_many_pixels", max_pixels=100_000)


def test_video_over_the_pixel_limit(folder):
    root, image, video = folder
    _write(root, [image, _bad(video), video])
    found, bad = _read(root, max_pixels=128 * 128)
    assert bad.total == 0
    found, bad = _read(root, max_pixels=128 * 128 - 1)
    assert found == [] and dict(bad.counts) == {"too_many_pixels": 3}  # all are 128x128


@pytest.mark.parametrize(
    "conversations",
    [
        [],
        [{"from": "human", "value": "<image>\n"}, {"from": "gpt", "value": "joy"}],
        [{"from": "human", "value": "<image>\nhi"}],
        None,
    ],
)
def test_empty_conversation(folder, conversations):
    root, image, video = folder
    bad = _bad(image, conversations=conversations)
    if conversations is None:
        del bad["conversations"]
    _write(root, [image, bad, video])
    _expect_skip(root, "empty_conversation")


def test_unknown_task(folder):
    root, image, video = folder
    _write(root, [image, _bad(image, task="mind_reading"), video])
    _expect_skip(root, "unknown_task")


def test_answer_outside_the_label_set(folder):
    root, image, video = folder
    bad = _bad(image, task="emotion_open", answer="hangry")
    bad["conversations"][-1]["value"] = "hangry"
    _write(root, [image, bad, video])
    _expect_skip(root, "answer_not_in_labels")


def test_answer_outside_the_records_own_options(folder):
    root, image, video = folder
    bad = _bad(image, task="emotion_closed", answer="joy", options=["anger", "fear"])
    _write(root, [image, bad, video])
    _expect_skip(root, "answer_not_in_labels")


def test_invalid_utf8(folder):
    root, image, video = folder
    line = json.dumps(_bad(image, rationale="caf\u00e9")).encode().replace(b"\\u00e9", b"\xe9")
    _write(root, [image, video], extra_lines=[line])
    found, bad = _read(root)
    assert dict(bad.counts) == {"invalid_utf8": 1} and len(found) == 2
    with pytest.raises(BadRecordError, match="train.jsonl:3.*invalid_utf8"):
        _read(root, strict=True)


def test_invalid_json(folder):
    root, image, video = folder
    _write(root, [image, video], extra_lines=[b'{"id": "bad-1", "task": '])
    found, bad = _read(root)
    assert dict(bad.counts) == {"invalid_json": 1} and len(found) == 2
    with pytest.raises(BadRecordError, match="train.jsonl:3.*invalid_json"):
        _read(root, strict=True)


def test_placeholder_count_must_match_the_media(folder):
    root, image, video = folder
    bad = _bad(image)
    bad["conversations"][0]["value"] = "<image><image>\nTwo?"
    _write(root, [image, bad, video])
    _expect_skip(root, "placeholder_mismatch")


def test_too_long_for_the_largest_bucket(folder, data_config, tokenizer):
    root, image, video = folder
    _write(root, [image, video])
    found, _ = _read(root)
    data_config.data.seq_buckets = (64,)
    encoder = pipeline.make_encoder(data_config, "train", tokenizer=tokenizer)
    assert all(encoder(r) is None for r in found)
    assert dict(encoder.bad.counts) == {"too_long": 2}


def test_counts_are_logged(folder, caplog):
    root, image, video = folder
    _write(root, [image, _bad(image, task="mind_reading"), video], extra_lines=[b"{"])
    with caplog.at_level(logging.WARNING, logger="emollm_jax.data.bad_input"):
        _read(root)
    (message,) = [r.getMessage() for r in caplog.records]
    assert "skipped 2 bad records" in message
    assert "invalid_json=1" in message and "unknown_task=1 (e.g. bad-1)" in message


def test_byte_order_mark_does_not_cost_the_first_record(folder):
    root, image, video = folder
    lines = [json.dumps(r).encode() for r in (image, video)]
    (root / "train.jsonl").write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")
    records, bad = _read(root)
    assert [r["id"] for r in records] == [image["id"], video["id"]]
    assert bad.total == 0
