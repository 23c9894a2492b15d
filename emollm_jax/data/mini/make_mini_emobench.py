"""Make the mini EmoBench: a small EmoBench-format data set drawn by code, every label decidable.

    emollm data mini OUT [--version 1|2|3] [--seed N] [--train N --validation N --test N]

writes ``OUT/{train,validation,test}.jsonl`` (see ``emollm_jax/data/records.py`` for the record
format) and the media under ``OUT/media/<split>/`` (128x128 PNG images, 128x128 H.264 mp4 videos
of 8-16 frames). Same seed, same bytes. Default size 2000/1200/1200 records (200 per sub-task
in validation and test, so that one record moves a sub-task's accuracy by half a point), about
12 MB. A folder that already holds split files is refused unless ``--overwrite``.

Three rule sets, chosen by ``--version`` (``dataset_info.json`` records which); each stays
byte-identical for a seed. 1, the first set, below, is the default. 2 and 3 (``scene_rules.py``)
imitate what the public source data sets are about (benign confounders in hate, harder sarcasm
negatives, cues at three visual scales) and add a ``cause`` field to every record naming the
true cause of its label; 3 draws the cues at sizes the tiny model's 64-pixel view resolves,
makes the global humour and sarcasm cues harder and lets neither the caption nor the picture
alone decide sarcasm (``scene_rules.V3``).

The six sub-tasks get equal shares and each task's labels are exactly balanced per split (labels
are dealt in shuffled rounds). The labelling rules are ours; each record's ``rationale`` states
the rule's cause for that record (EmoPrompt uses it as a reasoning target). Version 1's rules:

- ``emotion_closed`` / ``emotion_open``: a cartoon face (``draw_faces.py``) whose mouth, brows and
  eyes show one of the seven emotions; the label is that emotion. The closed-set instruction
  lists four options (the answer and three others, shuffled) which the record stores as
  ``options``; the open-set instruction lists none. ``VIDEO_SHARE`` of these records are videos
  in which the face starts with another expression and switches to the labelled one no later
  than half-way; the label is the expression at the END of the video (it holds for at least
  the second half of the frames). The face drifts a few pixels over time.
- ``intent``: a badge in the lower-right corner shows one symbol per intent (hand = greet,
  heart = comfort, warning triangle = warn, star = celebrate, lightning bolt = complain,
  question mark = request). The face's expression is random and does not decide.
- ``humor``: funny ("yes") iff the face wears a big red clown nose, a visual gag. The caption
  comes from one pool for both labels and the face's expression is random: neither decides.
- ``hate``: a text rule. Hateful ("yes") iff the caption demeans a group of people (invented
  group names) with a demeaning predicate. Confounders for "no", a quarter of the records each:
  the same groups with a neutral predicate, and the same demeaning predicates aimed at things
  (Mondays, cold coffee). The face is random. Neither the group word nor the predicate alone
  decides; both together do.
- ``sarcasm``: sarcastic ("yes") iff a positive caption sits over a negative face: sarcasm as
  the contrast of positive words with a negative situation (Riloff et al., 2013). Joy is
  positive; anger, disgust, fear and sadness are negative; surprise and neutral are not used.
  "no" records are half positive captions over a joyful face and half negative captions (meant
  as said) over a face of either valence, so neither the caption nor the face alone decides.
  The rationale names the caption's tone, then the face and its valence, then the verdict.

Background colour, distractor objects, skin tone, face position, size and stroke width are
sampled independently of every label.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from emollm_jax.cli_errors import report_user_errors
import emollm_jax.data.mini.draw_faces as draw_faces
import emollm_jax.data.mini.scene_rules as scene_rules
from emollm_jax.data.mini.texts import (
    NEGATIVE_FACES,
    POSITIVE_CAPTIONS,
    NEGATIVE_CAPTIONS,
    HUMOR_CAPTIONS,
    GROUPS,
    THINGS,
    DEMEANING,
    NEUTRAL,
    MOUTH_WORDS,
    BROW_WORDS,
    BADGE_WORDS,
    CLOSED_PROMPTS,
    OPEN_PROMPTS,
    VIDEO_CLOSED_PROMPTS,
    VIDEO_OPEN_PROMPTS,
    INTENT_PROMPTS,
    HATE_PROMPTS,
    HUMOR_PROMPTS,
    SARCASM_PROMPTS,
    pick,
    sentence_case,
)
from emollm_jax.tasks import EMOTIONS, INTENTS, TASK_LABELS, TASKS

SPLIT_SIZES = {"train": 2000, "validation": 1200, "test": 1200}
VIDEO_SHARE = 0.3  # of the emotion records
VIDEO_FPS = 8
VIDEO_FRAME_RANGE = (8, 16)  # inclusive
# dataset_info.json's "version" per rule set; FORMAT_VERSION is the first's.
FORMAT_VERSIONS = {1: "1.0.0", 2: "2.0.0", 3: "3.0.0"}
FORMAT_VERSION = FORMAT_VERSIONS[1]
# What build() and `emollm data mini` make unless told: 1, the first rule set. The ablation
# and the main job build and report on emollm_jax.data.mini.REPORTED_VERSION.
DEFAULT_VERSION = 1

# ---------------------------------------------------------------------------------------------
# One record per call: (record without id/media path, list of frames, media type)
# ---------------------------------------------------------------------------------------------


def _emotion_rationale(emotion: str) -> str:
    return (
        f"{sentence_case(MOUTH_WORDS[emotion])} and {BROW_WORDS[emotion]}, so the person feels "
        f"{emotion}."
    )


def _emotion(rng, label: str, closed: bool, video: bool):
    face = draw_faces.sample_face(rng, label)
    scene = draw_faces.sample_scene(rng)
    options = None
    if closed:
        others = [e for e in EMOTIONS if e != label]
        chosen = [label] + list(rng.choice(others, size=3, replace=False))
        options = [str(x) for x in rng.permutation(chosen)]
    if video:
        n = int(rng.integers(VIDEO_FRAME_RANGE[0], VIDEO_FRAME_RANGE[1] + 1))
        start = pick(rng, [e for e in EMOTIONS if e != label])
        switch = int(rng.integers(1, n // 2 + 1))
        drift = rng.uniform(-6, 6, size=2)
        frames = [
            draw_faces.draw(
                scene,
                face.moved(*(drift * t / (n - 1)), emotion=start if t < switch else label),
            )
            for t in range(n)
        ]
        prompts = VIDEO_CLOSED_PROMPTS if closed else VIDEO_OPEN_PROMPTS
        rationale = (
            f"The face starts out showing {start}, then {MOUTH_WORDS[label]} and "
            f"{BROW_WORDS[label]}; the expression at the end is {label}."
        )
    else:
        frames = [draw_faces.draw(scene, face)]
        prompts = CLOSED_PROMPTS if closed else OPEN_PROMPTS
        rationale = _emotion_rationale(label)
    text = pick(rng, prompts).format(options=", ".join(options or ()))
    return text, label, options, rationale, frames


def _intent(rng, label: str):
    face = draw_faces.sample_face(rng, pick(rng, EMOTIONS))
    scene = draw_faces.sample_scene(rng, badge=label)
    text = pick(rng, INTENT_PROMPTS).format(options=", ".join(INTENTS))
    rationale = f"The badge shows {BADGE_WORDS[label]}, which signals the intent to {label}."
    return text, label, None, rationale, [draw_faces.draw(scene, face)]


def _humor(rng, label: str):
    funny = label == "yes"
    face = draw_faces.sample_face(rng, pick(rng, EMOTIONS), clown_nose=funny)
    caption = pick(rng, HUMOR_CAPTIONS)
    text = pick(rng, HUMOR_PROMPTS).format(caption=caption)
    if funny:
        rationale = "The person wears a big red clown nose, a visual gag, so the meme is funny."
    else:
        rationale = "The picture has no visual gag, so the meme is not funny."
    return text, label, None, rationale, [draw_faces.draw(draw_faces.sample_scene(rng), face)]


def _hate(rng, label: str):
    if label == "yes":
        target, predicate = pick(rng, GROUPS), pick(rng, DEMEANING)
        rationale = f"The caption says {target}, a group of people, {predicate}; demeaning a "
        rationale += "group of people is hateful."
    elif rng.random() < 0.5:
        target, predicate = pick(rng, GROUPS), pick(rng, NEUTRAL)
        rationale = f"The caption talks about {target} without demeaning them, so it is not "
        rationale += "hateful."
    else:
        target, predicate = pick(rng, THINGS), pick(rng, DEMEANING)
        rationale = f"The caption insults {target}, which are things, not people, so it is not "
        rationale += "hateful."
    caption = f"{target[0].upper()}{target[1:]} {predicate}."
    text = pick(rng, HATE_PROMPTS).format(caption=caption)
    face = draw_faces.sample_face(rng, pick(rng, EMOTIONS))
    return text, label, None, rationale, [draw_faces.draw(draw_faces.sample_scene(rng), face)]


def _sarcasm(rng, label: str):
    sarcastic = label == "yes"
    # yes: positive caption, negative face. no: positive caption over joy, or a negative caption
    # over either valence (half each).
    positive_caption = sarcastic or bool(rng.random() < 0.5)
    if sarcastic:
        positive_face = False
    elif positive_caption:
        positive_face = True
    else:
        positive_face = bool(rng.random() < 0.5)
    emotion = "joy" if positive_face else pick(rng, NEGATIVE_FACES)
    caption = pick(rng, POSITIVE_CAPTIONS if positive_caption else NEGATIVE_CAPTIONS)
    tone = "positive" if positive_caption else "negative"
    face_tone = "positive" if positive_face else "negative"
    if sarcastic:
        verdict = "Positive words over a negative face, so it is sarcastic."
    elif positive_caption:
        verdict = "The words match the face, so it is not sarcastic."
    else:
        verdict = "A negative caption means what it says, so it is not sarcastic."
    # Each cue is named before the verdict.
    rationale = (
        f"The caption sounds {tone}. The face shows {emotion}, which is {face_tone}. {verdict}"
    )
    text = pick(rng, SARCASM_PROMPTS).format(caption=caption)
    face = draw_faces.sample_face(rng, emotion)
    return text, label, None, rationale, [draw_faces.draw(draw_faces.sample_scene(rng), face)]


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def encode_mp4(frames, fps: int = VIDEO_FPS) -> bytes:
    """H.264 in mp4, single-threaded so that the bytes are reproducible."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "16", "preset": "veryfast", "threads": "1"}
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_image(img)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def _balanced_labels(rng, labels, n: int) -> list[str]:
    """Labels dealt in shuffled rounds: exact balance, random order."""
    out: list[str] = []
    while len(out) < n:
        out.extend(str(x) for x in rng.permutation(labels))
    return out[:n]


def _task_counts(n: int) -> dict[str, int]:
    base, extra = divmod(n, len(TASKS))
    return {t: base + (1 if i < extra else 0) for i, t in enumerate(TASKS)}


def make_split(out: Path, split: str, n: int, seed: int, version: int = DEFAULT_VERSION) -> int:
    """Write one split's JSONL and media (``version``'s rules); returns the media bytes
    written."""
    split_index = list(SPLIT_SIZES).index(split)
    media_dir = out / "media" / split
    media_dir.mkdir(parents=True, exist_ok=True)
    records, total = [], 0
    for task_index, (task, count) in enumerate(_task_counts(n).items()):
        task_rng = np.random.default_rng([seed, split_index, task_index])
        labels = _balanced_labels(task_rng, TASK_LABELS[task], count)
        # Exactly round(VIDEO_SHARE * count) videos per emotion task, at seeded places.
        is_video = task_rng.permutation(np.arange(count) < round(VIDEO_SHARE * count))
        spec = scene_rules.SPECS.get(version)
        if spec is not None:  # cue scales dealt like the labels, independently of them
            scales = _balanced_labels(task_rng, scene_rules.SCALES[task], count)
        for i, label in enumerate(labels):
            rng = np.random.default_rng([seed, split_index, task_index, i])
            cause = None
            if spec is not None:
                text, answer, options, rationale, frames, cause = scene_rules.GENERATORS[task](
                    rng,
                    label,
                    video=bool(is_video[i]),
                    scale=scales[i],
                    key=(seed, split_index, task_index),
                    spec=spec,
                )
            elif task.startswith("emotion"):
                make: Callable = _GENERATORS[task]
                text, answer, options, rationale, frames = make(rng, label, bool(is_video[i]))
            else:
                text, answer, options, rationale, frames = _GENERATORS[task](rng, label)
            rid = f"{split}-{task}-{i:04d}"
            if len(frames) > 1:
                media = {"type": "video", "path": f"media/{split}/{rid}.mp4"}
                data = encode_mp4(frames)
            else:
                media = {"type": "image", "path": f"media/{split}/{rid}.png"}
                buf = io.BytesIO()
                frames[0].save(buf, format="PNG")
                data = buf.getvalue()
            (out / media["path"]).write_bytes(data)
            total += len(data)
            record = {
                "id": rid,
                "task": task,
                "media": media,
                "conversations": [
                    {"from": "human", "value": "<image>\n" + text},
                    {"from": "gpt", "value": answer},
                ],
                "answer": answer,
            }
            if options is not None:
                record["options"] = options
            record["rationale"] = rationale
            if cause is not None:
                record["cause"] = cause
            records.append(record)
    # Interleave tasks in a seeded order so that a file prefix holds every task.
    order = np.random.default_rng([seed, split_index, 99]).permutation(len(records))
    with open(out / f"{split}.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(records[k], ensure_ascii=False) + "\n" for k in order)
    return total


_GENERATORS = {
    "emotion_closed": lambda rng, label, video: _emotion(rng, label, True, video),
    "emotion_open": lambda rng, label, video: _emotion(rng, label, False, video),
    "intent": _intent,
    "hate": _hate,
    "humor": _humor,
    "sarcasm": _sarcasm,
}
assert set(_GENERATORS) == set(TASKS)


def _existing(out: Path, sizes: dict[str, int]) -> list[str]:
    """What a build would overwrite in ``out``."""
    names = [f"{split}.jsonl" for split in sizes] + [f"media/{split}" for split in sizes]
    return [name for name in names + ["dataset_info.json"] if (out / name).exists()]


def build(
    out: str | os.PathLike,
    seed: int = 0,
    sizes: dict[str, int] | None = None,
    *,
    version: int = DEFAULT_VERSION,
    overwrite: bool = False,
) -> Path:
    """Write the mini EmoBench ``version`` (1, 2 or 3) to ``out``; ``sizes`` overrides records per
    split. A folder that already holds split files or media is refused unless ``overwrite``."""
    if version not in FORMAT_VERSIONS:
        raise ValueError(f"mini EmoBench version {version!r} not in {sorted(FORMAT_VERSIONS)}")
    out = Path(out)
    sizes = {**SPLIT_SIZES, **(sizes or {})}
    existing = _existing(out, sizes)
    if existing and not overwrite:
        raise FileExistsError(
            f"{out} already holds {', '.join(existing)}; pass overwrite=True (--overwrite) to "
            "replace them, or choose another folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    for split, n in sizes.items():
        make_split(out, split, n, seed, version)
    info = {"name": "mini_emobench", "version": FORMAT_VERSIONS[version], "seed": seed}
    info["sizes"] = sizes
    (out / "dataset_info.json").write_text(json.dumps(info, indent=2) + "\n")
    return out


def _info(out: str | os.PathLike) -> dict | None:
    """``out``'s dataset_info.json if it describes a mini EmoBench build, else None."""
    try:
        info = json.loads((Path(out) / "dataset_info.json").read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and info.get("name") == "mini_emobench" else None


def built_version(out: str | os.PathLike) -> int | None:
    """The mini EmoBench version (1, 2, 3) ``out`` holds, or None (no build, or an unknown one)."""
    info = _info(out) or {}
    found = [v for v, text in FORMAT_VERSIONS.items() if text == info.get("version")]
    return found[0] if found else None


def is_stale(out: str | os.PathLike, seed: int = 0, version: int | None = None) -> bool:
    """Whether ``out`` holds a mini EmoBench built by an unknown version (or not by
    ``version``, if given) or at other sizes than the defaults with ``seed`` (False for a folder
    that is no mini EmoBench build at all)."""
    info = _info(out)
    if info is None:
        return False
    found = built_version(out)
    if found is None or (version is not None and found != version):
        return True
    return info.get("seed") != seed or info.get("sizes") != SPLIT_SIZES


@report_user_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--version",
        type=int,
        choices=sorted(FORMAT_VERSIONS),
        default=DEFAULT_VERSION,
        help=f"labelling rules: 1 (this docstring), 2 or 3 (scene_rules.py); default "
        f"{DEFAULT_VERSION}",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the split files OUT already holds"
    )
    for split, n in SPLIT_SIZES.items():
        parser.add_argument(f"--{split}", type=int, default=n, help=f"records (default {n})")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    sizes = {split: getattr(args, split) for split in SPLIT_SIZES}
    out = build(
        args.out, seed=args.seed, sizes=sizes, version=args.version, overwrite=args.overwrite
    )
    mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
    print(
        f"wrote {sum(sizes.values())} records ({mb:.1f} MB) to {out} in "
        f"{time.perf_counter() - start:.1f} s"
    )


if __name__ == "__main__":
    main()
