"""Tiny copies of each source's documented layout, written by code, with known bad rows.

Each ``make_<source>(root)`` writes a few good rows (tiny Pillow images, tiny PyAV clips) and a
few bad ones, and returns a ``Layout``: the good rows as ``{record id stem: (split, family,
answer, text)}`` and the skip reasons expected from the bad ones.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from emollm_jax.data.mini.make_mini_emobench import encode_mp4


@dataclasses.dataclass
class Layout:
    good: dict[str, tuple[str, str, str, str | None]]  # "<split>-<id>": (split, family, answer, text)
    bad: collections.Counter


def image_bytes(seed: int, fmt: str = "PNG", size: int = 24) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


def clip_bytes(seed: int, frames: int = 3) -> bytes:
    rng = np.random.default_rng(seed)
    return encode_mp4(
        [Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in range(frames)]
    )


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def _csv(path: Path, header, rows, delimiter=",") -> None:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter)
    w.writerow(header)
    w.writerows(rows)
    _write(path, buf.getvalue())


CORRUPT = b"not an image or a clip"


def make_emoset(root: Path) -> Layout:
    good = {}
    for i, (split, name, emotion) in enumerate(
        [("train", "train", "awe"), ("validation", "val", "anger"), ("test", "test", "amusement")]
    ):
        image_id = f"{emotion}_{i:05d}"
        path = f"image/{emotion}/{image_id}.jpg"
        _write(root / path, image_bytes(i, "JPEG"))
        entries = [[emotion, image_id, path, f"annotation/{emotion}/{image_id}.json"]]
        if split == "train":
            _write(root / "image/fear/x.jpg", CORRUPT)
            _write(root / "image/joy/y.jpg", image_bytes(9, "JPEG"))
            entries += [
                ["joy", "y", "image/joy/y.jpg", "a.json"],  # unknown_label
                ["fear", "gone", "image/fear/gone.jpg", "a.json"],  # missing_media
                ["fear", "x", "image/fear/x.jpg", "a.json"],  # corrupt_media
                ["fear", "esc", "../outside.jpg", "a.json"],  # path_escapes_root
                42,  # malformed_record
            ]
        if split == "test":
            entries.append(["sadness", "image/sadness/t.jpg", "a.json"])  # 3-item form
            _write(root / "image/sadness/t.jpg", image_bytes(7, "JPEG"))
            good["test-t"] = ("test", "emotion", "sadness", None)
        _write(root / f"{name}.json", json.dumps(entries))
        good[f"{split}-{image_id}"] = (split, "emotion", emotion, None)
    _write(root.parent / "outside.jpg", image_bytes(8, "JPEG"))
    bad = collections.Counter(
        unknown_label=1, missing_media=1, corrupt_media=1, path_escapes_root=1, malformed_record=1
    )
    return Layout(good, bad)


def _pixels(seed: int) -> str:
    return " ".join(str(v) for v in np.random.default_rng(seed).integers(0, 256, 48 * 48))


def make_fer2013(root: Path) -> Layout:
    rows = [
        ("3", _pixels(0), "Training"),
        ("0", _pixels(1), "PublicTest"),
        ("6", _pixels(2), "PrivateTest"),
        ("9", _pixels(3), "Training"),  # unknown_label
        ("2", "1 2 3", "Training"),  # malformed_record (pixels)
    ]
    _csv(root / "fer2013.csv", ("emotion", "pixels", "Usage"), rows)
    good = {
        "train-00000": ("train", "emotion", "joy", None),
        "validation-00001": ("validation", "emotion", "anger", None),
        "test-00002": ("test", "emotion", "neutral", None),
    }
    return Layout(good, collections.Counter(unknown_label=1, malformed_record=1))


def make_ferplus(root: Path) -> Layout:
    """FER2013 plus fer2013new.csv, whose majority votes replace the labels."""
    make_fer2013(root)
    votes = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
             "contempt", "unknown", "NF")  # fmt: skip
    rows = [
        ("Training", "fer0.png", 0, 0, 0, 8, 2, 0, 0, 0, 0, 0),  # sadness (FER said happy)
        ("PublicTest", "fer1.png", 0, 0, 9, 0, 1, 0, 0, 0, 0, 0),  # surprise
        ("PrivateTest", "fer2.png", 5, 5, 0, 0, 0, 0, 0, 0, 0, 0),  # tie: unknown_label
        ("Training", "fer3.png", 0, 0, 0, 0, 0, 0, 0, 10, 0, 0),  # contempt: unknown_label
        ("Training", "fer4.png", 10, 0, 0, 0, 0, 0, 0, 0, 0, 0),  # malformed pixels
    ]
    _csv(root / "fer2013new.csv", ("Usage", "Image name", *votes), rows)
    good = {
        "train-00000": ("train", "emotion", "sadness", None),
        "validation-00001": ("validation", "emotion", "surprise", None),
    }
    return Layout(good, collections.Counter(unknown_label=2, malformed_record=1))


MELD_COLUMNS = ("Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID",
                "Utterance_ID", "Season", "Episode", "StartTime", "EndTime")  # fmt: skip


def make_meld(root: Path) -> Layout:
    good = {}
    splits = [("train", "train", "train_splits", "joy"),
              ("validation", "dev", "dev_splits_complete", "surprise"),
              ("test", "test", "output_repeated_splits_test", "anger")]  # fmt: skip
    for i, (split, name, folder, emotion) in enumerate(splits):
        text = f"Oh my God, line {i}!"
        rows = [(1, text, "Rachel", emotion.capitalize(), "positive", i, 0, 1, 1, "0", "1")]
        _write(root / folder / f"dia{i}_utt0.mp4", clip_bytes(i))
        if split == "train":
            _write(root / folder / "dia7_utt2.mp4", CORRUPT)
            _write(root / folder / "dia8_utt0.mp4", clip_bytes(8))
            rows += [
                (2, "Hm.", "Ross", "Boredom", "neutral", 8, 0, 1, 1, "0", "1"),  # unknown_label
                (3, "Hm.", "Ross", "Joy", "neutral", 5, 1, 1, 1, "0", "1"),  # missing_media
                (4, "Hm.", "Ross", "Joy", "neutral", 7, 2, 1, 1, "0", "1"),  # corrupt_media
                (5, "Hm.", "Ross", "Joy", "neutral", "/../../../x", 0, 1, 1, "0", "1"),  # escape
                (6, "Hm.", "Ross", "", "neutral", 9, 0, 1, 1, "0", "1"),  # malformed_record
            ]
        _csv(root / f"{name}_sent_emo.csv", MELD_COLUMNS, rows)
        good[f"{split}-dia{i}_utt0"] = (split, "emotion", emotion, text)
    bad = collections.Counter(
        unknown_label=1, missing_media=1, corrupt_media=1, path_escapes_root=1, malformed_record=1
    )
    return Layout(good, bad)


def make_mintrec(root: Path) -> Layout:
    good = {}
    header = ("season", "episode", "clip", "text", "label")
    for i, (split, name, label) in enumerate(
        [("train", "train", "Ask for help"), ("validation", "dev", "Apologise"),
         ("test", "test", "Greet")]  # fmt: skip
    ):
        text = f"Could you help me with this, number {i}?"
        rows = [("04", "01", str(i), text, label)]
        _write(root / f"raw_data/S04/E01/{i}.mp4", clip_bytes(10 + i))
        if split == "train":
            _write(root / "raw_data/S04/E02/1.mp4", clip_bytes(20))
            rows += [
                ("04", "02", "1", "Ha.", "Dance"),  # unknown_label
                ("04", "02", "2", "Ha.", "Joke"),  # missing_media
                ("04", "02", "3", "Ha."),  # malformed_record (short row)
            ]
        _csv(root / f"{name}.tsv", header, rows, delimiter="\t")
        answer = "apologise" if label == "Apologise" else label.lower()
        good[f"{split}-S04_E01_{i}"] = (split, "intent", answer, text)
    return Layout(good, collections.Counter(unknown_label=1, missing_media=1, malformed_record=1))


def make_hateful_memes(root: Path) -> Layout:
    good = {}
    for i, (split, name, label) in enumerate(
        [("train", "train", 1), ("validation", "dev_seen", 0), ("test", "test_seen", 1)]
    ):
        rid = 10 + i
        text = f"meme text number {i}"
        lines = [json.dumps({"id": rid, "img": f"img/{rid}.png", "label": label, "text": text})]
        _write(root / f"img/{rid}.png", image_bytes(rid))
        if split == "train":
            _write(root / "img/50.png", image_bytes(50))
            _write(root / "img/52.png", CORRUPT)
            lines += [
                '{"id": 49, "img": "img/49.png", "lab',  # invalid_json
                json.dumps({"id": 50, "img": "img/50.png", "label": 2, "text": "x"}),  # unknown
                json.dumps({"id": 51, "img": "img/51.png", "label": 0, "text": "x"}),  # missing
                json.dumps({"id": 52, "img": "img/52.png", "label": 0, "text": "x"}),  # corrupt
                json.dumps({"id": 53, "img": "img/../../x.png", "label": 0, "text": "x"}),
                json.dumps({"id": 54, "label": 0, "text": "x"}),  # malformed_record (no img)
            ]
        _write(root / f"{name}.jsonl", "\n".join(lines) + "\n")
        good[f"{split}-{rid}"] = (split, "hate", "yes" if label else "no", text)
    bad = collections.Counter(
        invalid_json=1, unknown_label=1, missing_media=1, corrupt_media=1, path_escapes_root=1,
        malformed_record=1,
    )  # fmt: skip
    return Layout(good, bad)


def make_memotion(root: Path) -> Layout:
    header = ("", "image_name", "text_ocr", "text_corrected", "humour", "sarcasm", "offensive",
              "motivational", "overall_sentiment")  # fmt: skip
    rows = [
        (0, "image_1.jpg", "OCR ONE", "caption one", "very_funny", "not_sarcastic", "not_offensive",
         "not_motivational", "positive"),
        (1, "image_2.png", "caption two", "", "not_funny", "twisted_meaning", "slight",
         "motivational", "negative"),
        (2, "image_3.jpg", "x", "x", "meh", "general", "slight", "motivational", "neutral"),
        (3, "image_4.jpg", "x", "x", "funny", "general", "slight", "motivational", "neutral"),
    ]  # fmt: skip
    _csv(root / "labels.csv", header, rows)
    _write(root / "images/image_1.jpg", image_bytes(1, "JPEG"))
    _write(root / "images/image_2.png", image_bytes(2))
    _write(root / "images/image_3.jpg", image_bytes(3, "JPEG"))
    good = {
        "train-image_1/humor": ("train", "humor", "yes", "caption one"),
        "train-image_1/sarcasm": ("train", "sarcasm", "no", "caption one"),
        "train-image_2/humor": ("train", "humor", "no", "caption two"),
        "train-image_2/sarcasm": ("train", "sarcasm", "yes", "caption two"),
        "train-image_3/sarcasm": ("train", "sarcasm", "yes", "x"),
    }
    # image_3's humour "meh" is unknown; image_4 is missing (for both of its records)
    return Layout(good, collections.Counter(unknown_label=1, missing_media=2))


def make_mustard(root: Path) -> Layout:
    data = {
        "1_60": {"utterance": "It's just a privilege to watch your mind at work.",
                 "speaker": "SHELDON", "context": ["a", "b"], "context_speakers": ["L", "S"],
                 "show": "BBT", "sarcasm": True},
        "2_10": {"utterance": "Oh, that's great.", "speaker": "CHANDLER", "context": [],
                 "context_speakers": [], "show": "FRIENDS", "sarcasm": False},
        "3_5": {"utterance": "Sure.", "speaker": "DOROTHY", "show": "GOLDENGIRLS",
                "sarcasm": True},  # missing_media
        "4_1": {"speaker": "X", "show": "BBT", "sarcasm": True},  # malformed_record
    }  # fmt: skip
    _write(root / "sarcasm_data.json", json.dumps(data))
    _write(root / "videos/utterances_final/1_60.mp4", clip_bytes(60))
    _write(root / "videos/utterances_final/2_10.mp4", clip_bytes(10, frames=5))
    good = {
        "train-1_60": ("train", "sarcasm", "yes", data["1_60"]["utterance"]),
        "test-2_10": ("test", "sarcasm", "no", data["2_10"]["utterance"]),
    }
    return Layout(good, collections.Counter(missing_media=1, malformed_record=1))


def make_mmsd2(root: Path) -> Layout:
    good = {}
    for i, (split, name, label) in enumerate(
        [("train", "train", 1), ("validation", "valid", 0), ("test", "test", 0)]
    ):
        image_id = 682716753373431360 + i
        text = f"what a lovely monday {i}"
        entries = [{"image_id": image_id, "text": text, "label": label}]
        _write(root / f"dataset_image/{image_id}.jpg", image_bytes(i, "JPEG"))
        if split == "train":
            _write(root / "dataset_image/7.jpg", image_bytes(7, "JPEG"))
            entries += [
                {"image_id": 7, "text": "x", "label": 5},  # unknown_label
                {"image_id": 8, "text": "x", "label": 1},  # missing_media
                {"text": "x", "label": 1},  # malformed_record
            ]
        _write(root / f"text_json_final/{name}.json", json.dumps(entries))
        good[f"{split}-{image_id}"] = (split, "sarcasm", "yes" if label else "no", text)
    return Layout(good, collections.Counter(unknown_label=1, missing_media=1, malformed_record=1))


MAKERS = {
    "emoset": make_emoset,
    "fer2013": make_fer2013,
    "meld": make_meld,
    "mintrec": make_mintrec,
    "hateful_memes": make_hateful_memes,
    "memotion": make_memotion,
    "mustard": make_mustard,
    "mmsd2": make_mmsd2,
}
