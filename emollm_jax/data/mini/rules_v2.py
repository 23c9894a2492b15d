"""The labelling rules of the mini EmoBench v2, one generator per sub-task, each imitating what a
public source data set is about (our rules; the sources' own data are not used).

Every generator returns ``(text, label, options, rationale, frames, cause)``. ``cause`` names
the true cause of the label: ``{"rule", "scale", "cues"}``, where ``scale`` is ``local``,
``global`` or ``relation`` and ``cues`` holds the cue values the rule reads; the rationale
states the same cause in words. Cue scales are dealt to records in shuffled rounds,
independently of the labels, by ``make_mini_emobench.make_split``.

- ``emotion_closed`` / ``emotion_open`` (facial expression at three scales). local: one face of
  random size and place shows the emotion (its mouth and brows; a video switches to it by
  half-way, as in v1). global: a crowd of six small faces, four of which share the emotion and
  two show two other emotions, one each; the label is the crowd's majority emotion, as in group
  affect recognition (GAF). relation: two faces with different emotions, an arrow points at one;
  the label is the marked face's emotion (emotion of the person a scene singles out, as in
  context-aware emotion data such as EMOTIC).
- ``intent`` (symbols at three scales, as Intentonomy and MDID read intent from the picture).
  local: a small badge in one corner shows the intent's symbol. global: the symbol is tiled over
  the whole background behind the face. relation: two badges of different intents, an arrow
  from the person points at the one that counts. The face's expression is random.
- ``humor`` (incongruity, the cue UR-FUNNY and meme humour data sets annotate). Funny ("yes")
  iff the picture holds an incongruity: local, a small red clown nose on the face; global, the
  whole landscape behind the face is upside down (ground above the sky); relation, the hat hangs
  under the chin instead of sitting on the head. "no" records of each scale show the congruent
  version. A red ball that is no nose appears at random in both labels; captions come from one
  pool for both.
- ``hate`` (Hateful Memes, with its benign confounders). The caption refers to "these" things in
  the picture; hateful ("yes") iff a demeaning caption refers to a picture of people. "no"
  records are half image confounders (the same demeaning captions over a picture of trash
  cans: an insult to things is no hate) and half text confounders (the same kind of picture of
  people with a neutral caption). Pictures come from a small pool per split and referent, so the
  same picture appears with a hateful and a benign caption, and the same caption with a hateful
  and a benign picture: neither modality alone decides (each alone reaches 75%).
- ``sarcasm`` (MUStARD, MMSD2: incongruity between what is said and what is shown). Sarcastic
  ("yes") iff the caption uses positive words, not negated, over a negative situation. The
  situation is shown either by a face (local; joy is positive, anger, disgust, fear and sadness
  negative) or by the scene (global; sunny is positive, stormy negative). "no" records are a
  third each: positive words over a positive situation; hard negatives, positive words negated
  ("not the best day") over a negative situation, said plainly; and negative captions over
  either situation.

Backgrounds, distractor objects, skin tone, positions, sizes and stroke widths are sampled
independently of every label.
"""

from __future__ import annotations

import numpy as np
from PIL import ImageDraw

import emollm_jax.data.mini.draw_faces as draw_faces
import emollm_jax.data.mini.draw_scenes as scenes
from emollm_jax.data.mini.texts import (
    BADGE_WORDS,
    BROW_WORDS,
    CLOSED_PROMPTS,
    HATE_PROMPTS,
    HUMOR_CAPTIONS,
    HUMOR_PROMPTS,
    INTENT_PROMPTS,
    MOUTH_WORDS,
    NEGATIVE_CAPTIONS,
    NEGATIVE_FACES,
    OPEN_PROMPTS,
    POSITIVE_CAPTIONS,
    SARCASM_PROMPTS,
    VIDEO_CLOSED_PROMPTS,
    VIDEO_OPEN_PROMPTS,
    pick,
    sentence_case,
)
from emollm_jax.tasks import EMOTIONS, INTENTS

SCALES = {
    "emotion_closed": ("local", "global", "relation"),
    "emotion_open": ("local", "global", "relation"),
    "intent": ("local", "global", "relation"),
    "humor": ("local", "global", "relation"),
    "hate": ("relation",),
    "sarcasm": ("local", "global"),
}

CROWD_PROMPTS_CLOSED = ("Which emotion does most of the crowd show? Options: {options}.",)
CROWD_PROMPTS_OPEN = ("Which emotion does most of the crowd show? Answer with one word.",)
MARKED_PROMPTS_CLOSED = (
    "Which emotion does the person the arrow points at show? Options: {options}.",
)
MARKED_PROMPTS_OPEN = ("Which emotion does the person the arrow points at show?",)

HATE_TEMPLATES = ("Look at these. They {predicate}.", "These ones {predicate}.")
DEMEANING_V2 = ("are vermin", "are worthless filth", "should vanish forever")
NEUTRAL_V2 = ("are my neighbours", "love to dance", "cook great food")
HATE_IMAGE_POOL = 6  # pictures per split and referent (people, things)

NEGATED_CAPTIONS = (
    "Not the best day ever.",
    "I do not love this at all.",
    "This is not a great surprise.",
    "Life is not wonderful today.",
)
SARCASM_NO_FORMS = ("congruent", "negated", "negative")

CROWD_SIZE, CROWD_MAJORITY = 6, 4


def _face_words(emotion: str) -> str:
    return f"{MOUTH_WORDS[emotion]} and {BROW_WORDS[emotion]}"


def _options(rng, label: str) -> list[str]:
    others = [e for e in EMOTIONS if e != label]
    chosen = [label] + list(rng.choice(others, size=3, replace=False))
    return [str(x) for x in rng.permutation(chosen)]


def _background(rng):
    return draw_faces.BACKGROUNDS[rng.integers(len(draw_faces.BACKGROUNDS))]


# ---------------------------------------------------------------------------------------------
# Emotion
# ---------------------------------------------------------------------------------------------


def _one_face(rng, label: str, video: bool):
    rx = float(rng.uniform(30, 50))
    ry_max = rx * 1.18
    cx = float(rng.uniform(rx + 2, draw_faces.CANVAS - 2 - rx))
    cy = float(rng.uniform(ry_max + 2, draw_faces.CANVAS - 2 - ry_max))
    face = scenes.face_at(rng, label, cx, cy, rx)
    background = _background(rng)
    clutter = int(rng.integers(1 << 30))

    def frame(f):
        img, d = scenes.canvas(background)
        scenes.distractors(np.random.default_rng(clutter), d)
        draw_faces.paint_face(d, f)
        return img

    if not video:
        rationale = f"{sentence_case(_face_words(label))}, so the person feels {label}."
        return [frame(face)], rationale, {"expression": label}
    n = int(rng.integers(8, 17))
    start = pick(rng, [e for e in EMOTIONS if e != label])
    switch = int(rng.integers(1, n // 2 + 1))
    drift = rng.uniform(-4, 4, size=2)
    frames = [
        frame(face.moved(*(drift * t / (n - 1)), emotion=start if t < switch else label))
        for t in range(n)
    ]
    rationale = (
        f"The face starts out showing {start}, then {_face_words(label)}; the expression at the "
        f"end is {label}."
    )
    return frames, rationale, {"expression": label, "start_expression": start}


def _crowd(rng, label: str):
    others = [str(x) for x in rng.choice([e for e in EMOTIONS if e != label], size=2, replace=False)]
    emotions = [label] * CROWD_MAJORITY + others
    emotions = [emotions[k] for k in rng.permutation(CROWD_SIZE)]
    img, d = scenes.canvas(_background(rng))
    scenes.distractors(rng, d, n_max=1)
    for k, emotion in enumerate(emotions):
        cx = 22 + 42 * (k % 3) + float(rng.uniform(-2, 2))
        cy = 38 + 54 * (k // 3) + float(rng.uniform(-2, 2))
        draw_faces.paint_face(d, scenes.face_at(rng, emotion, cx, cy, float(rng.uniform(16, 18))))
    rationale = (
        f"In most faces {_face_words(label)}, so the crowd feels {label}."
    )
    cues = {"majority_expression": label, "other_expressions": others}
    return [img], rationale, cues


def _marked(rng, label: str):
    other = pick(rng, [e for e in EMOTIONS if e != label])
    side = pick(rng, ("left", "right"))
    xs = {"left": 34.0, "right": 94.0}
    img, d = scenes.canvas(_background(rng))
    scenes.distractors(rng, d, n_max=1)
    target = None
    for s, x in xs.items():
        face = scenes.face_at(rng, label if s == side else other, x, 78.0, float(rng.uniform(24, 27)))
        draw_faces.paint_face(d, face)
        if s == side:
            target = face
    colour = tuple(int(v) for v in rng.integers(0, 90, size=3))
    start = (64.0 + float(rng.uniform(-6, 6)), 6.0)
    scenes.arrow(d, start, (target.cx, target.cy - target.ry - 2), colour)
    rationale = (
        f"The arrow points at the face on the {side}: {_face_words(label)}, so that person feels "
        f"{label}."
    )
    cues = {"marker": "arrow", "side": side, "expression": label, "other_expression": other}
    return [img], rationale, cues


def emotion(rng, label: str, *, closed: bool, video: bool, scale: str, key=None):
    if video or scale == "local":
        frames, rationale, cues = _one_face(rng, label, video)
        if video:
            prompts = VIDEO_CLOSED_PROMPTS if closed else VIDEO_OPEN_PROMPTS
        else:
            prompts = CLOSED_PROMPTS if closed else OPEN_PROMPTS
        scale = "local"
    elif scale == "global":
        frames, rationale, cues = _crowd(rng, label)
        prompts = CROWD_PROMPTS_CLOSED if closed else CROWD_PROMPTS_OPEN
    else:
        frames, rationale, cues = _marked(rng, label)
        prompts = MARKED_PROMPTS_CLOSED if closed else MARKED_PROMPTS_OPEN
    options = _options(rng, label) if closed else None
    text = pick(rng, prompts).format(options=", ".join(options or ()))
    cause = {"rule": "emotion_" + {"local": "face", "global": "crowd", "relation": "marked_face"}[scale]}
    return text, label, options, rationale, frames, cause | {"scale": scale, "cues": cues}


# ---------------------------------------------------------------------------------------------
# Intent
# ---------------------------------------------------------------------------------------------


def intent(rng, label: str, *, scale: str, key=None, **_):
    img, d = scenes.canvas(_background(rng))
    expression = pick(rng, EMOTIONS)
    cues: dict = {"symbol": BADGE_WORDS[label]}
    if scale == "global":
        scenes.tiled_symbol(d, label, tuple(float(v) for v in rng.uniform(4, 16, size=2)))
    else:
        scenes.distractors(rng, d, n_max=1)
    if scale == "relation":
        face = scenes.face_at(rng, expression, 38.0, 66.0, float(rng.uniform(26, 30)))
        draw_faces.paint_face(d, face)
        other = pick(rng, [i for i in INTENTS if i != label])
        upper = bool(rng.random() < 0.5)
        spots = {True: (102.0, 30.0), False: (102.0, 100.0)}
        r = float(rng.uniform(14, 16))
        draw_faces.paint_badge(d, label, *spots[upper], r=r)
        draw_faces.paint_badge(d, other, *spots[not upper], r=r)
        tx, ty = spots[upper]
        colour = tuple(int(v) for v in rng.integers(0, 90, size=3))
        scenes.arrow(d, (face.cx + face.rx - 4, face.cy), (tx - r - 2, ty), colour, width=4.0)
        rationale = (
            f"The person's arrow points at the badge with {BADGE_WORDS[label]}, which signals the "
            f"intent to {label}; the other badge, {BADGE_WORDS[other]}, is not pointed at."
        )
        cues |= {"marker": "arrow", "other_symbol": BADGE_WORDS[other]}
    else:
        face = scenes.face_at(rng, expression, 64.0 + float(rng.uniform(-4, 4)), 64.0,
                              float(rng.uniform(34, 40)))
        draw_faces.paint_face(d, face)
        if scale == "local":
            x, y = (float(v) for v in rng.choice([17.0, 111.0], size=2))
            draw_faces.paint_badge(d, label, x, y, r=float(rng.uniform(12, 15)))
            rationale = (
                f"A small badge in the corner shows {BADGE_WORDS[label]}, which signals the "
                f"intent to {label}."
            )
        else:
            rationale = (
                f"The background is tiled with {BADGE_WORDS[label]}, which signals the intent "
                f"to {label}."
            )
    text = pick(rng, INTENT_PROMPTS).format(options=", ".join(INTENTS))
    rule = {"local": "intent_badge", "global": "intent_wallpaper", "relation": "intent_marked_badge"}
    cause = {"rule": rule[scale], "scale": scale, "cues": cues}
    return text, label, None, rationale, [img], cause


# ---------------------------------------------------------------------------------------------
# Humor
# ---------------------------------------------------------------------------------------------


def humor(rng, label: str, *, scale: str, key=None, **_):
    funny = label == "yes"
    expression = pick(rng, EMOTIONS)
    if scale == "global":
        land = scenes.landscape(rng)
        img = land.rotate(180) if funny else land
        d = ImageDraw.Draw(img)
        face = scenes.face_at(rng, expression, 64.0 + float(rng.uniform(-6, 6)), 54.0,
                              float(rng.uniform(24, 28)))
    else:
        img, d = scenes.canvas(_background(rng))
        rx = float(rng.uniform(28, 32)) if scale == "relation" else float(rng.uniform(34, 44))
        face = scenes.face_at(rng, expression, 64.0 + float(rng.uniform(-5, 5)),
                              64.0 + float(rng.uniform(-4, 4)), rx)
    scenes.distractors(rng, d, n_max=1)
    draw_faces.paint_face(d, face)
    if scale == "local":
        if funny:
            scenes.clown_nose(d, face, float(rng.uniform(5, 7)))
        yes = "The person wears a small red clown nose, a visual gag, so it is funny."
        no = "No clown nose and nothing out of place, so it is not funny."
        cues = {"clown_nose": funny}
    elif scale == "global":
        yes = "The scene is upside down, ground above sky: an incongruity, so it is funny."
        no = "The scene stands upright and nothing is out of place, so it is not funny."
        cues = {"scene_upside_down": funny}
    else:
        scenes.hat(d, face, on_head=not funny)
        yes = "The hat hangs under the chin, not on the head: an incongruity, so it is funny."
        no = "The hat sits on the head, nothing out of place, so it is not funny."
        cues = {"hat_under_chin": funny}
    text = pick(rng, HUMOR_PROMPTS).format(caption=pick(rng, HUMOR_CAPTIONS))
    rule = {"local": "humor_clown_nose", "global": "humor_upside_down", "relation": "humor_hat"}
    cause = {"rule": rule[scale], "scale": scale, "cues": cues}
    return text, label, None, yes if funny else no, [img], cause


# ---------------------------------------------------------------------------------------------
# Hate
# ---------------------------------------------------------------------------------------------


def hate_picture(key, referent: str, image_id: int):
    """Picture ``image_id`` of the split's pool for ``referent`` ("people" or "things"): the
    same key and id give the same pixels, whatever caption goes with it."""
    rng = np.random.default_rng([*key, 1000 + ("people", "things").index(referent), image_id])
    img, d = scenes.canvas(_background(rng))
    scenes.distractors(rng, d, n_max=1)
    for k in range(3):
        x, y = 24.0 + 40.0 * k + float(rng.uniform(-3, 3)), 74.0 + float(rng.uniform(-6, 6))
        if referent == "people":
            draw_faces.paint_face(d, scenes.face_at(rng, pick(rng, EMOTIONS), x, y, 17.0))
        else:
            colour = tuple(int(v) for v in rng.integers(90, 200, size=3))
            scenes.trash_can(d, x, y, 17.0, colour)
    return img


def hate(rng, label: str, *, key, **_):
    if label == "yes":
        form, predicate, referent = "none", pick(rng, DEMEANING_V2), "people"
        rationale = (
            f"The caption says they {predicate} and the picture shows people: demeaning a group "
            "of people is hateful."
        )
    elif rng.random() < 0.5:
        form, predicate, referent = "image", pick(rng, DEMEANING_V2), "things"
        rationale = (
            f"The caption says they {predicate}, but the picture shows trash cans, things, not "
            "people, so it is not hateful."
        )
    else:
        form, predicate, referent = "text", pick(rng, NEUTRAL_V2), "people"
        rationale = (
            f"The picture shows people, but the caption says they {predicate}, which does not "
            "demean them, so it is not hateful."
        )
    image_id = int(rng.integers(HATE_IMAGE_POOL))
    caption = pick(rng, HATE_TEMPLATES).format(predicate=predicate)
    text = pick(rng, HATE_PROMPTS).format(caption=caption)
    cues = {
        "caption": "demeaning" if predicate in DEMEANING_V2 else "neutral",
        "referent": referent,
        "confounder": form,
        "image_id": image_id,
    }
    cause = {"rule": "hate_caption_and_referent", "scale": "relation", "cues": cues}
    return text, label, None, rationale, [hate_picture(key, referent, image_id)], cause


# ---------------------------------------------------------------------------------------------
# Sarcasm
# ---------------------------------------------------------------------------------------------


def sarcasm(rng, label: str, *, scale: str, key=None, **_):
    if label == "yes":
        form, wording, positive_shown = "sarcastic", "positive", False
    else:
        form = pick(rng, SARCASM_NO_FORMS)
        wording = {"congruent": "positive", "negated": "negated", "negative": "negative"}[form]
        positive_shown = {"congruent": True, "negated": False}.get(form, bool(rng.random() < 0.5))
    captions = {"positive": POSITIVE_CAPTIONS, "negated": NEGATED_CAPTIONS,
                "negative": NEGATIVE_CAPTIONS}
    caption = pick(rng, captions[wording])
    valence = "positive" if positive_shown else "negative"
    if scale == "local":
        emotion = "joy" if positive_shown else pick(rng, NEGATIVE_FACES)
        img, d = scenes.canvas(_background(rng))
        scenes.distractors(rng, d, n_max=1)
        rx = float(rng.uniform(38, 48))
        face = scenes.face_at(rng, emotion, 64.0 + float(rng.uniform(-6, 6)),
                              66.0 + float(rng.uniform(-4, 4)), rx)
        draw_faces.paint_face(d, face)
        shown = f"The face shows {emotion}, which is {valence}."
        cues = {"wording": wording, "shown_by": "face", "shown": emotion, "valence": valence}
    else:
        img = scenes.landscape(rng, stormy=not positive_shown)
        weather = "sunny" if positive_shown else "stormy"
        shown = f"The scene is {weather}, which is {valence}."
        cues = {"wording": wording, "shown_by": "scene", "shown": weather, "valence": valence}
    said = {
        "positive": "The caption sounds positive.",
        "negated": "The caption negates positive words.",
        "negative": "The caption sounds negative.",
    }[wording]
    verdict = {
        "sarcastic": "Positive words, negative situation: sarcastic.",
        "congruent": "The words match the situation: not sarcastic.",
        "negated": "Said plainly: not sarcastic.",
        "negative": "Meant as said: not sarcastic.",
    }[form]
    text = pick(rng, SARCASM_PROMPTS).format(caption=caption)
    cause = {"rule": "sarcasm_incongruity", "scale": scale, "cues": cues | {"form": form}}
    return text, label, None, f"{said} {shown} {verdict}", [img], cause


GENERATORS = {
    "emotion_closed": lambda rng, label, **kw: emotion(rng, label, closed=True, **kw),
    "emotion_open": lambda rng, label, **kw: emotion(rng, label, closed=False, **kw),
    "intent": intent,
    "hate": hate,
    "humor": humor,
    "sarcasm": sarcasm,
}
