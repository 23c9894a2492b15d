"""The labelling rules of the mini EmoBench v2 and v3, one generator per sub-task, each imitating
what a public source data set is about (our rules; the sources' own data are not used). The
rules below are v2's; ``Spec`` holds what v3 changes (``V3``), and the generators take it as
``spec``.

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
  people with a neutral caption). Pictures come from a pool per split and referent, so the
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

v3 keeps every rule's phenomenon and changes what v2's measurements showed to measure the
picture's size or a shortcut rather than the phenomenon (the tiny model sees 64x64 pixels in a
4x4 grid of patches; v2's emotion and intent cues were too small to read there, and its global
humour and sarcasm cues were read from colour alone):

- emotion: the one face is larger (half-width 40-50 px, not 30-50) and near the centre (within
  4 px, not anywhere); the crowd is four faces in a 2x2 grid, three sharing the emotion (not six
  small ones); the two marked faces are larger.
- intent: badges of radius 22-24 px (not 12-16), the wallpaper's symbols of radius 11 px.
- humour: local, the clown nose is larger (radius 9-11 px, not 5-7); global, the landscape's
  sky and ground take two colours from one pool and the horizon lies anywhere from 40 to 88 px,
  so an upside-down scene differs from an upright one only in which way its tree and house
  point (the face in front is smaller, half-width 16-18 px, so that it hides neither);
  relation, the face wears a hat on its head in both labels and a second hat either hangs under
  the chin ("yes") or stands on the ground ("no").
- hate: pictures come from a pool of 40 per split and referent, not 6 (with 6, each of the 12
  validation pictures was read as people or as things as a whole, so a run's hate accuracy
  rested on 12 decisions and varied by 15 points between seeds); the trash cans take the faces'
  skin colours, so that people and things differ in shape, not colour (with a pool of 40 and
  colour to go by, hate reached 95%); people and things are smaller (half-width 15 px, not 17).
- sarcasm: the global situation is a crowd's mood (three of four faces joyful, or three of four
  negative) instead of the weather; "no" records are half positive words over a positive
  situation, a quarter negated positive words and a quarter negative words, both over a negative
  situation, so that the caption alone and the situation alone are each right on 75% of the
  records (v2: the caption alone on 83%).
"""

from __future__ import annotations

from dataclasses import dataclass

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

NEGATED_CAPTIONS = (
    "Not the best day ever.",
    "I do not love this at all.",
    "This is not a great surprise.",
    "Life is not wonderful today.",
)
SARCASM_NO_FORMS = ("congruent", "negated", "negative")


@dataclass(frozen=True)
class Spec:
    """What differs between the scene rule sets: sizes and layouts of the cues, and three
    choices of v3 (see the module docstring). Ranges are (low, high) of a uniform draw, in
    pixels of the 128x128 canvas."""

    face_rx: tuple[float, float]  # the local emotion face's half-width
    face_jitter: float | None  # its centre's offset from the canvas's; None: anywhere
    crowd_grid: tuple[int, int]  # columns, rows
    crowd_origin: tuple[float, float]  # centre of the first face
    crowd_step: tuple[float, float]
    crowd_rx: tuple[float, float]
    crowd_majority: int
    marked_rx: tuple[float, float]
    marked_y: float
    badge_r: tuple[float, float]  # the local intent badge
    badge_spots: tuple[float, float]  # its x and y are drawn from these
    wallpaper_r: float
    wallpaper_step: float
    marked_badge_r: tuple[float, float]
    nose_r: tuple[float, float]
    scene_face_rx: tuple[float, float]  # the face in front of the humour landscape
    hate_r: float  # half-width of each person or thing in a hate picture
    hate_pool: int  # pictures per split and referent (people, things)
    things_in_skin_tones: bool  # the trash cans take the faces' skin colours
    # v3: the upside-down landscape's sky and ground colours are label-free (only the tree's
    # and the house's orientation tell up from down); the humour hat relation compares a hat
    # under the chin with one on the ground, the face wearing a third on its head either way;
    # sarcasm's global situation is a crowd's mood, not the weather.
    free_landscape_colours: bool = False
    hat_on_ground: bool = False
    sarcasm_crowd: bool = False
    # How sarcasm's "no" records divide among SARCASM_NO_FORMS.
    sarcasm_no_weights: tuple[float, float, float] | None = None  # None: uniform, as v2 drew
    # Whether negative captions ("meant as said") sit over either situation or a negative one.
    negative_caption_over_either: bool = True


V2 = Spec(
    face_rx=(30, 50),
    face_jitter=None,
    crowd_grid=(3, 2),
    crowd_origin=(22, 38),
    crowd_step=(42, 54),
    crowd_rx=(16, 18),
    crowd_majority=4,
    marked_rx=(24, 27),
    marked_y=78.0,
    badge_r=(12, 15),
    badge_spots=(17.0, 111.0),
    wallpaper_r=8.0,
    wallpaper_step=24.0,
    marked_badge_r=(14, 16),
    nose_r=(5, 7),
    scene_face_rx=(24, 28),
    hate_r=17.0,
    hate_pool=6,
    things_in_skin_tones=False,
)
V3 = Spec(
    face_rx=(40, 50),
    face_jitter=4.0,
    crowd_grid=(2, 2),
    crowd_origin=(34, 36),
    crowd_step=(60, 58),
    crowd_rx=(24, 26),
    crowd_majority=3,
    marked_rx=(27, 29),
    marked_y=80.0,
    badge_r=(22, 24),
    badge_spots=(26.0, 102.0),
    wallpaper_r=11.0,
    wallpaper_step=32.0,
    marked_badge_r=(22, 24),
    nose_r=(9, 11),
    scene_face_rx=(16, 18),
    hate_r=15.0,
    hate_pool=40,
    things_in_skin_tones=True,
    free_landscape_colours=True,
    hat_on_ground=True,
    sarcasm_crowd=True,
    sarcasm_no_weights=(0.5, 0.25, 0.25),
    negative_caption_over_either=False,
)
SPECS = {2: V2, 3: V3}


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


def _one_face(rng, label: str, video: bool, spec: Spec):
    rx = float(rng.uniform(*spec.face_rx))
    if spec.face_jitter is None:  # anywhere on the canvas
        ry_max = rx * 1.18
        cx = float(rng.uniform(rx + 2, draw_faces.CANVAS - 2 - rx))
        cy = float(rng.uniform(ry_max + 2, draw_faces.CANVAS - 2 - ry_max))
    else:  # near the centre
        cx, cy = (64.0 + float(rng.uniform(-spec.face_jitter, spec.face_jitter)) for _ in "xy")
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


def _crowd_size(spec: Spec) -> int:
    return spec.crowd_grid[0] * spec.crowd_grid[1]


def _paint_crowd(rng, emotions: list[str], spec: Spec):
    """A picture of a crowd: one face per emotion, on the spec's grid, in the given order."""
    img, d = scenes.canvas(_background(rng))
    scenes.distractors(rng, d, n_max=1)
    cols = spec.crowd_grid[0]
    (ox, oy), (sx, sy) = spec.crowd_origin, spec.crowd_step
    for k, emotion in enumerate(emotions):
        cx = ox + sx * (k % cols) + float(rng.uniform(-2, 2))
        cy = oy + sy * (k // cols) + float(rng.uniform(-2, 2))
        rx = float(rng.uniform(*spec.crowd_rx))
        draw_faces.paint_face(d, scenes.face_at(rng, emotion, cx, cy, rx))
    return img


def _crowd(rng, label: str, spec: Spec):
    size, majority = _crowd_size(spec), spec.crowd_majority
    pool = [e for e in EMOTIONS if e != label]
    others = [str(x) for x in rng.choice(pool, size=size - majority, replace=False)]
    emotions = [label] * majority + others
    img = _paint_crowd(rng, [emotions[k] for k in rng.permutation(size)], spec)
    rationale = (
        f"In most faces {_face_words(label)}, so the crowd feels {label}."
    )
    cues = {"majority_expression": label, "other_expressions": others}
    return [img], rationale, cues


def _marked(rng, label: str, spec: Spec):
    other = pick(rng, [e for e in EMOTIONS if e != label])
    side = pick(rng, ("left", "right"))
    xs = {"left": 34.0, "right": 94.0}
    img, d = scenes.canvas(_background(rng))
    scenes.distractors(rng, d, n_max=1)
    target = None
    for s, x in xs.items():
        emotion = label if s == side else other
        face = scenes.face_at(rng, emotion, x, spec.marked_y, float(rng.uniform(*spec.marked_rx)))
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


def emotion(rng, label: str, *, closed: bool, video: bool, scale: str, spec: Spec = V2, key=None):
    if video or scale == "local":
        frames, rationale, cues = _one_face(rng, label, video, spec)
        if video:
            prompts = VIDEO_CLOSED_PROMPTS if closed else VIDEO_OPEN_PROMPTS
        else:
            prompts = CLOSED_PROMPTS if closed else OPEN_PROMPTS
        scale = "local"
    elif scale == "global":
        frames, rationale, cues = _crowd(rng, label, spec)
        prompts = CROWD_PROMPTS_CLOSED if closed else CROWD_PROMPTS_OPEN
    else:
        frames, rationale, cues = _marked(rng, label, spec)
        prompts = MARKED_PROMPTS_CLOSED if closed else MARKED_PROMPTS_OPEN
    options = _options(rng, label) if closed else None
    text = pick(rng, prompts).format(options=", ".join(options or ()))
    rule = {"local": "face", "global": "crowd", "relation": "marked_face"}[scale]
    cause = {"rule": "emotion_" + rule}
    return text, label, options, rationale, frames, cause | {"scale": scale, "cues": cues}


# ---------------------------------------------------------------------------------------------
# Intent
# ---------------------------------------------------------------------------------------------


def intent(rng, label: str, *, scale: str, spec: Spec = V2, key=None, **_):
    img, d = scenes.canvas(_background(rng))
    expression = pick(rng, EMOTIONS)
    cues: dict = {"symbol": BADGE_WORDS[label]}
    if scale == "global":
        offset = tuple(float(v) for v in rng.uniform(4, 16, size=2))
        scenes.tiled_symbol(d, label, offset, step=spec.wallpaper_step, r=spec.wallpaper_r)
    else:
        scenes.distractors(rng, d, n_max=1)
    if scale == "relation":
        face = scenes.face_at(rng, expression, 38.0, 66.0, float(rng.uniform(26, 30)))
        draw_faces.paint_face(d, face)
        other = pick(rng, [i for i in INTENTS if i != label])
        upper = bool(rng.random() < 0.5)
        spots = {True: (102.0, 30.0), False: (102.0, 100.0)}
        r = float(rng.uniform(*spec.marked_badge_r))
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
            x, y = (float(v) for v in rng.choice(list(spec.badge_spots), size=2))
            draw_faces.paint_badge(d, label, x, y, r=float(rng.uniform(*spec.badge_r)))
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
    rule = {
        "local": "intent_badge", "global": "intent_wallpaper", "relation": "intent_marked_badge"
    }
    cause = {"rule": rule[scale], "scale": scale, "cues": cues}
    return text, label, None, rationale, [img], cause


# ---------------------------------------------------------------------------------------------
# Humor
# ---------------------------------------------------------------------------------------------


def humor(rng, label: str, *, scale: str, spec: Spec = V2, key=None, **_):
    funny = label == "yes"
    expression = pick(rng, EMOTIONS)
    ground_hat = scale == "relation" and spec.hat_on_ground
    if scale == "global":
        land = scenes.landscape(rng, free_colours=spec.free_landscape_colours)
        img = land.rotate(180) if funny else land
        d = ImageDraw.Draw(img)
        face = scenes.face_at(rng, expression, 64.0 + float(rng.uniform(-6, 6)), 54.0,
                              float(rng.uniform(*spec.scene_face_rx)))
    else:
        img, d = scenes.canvas(_background(rng))
        rx = float(rng.uniform(28, 32)) if scale == "relation" else float(rng.uniform(34, 44))
        face = scenes.face_at(rng, expression, 64.0 + float(rng.uniform(-5, 5)),
                              (50.0 if ground_hat else 64.0) + float(rng.uniform(-4, 4)), rx)
    scenes.distractors(rng, d, n_max=1)
    draw_faces.paint_face(d, face)
    if scale == "local":
        if funny:
            scenes.clown_nose(d, face, float(rng.uniform(*spec.nose_r)))
        yes = "The person wears a small red clown nose, a visual gag, so it is funny."
        no = "No clown nose and nothing out of place, so it is not funny."
        cues = {"clown_nose": funny}
    elif scale == "global" and spec.free_landscape_colours:
        yes = "The tree and the house hang upside down, the scene is upside down: funny."
        no = "The tree and the house stand upright, nothing out of place, so it is not funny."
        cues = {"scene_upside_down": funny}
    elif scale == "global":
        yes = "The scene is upside down, ground above sky: an incongruity, so it is funny."
        no = "The scene stands upright and nothing is out of place, so it is not funny."
        cues = {"scene_upside_down": funny}
    elif ground_hat:
        scenes.hat(d, face, on_head=True)
        if funny:
            scenes.hat(d, face, on_head=False)
        else:
            scenes.hat_on_ground(d, face, float(rng.uniform(20, 108)))
        yes = "A second hat hangs under the chin, not on the ground: out of place, so it is funny."
        no = "One hat is on the head, the other lies on the ground: nothing out of place."
        cues = {"hat_under_chin": funny}
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


def hate_picture(key, referent: str, image_id: int, spec: Spec = V2):
    """Picture ``image_id`` of the split's pool for ``referent`` ("people" or "things"): the
    same key and id give the same pixels, whatever caption goes with it."""
    rng = np.random.default_rng([*key, 1000 + ("people", "things").index(referent), image_id])
    img, d = scenes.canvas(_background(rng))
    scenes.distractors(rng, d, n_max=1)
    for k in range(3):
        x, y = 24.0 + 40.0 * k + float(rng.uniform(-3, 3)), 74.0 + float(rng.uniform(-6, 6))
        if referent == "people":
            draw_faces.paint_face(d, scenes.face_at(rng, pick(rng, EMOTIONS), x, y, spec.hate_r))
        else:
            if spec.things_in_skin_tones:  # told from people by shape, not by colour
                colour = draw_faces.SKIN_TONES[rng.integers(len(draw_faces.SKIN_TONES))]
            else:
                colour = tuple(int(v) for v in rng.integers(90, 200, size=3))
            scenes.trash_can(d, x, y, spec.hate_r, colour)
    return img


def hate(rng, label: str, *, key, spec: Spec = V2, **_):
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
    image_id = int(rng.integers(spec.hate_pool))
    caption = pick(rng, HATE_TEMPLATES).format(predicate=predicate)
    text = pick(rng, HATE_PROMPTS).format(caption=caption)
    cues = {
        "caption": "demeaning" if predicate in DEMEANING_V2 else "neutral",
        "referent": referent,
        "confounder": form,
        "image_id": image_id,
    }
    cause = {"rule": "hate_caption_and_referent", "scale": "relation", "cues": cues}
    return text, label, None, rationale, [hate_picture(key, referent, image_id, spec)], cause


# ---------------------------------------------------------------------------------------------
# Sarcasm
# ---------------------------------------------------------------------------------------------


def _sarcasm_form(rng, label: str, spec: Spec) -> tuple[str, str, bool]:
    """(form, wording, whether the situation shown is positive)."""
    if label == "yes":
        return "sarcastic", "positive", False
    if spec.sarcasm_no_weights is None:
        form = pick(rng, SARCASM_NO_FORMS)
    else:
        form = SARCASM_NO_FORMS[int(rng.choice(len(SARCASM_NO_FORMS), p=spec.sarcasm_no_weights))]
    wording = {"congruent": "positive", "negated": "negated", "negative": "negative"}[form]
    if spec.negative_caption_over_either:  # (the draw happens for every form, as v2 did)
        shown = {"congruent": True, "negated": False}.get(form, bool(rng.random() < 0.5))
    else:
        shown = form == "congruent"
    return form, wording, shown


def _mood_crowd(rng, positive: bool, spec: Spec):
    """A crowd whose majority shows joy (positive) or negative faces; the rest the other."""
    size, majority = _crowd_size(spec), spec.crowd_majority
    kinds = [positive] * majority + [not positive] * (size - majority)
    emotions = ["joy" if k else pick(rng, NEGATIVE_FACES) for k in kinds]
    return _paint_crowd(rng, [emotions[k] for k in rng.permutation(size)], spec)


def sarcasm(rng, label: str, *, scale: str, spec: Spec = V2, key=None, **_):
    form, wording, positive_shown = _sarcasm_form(rng, label, spec)
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
    elif spec.sarcasm_crowd:
        img = _mood_crowd(rng, positive_shown, spec)
        mood = "joy" if positive_shown else "distress"
        shown = f"Most faces in the crowd show {mood}, which is {valence}."
        cues = {"wording": wording, "shown_by": "crowd", "shown": mood, "valence": valence}
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
