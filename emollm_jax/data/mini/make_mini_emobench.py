"""Make the mini EmoBench: a small EmoBench-format data set drawn by code, every label decidable.

    emollm data mini OUT [--seed N] [--train N --validation N --test N]

writes ``OUT/{train,validation,test}.jsonl`` (see ``emollm_jax/data/records.py`` for the record
format) and the media under ``OUT/media/<split>/`` (128x128 PNG images, 128x128 H.264 mp4 videos
of 8-16 frames). Same seed, same bytes. Default size 2000/1200/1200 records (200 per sub-task
in validation and test, so that one record moves a sub-task's accuracy by half a point), about
12 MB. A folder that already holds split files is refused unless ``--overwrite``.

The six sub-tasks get equal shares and each task's labels are exactly balanced per split (labels
are dealt in shuffled rounds). The labelling rules are ours; each record's ``rationale`` states
the rule's cause for that record (EmoPrompt uses it as a reasoning target):

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
from emollm_jax.tasks import EMOTIONS, INTENTS, TASK_LABELS, TASKS

SPLIT_SIZES = {"train": 2000, "validation": 1200, "test": 1200}
VIDEO_SHARE = 0.3  # of the emotion records
VIDEO_FPS = 8
VIDEO_FRAME_RANGE = (8, 16)  # inclusive
FORMAT_VERSION = "1.0.0"

NEGATIVE_FACES = ("anger", "disgust", "fear", "sadness")

POSITIVE_CAPTIONS = (
    "Best day ever!",
    "I love this so much.",
    "What a great surprise.",
    "Life is wonderful today.",
    "This is the happiest moment.",
    "Everything went perfectly.",
)
NEGATIVE_CAPTIONS = (
    "This is the worst day.",
    "I hate everything about this.",
    "What a terrible mess.",
    "Nothing ever goes right.",
    "This is so awful.",
    "I am having a horrible time.",
)
HUMOR_CAPTIONS = (
    "Me on a Monday morning.",
    "When the wifi comes back.",
    "My face at the meeting.",
    "Waiting for the weekend.",
    "When someone eats my lunch.",
    "Me after one more coffee.",
)
GROUPS = ("blorps", "zingles", "people from Varn", "the Quell folk", "those Mibbers")
THINGS = ("mondays", "traffic jams", "soggy fries", "cold coffee", "rainy weekends")
DEMEANING = ("are vermin", "are worthless filth", "should vanish forever", "are a plague")
NEUTRAL = ("are my neighbours", "love to dance", "live near the river", "cook great food")

MOUTH_WORDS = {
    "anger": "the teeth are clenched",
    "disgust": "the mouth is twisted to one side and the nose wrinkles",
    "fear": "the mouth trembles in a wavy line",
    "joy": "the mouth is open in a wide smile",
    "sadness": "the mouth curves down",
    "surprise": "the mouth is a round open O",
    "neutral": "the mouth is a straight line",
}
BROW_WORDS = {
    "anger": "the brows are pulled down in a V",
    "disgust": "one brow is raised",
    "fear": "the brows are raised and pulled together over wide eyes",
    "joy": "the brows are relaxed arches over smiling eyes",
    "sadness": "the inner brows are raised",
    "surprise": "the brows are raised high over round eyes",
    "neutral": "the brows are level",
}
BADGE_WORDS = {
    "greet": "a waving hand",
    "comfort": "a heart",
    "warn": "a warning triangle",
    "celebrate": "a star",
    "complain": "a lightning bolt",
    "request": "a question mark",
}

CLOSED_PROMPTS = (
    "Which emotion does the person show? Options: {options}.",
    "Pick the emotion on this face from: {options}.",
    "What is the person feeling? Choose one of: {options}.",
)
OPEN_PROMPTS = (
    "Which emotion does the person show? Answer with one word.",
    "What is the person feeling?",
    "Name the emotion on this face.",
)
VIDEO_CLOSED_PROMPTS = (
    "Which emotion does the person show at the end of the video? Options: {options}.",
    "Pick the final emotion in this clip from: {options}.",
)
VIDEO_OPEN_PROMPTS = (
    "Which emotion does the person show at the end of the video? Answer with one word.",
    "Name the final emotion in this clip.",
)
INTENT_PROMPTS = (
    "What does the person intend? Options: {options}.",
    "What is the intent of this picture? Choose from: {options}.",
)
HATE_PROMPTS = (
    'The caption says: "{caption}" Is this meme hateful? Answer yes or no.',
    'Caption: "{caption}" Is this hateful? yes or no?',
)
HUMOR_PROMPTS = (
    'The caption says: "{caption}" Is this meme funny? Answer yes or no.',
    'Caption: "{caption}" Is this picture funny? yes or no?',
)
SARCASM_PROMPTS = (
    'The caption says: "{caption}" Is this meme sarcastic? Answer yes or no.',
    'Caption: "{caption}" Is the caption sarcastic? yes or no?',
)


# ---------------------------------------------------------------------------------------------
# One record per call: (record without id/media path, list of frames, media type)
# ---------------------------------------------------------------------------------------------


def _pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:]


def _emotion_rationale(emotion: str) -> str:
    return (
        f"{_sentence_case(MOUTH_WORDS[emotion])} and {BROW_WORDS[emotion]}, so the person feels "
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
        start = _pick(rng, [e for e in EMOTIONS if e != label])
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
    text = _pick(rng, prompts).format(options=", ".join(options or ()))
    return text, label, options, rationale, frames


def _intent(rng, label: str):
    face = draw_faces.sample_face(rng, _pick(rng, EMOTIONS))
    scene = draw_faces.sample_scene(rng, badge=label)
    text = _pick(rng, INTENT_PROMPTS).format(options=", ".join(INTENTS))
    rationale = f"The badge shows {BADGE_WORDS[label]}, which signals the intent to {label}."
    return text, label, None, rationale, [draw_faces.draw(scene, face)]


def _humor(rng, label: str):
    funny = label == "yes"
    face = draw_faces.sample_face(rng, _pick(rng, EMOTIONS), clown_nose=funny)
    caption = _pick(rng, HUMOR_CAPTIONS)
    text = _pick(rng, HUMOR_PROMPTS).format(caption=caption)
    if funny:
        rationale = "The person wears a big red clown nose, a visual gag, so the meme is funny."
    else:
        rationale = "The picture has no visual gag, so the meme is not funny."
    return text, label, None, rationale, [draw_faces.draw(draw_faces.sample_scene(rng), face)]


def _hate(rng, label: str):
    if label == "yes":
        target, predicate = _pick(rng, GROUPS), _pick(rng, DEMEANING)
        rationale = f"The caption says {target}, a group of people, {predicate}; demeaning a "
        rationale += "group of people is hateful."
    elif rng.random() < 0.5:
        target, predicate = _pick(rng, GROUPS), _pick(rng, NEUTRAL)
        rationale = f"The caption talks about {target} without demeaning them, so it is not "
        rationale += "hateful."
    else:
        target, predicate = _pick(rng, THINGS), _pick(rng, DEMEANING)
        rationale = f"The caption insults {target}, which are things, not people, so it is not "
        rationale += "hateful."
    caption = f"{target[0].upper()}{target[1:]} {predicate}."
    text = _pick(rng, HATE_PROMPTS).format(caption=caption)
    face = draw_faces.sample_face(rng, _pick(rng, EMOTIONS))
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
    emotion = "joy" if positive_face else _pick(rng, NEGATIVE_FACES)
    caption = _pick(rng, POSITIVE_CAPTIONS if positive_caption else NEGATIVE_CAPTIONS)
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
    text = _pick(rng, SARCASM_PROMPTS).format(caption=caption)
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


def make_split(out: Path, split: str, n: int, seed: int) -> int:
    """Write one split's JSONL and media; returns the media bytes written."""
    split_index = list(SPLIT_SIZES).index(split)
    media_dir = out / "media" / split
    media_dir.mkdir(parents=True, exist_ok=True)
    records, total = [], 0
    for task_index, (task, count) in enumerate(_task_counts(n).items()):
        task_rng = np.random.default_rng([seed, split_index, task_index])
        labels = _balanced_labels(task_rng, TASK_LABELS[task], count)
        # Exactly round(VIDEO_SHARE * count) videos per emotion task, at seeded places.
        is_video = task_rng.permutation(np.arange(count) < round(VIDEO_SHARE * count))
        for i, label in enumerate(labels):
            rng = np.random.default_rng([seed, split_index, task_index, i])
            make: Callable = _GENERATORS[task]
            if task.startswith("emotion"):
                text, answer, options, rationale, frames = make(rng, label, bool(is_video[i]))
            else:
                text, answer, options, rationale, frames = make(rng, label)
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
    overwrite: bool = False,
) -> Path:
    """Write the mini EmoBench to ``out``; ``sizes`` overrides records per split. A folder
    that already holds split files or media is refused unless ``overwrite``."""
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
        make_split(out, split, n, seed)
    info = {"name": "mini_emobench", "version": FORMAT_VERSION, "seed": seed, "sizes": sizes}
    (out / "dataset_info.json").write_text(json.dumps(info, indent=2) + "\n")
    return out


def is_stale(out: str | os.PathLike, seed: int = 0) -> bool:
    """Whether ``out`` holds a mini EmoBench built by another version or at other sizes than
    the defaults with ``seed`` (False for a folder that is no mini EmoBench build at all)."""
    try:
        info = json.loads((Path(out) / "dataset_info.json").read_text())
    except (OSError, ValueError):
        return False
    if info.get("name") != "mini_emobench":
        return False
    expected = {"version": FORMAT_VERSION, "seed": seed, "sizes": SPLIT_SIZES}
    return any(info.get(key) != value for key, value in expected.items())


@report_user_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the split files OUT already holds"
    )
    for split, n in SPLIT_SIZES.items():
        parser.add_argument(f"--{split}", type=int, default=n, help=f"records (default {n})")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    sizes = {split: getattr(args, split) for split in SPLIT_SIZES}
    out = build(args.out, seed=args.seed, sizes=sizes, overwrite=args.overwrite)
    mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
    print(
        f"wrote {sum(sizes.values())} records ({mb:.1f} MB) to {out} in "
        f"{time.perf_counter() - start:.1f} s"
    )


if __name__ == "__main__":
    main()
