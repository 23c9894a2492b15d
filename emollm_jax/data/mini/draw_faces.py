"""Cartoon faces whose expression carries an emotion, drawn on distractor scenes (mini EmoBench).

Our design, made for a tiny CLIP ViT that sees 64x64 pixels as a 4x4 grid of 16x16 patches:

- The face is an ellipse filling most of the 128x128 canvas, so mouth, eyes and brows each cover
  whole patches after the resize to 64x64. Strokes are thick and dark on a light skin tone.
- Every emotion has its own mouth *and* its own brows (see ``_MOUTHS`` / ``_BROWS``), so either
  cue alone separates the seven classes; eyes add a third cue for fear and surprise.
- Skin tone, face position and size, stroke width and the background scene (flat colour plus
  sun / tree / house / cloud objects) are sampled independently of every label: they are
  distractors only.
- Two optional cues serve other tasks: a red clown nose (humor) and an intent badge in the
  lower-right corner (a coloured symbol per intent, see ``INTENT_BADGES``).
- ``paint_face``, ``paint_object`` and ``paint_badge`` draw one piece onto a canvas that the
  caller composes (the mini EmoBench v2's and v3's scenes, ``draw_scenes.py``).

Everything is a pure function of the spec objects, so a seed fixes the pixels.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from PIL import Image, ImageDraw

from emollm_jax.tasks import EMOTIONS, INTENTS

CANVAS = 128

SKIN_TONES = ((255, 224, 189), (241, 200, 150), (250, 215, 120), (230, 190, 160), (255, 236, 210))
INK = ((20, 20, 20), (50, 30, 20), (30, 30, 60))
BACKGROUNDS = ((170, 200, 230), (190, 220, 180), (220, 210, 190), (200, 190, 220), (160, 170, 180))
OBJECT_KINDS = ("sun", "tree", "house", "cloud")

# One symbol and one saturated colour per intent, drawn on a white badge (lower-right corner).
INTENT_BADGES: dict[str, tuple[str, tuple[int, int, int]]] = {
    "greet": ("hand", (245, 130, 20)),
    "comfort": ("heart", (230, 40, 120)),
    "warn": ("triangle", (235, 200, 0)),
    "celebrate": ("star", (140, 40, 200)),
    "complain": ("bolt", (90, 90, 90)),
    "request": ("question", (20, 90, 230)),
}
assert set(INTENT_BADGES) == set(INTENTS), "every intent needs a badge"


@dataclasses.dataclass(frozen=True)
class Face:
    """Where and how one face is drawn; ``emotion`` selects mouth, brows and eyes."""

    emotion: str
    cx: float
    cy: float
    rx: float
    ry: float
    skin: tuple[int, int, int]
    ink: tuple[int, int, int]
    stroke: float
    clown_nose: bool = False

    def moved(self, dx: float, dy: float, emotion: str | None = None) -> Face:
        return dataclasses.replace(
            self, cx=self.cx + dx, cy=self.cy + dy, emotion=emotion or self.emotion
        )


@dataclasses.dataclass(frozen=True)
class Scene:
    """The background: a flat colour and a few objects that carry no label."""

    background: tuple[int, int, int]
    objects: tuple[tuple[str, float, float, float, tuple[int, int, int]], ...]
    badge: str | None = None  # an intent name, or None
    badge_xy: tuple[float, float] = (100.0, 100.0)


def sample_face(rng: np.random.Generator, emotion: str, clown_nose: bool = False) -> Face:
    rx = float(rng.uniform(44, 52))
    return Face(
        emotion=emotion,
        cx=float(64 + rng.uniform(-5, 5)),
        cy=float(66 + rng.uniform(-5, 5)),
        rx=rx,
        ry=float(rx * rng.uniform(1.05, 1.18)),
        skin=SKIN_TONES[rng.integers(len(SKIN_TONES))],
        ink=INK[rng.integers(len(INK))],
        stroke=float(rng.uniform(6.0, 8.0)),
        clown_nose=clown_nose,
    )


def sample_scene(rng: np.random.Generator, badge: str | None = None) -> Scene:
    objects = []
    for _ in range(int(rng.integers(1, 4))):
        kind = OBJECT_KINDS[rng.integers(len(OBJECT_KINDS))]
        # Objects sit near the edges (the face covers the centre) in any colour.
        x, y = (float(v) for v in rng.choice([8, 20, 108, 120], size=2))
        colour = tuple(int(v) for v in rng.integers(40, 256, size=3))
        objects.append((kind, x, y, float(rng.uniform(10, 18)), colour))
    xy = (float(100 + rng.uniform(-3, 3)), float(100 + rng.uniform(-3, 3)))
    return Scene(
        background=BACKGROUNDS[rng.integers(len(BACKGROUNDS))],
        objects=tuple(objects),
        badge=badge,
        badge_xy=xy,
    )


def draw(scene: Scene, face: Face) -> Image.Image:
    """Render one frame: scene, then face, then the intent badge on top."""
    img = Image.new("RGB", (CANVAS, CANVAS), scene.background)
    d = ImageDraw.Draw(img)
    for kind, x, y, r, colour in scene.objects:
        _OBJECTS[kind](d, x, y, r, colour)
    _draw_face(d, face)
    if scene.badge is not None:
        _draw_badge(d, scene.badge, *scene.badge_xy)
    return img


# ---------------------------------------------------------------------------------------------
# Face parts. Coordinates are relative to the face centre, in units of s = rx / 48.
# ---------------------------------------------------------------------------------------------


def _line(d, pts, fill, width):
    d.line([tuple(p) for p in pts], fill=fill, width=max(1, round(width)), joint="curve")


def _arc_points(cx, cy, rx, ry, start_deg, end_deg, n=12):
    angles = np.radians(np.linspace(start_deg, end_deg, n))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


def _draw_face(d, f: Face) -> None:
    d.ellipse(
        [f.cx - f.rx, f.cy - f.ry, f.cx + f.rx, f.cy + f.ry], fill=f.skin, outline=f.ink, width=3
    )
    s = f.rx / 48.0
    _EYES[f.emotion](d, f, s)
    _BROWS[f.emotion](d, f, s)
    _MOUTHS[f.emotion](d, f, s)
    if f.clown_nose:
        r = 11 * s
        d.ellipse([f.cx - r, f.cy + 4 * s - r, f.cx + r, f.cy + 4 * s + r], fill=(230, 0, 0))


def _eyes_dots(d, f, s, r=5.5):
    for side in (-1, 1):
        x, y = f.cx + side * 17 * s, f.cy - 10 * s
        d.ellipse([x - r * s, y - r * s, x + r * s, y + r * s], fill=f.ink)


def _eyes_wide(d, f, s, r_white=10.0, r_pupil=3.5):
    for side in (-1, 1):
        x, y = f.cx + side * 17 * s, f.cy - 10 * s
        d.ellipse(
            [x - r_white * s, y - r_white * s, x + r_white * s, y + r_white * s],
            fill=(255, 255, 255),
            outline=f.ink,
            width=3,
        )
        d.ellipse([x - r_pupil * s, y - r_pupil * s, x + r_pupil * s, y + r_pupil * s], fill=f.ink)


def _eyes_narrow(d, f, s):
    for side in (-1, 1):
        x, y = f.cx + side * 17 * s, f.cy - 9 * s
        d.ellipse([x - 7 * s, y - 2.5 * s, x + 7 * s, y + 2.5 * s], fill=f.ink)


def _eyes_happy(d, f, s):
    for side in (-1, 1):
        x, y = f.cx + side * 17 * s, f.cy - 8 * s
        _line(d, _arc_points(x, y, 7 * s, 6 * s, 180, 360), f.ink, f.stroke * 0.7)


_EYES = {
    "anger": _eyes_narrow,
    "disgust": _eyes_narrow,
    "fear": _eyes_wide,
    "joy": _eyes_happy,
    "sadness": _eyes_dots,
    "surprise": lambda d, f, s: _eyes_wide(d, f, s, r_white=8.0, r_pupil=4.5),
    "neutral": _eyes_dots,
}


def _brow_pair(d, f, s, inner_dy, outer_dy, base=-26.0, left_extra=0.0):
    """Two straight brows; dy < 0 raises. inner = end near the nose."""
    for side in (-1, 1):
        extra = left_extra if side < 0 else 0.0
        outer = (f.cx + side * 27 * s, f.cy + (base + outer_dy + extra) * s)
        inner = (f.cx + side * 8 * s, f.cy + (base + inner_dy + extra) * s)
        _line(d, [outer, inner], f.ink, f.stroke)


def _brows_arched(d, f, s, base):
    for side in (-1, 1):
        x = f.cx + side * 17 * s
        _line(d, _arc_points(x, f.cy + base * s, 10 * s, 6 * s, 200, 340), f.ink, f.stroke)


_BROWS = {
    "anger": lambda d, f, s: _brow_pair(d, f, s, inner_dy=6, outer_dy=-6),
    "disgust": lambda d, f, s: _brow_pair(d, f, s, inner_dy=2, outer_dy=2, left_extra=-9),
    "fear": lambda d, f, s: _brow_pair(d, f, s, inner_dy=-12, outer_dy=-4),
    "joy": lambda d, f, s: _brows_arched(d, f, s, base=-24),
    "sadness": lambda d, f, s: _brow_pair(d, f, s, inner_dy=-7, outer_dy=5),
    "surprise": lambda d, f, s: _brows_arched(d, f, s, base=-34),
    "neutral": lambda d, f, s: _brow_pair(d, f, s, inner_dy=0, outer_dy=0),
}


def _mouth_smile(d, f, s):
    y = f.cy + 16 * s
    d.chord(
        [f.cx - 21 * s, y - 12 * s, f.cx + 21 * s, y + 16 * s],
        0,
        180,
        fill=(120, 20, 30),
        outline=f.ink,
        width=3,
    )


def _mouth_frown(d, f, s):
    y = f.cy + 34 * s
    _line(d, _arc_points(f.cx, y, 19 * s, 11 * s, 195, 345), f.ink, f.stroke)


def _mouth_teeth(d, f, s):
    y = f.cy + 25 * s
    box = [f.cx - 18 * s, y - 6 * s, f.cx + 18 * s, y + 6 * s]
    d.rectangle(box, fill=(255, 255, 255), outline=f.ink, width=max(2, int(f.stroke * 0.6)))
    for k in (-9, 0, 9):
        _line(d, [(f.cx + k * s, y - 6 * s), (f.cx + k * s, y + 6 * s)], f.ink, 2)


def _mouth_open(d, f, s):
    y = f.cy + 26 * s
    d.ellipse([f.cx - 11 * s, y - 14 * s, f.cx + 11 * s, y + 14 * s], fill=(40, 10, 10))


def _mouth_wavy(d, f, s):
    y = f.cy + 26 * s
    xs = np.linspace(-20, 20, 9)
    pts = [(f.cx + x * s, y + (5 if i % 2 else -5) * s) for i, x in enumerate(xs)]
    _line(d, pts, f.ink, f.stroke * 0.8)


def _mouth_skewed(d, f, s):
    y = f.cy + 24 * s
    _line(
        d,
        [(f.cx - 19 * s, y - 7 * s), (f.cx + 2 * s, y + 2 * s), (f.cx + 19 * s, y + 9 * s)],
        f.ink,
        f.stroke,
    )
    # Nose wrinkles.
    for k in (-5, 5):
        _line(d, [(f.cx + k * s, f.cy - 1 * s), (f.cx + 1.6 * k * s, f.cy + 5 * s)], f.ink, 3)


def _mouth_flat(d, f, s):
    y = f.cy + 25 * s
    _line(d, [(f.cx - 16 * s, y), (f.cx + 16 * s, y)], f.ink, f.stroke * 0.8)


_MOUTHS = {
    "anger": _mouth_teeth,
    "disgust": _mouth_skewed,
    "fear": _mouth_wavy,
    "joy": _mouth_smile,
    "sadness": _mouth_frown,
    "surprise": _mouth_open,
    "neutral": _mouth_flat,
}
assert set(_MOUTHS) == set(_BROWS) == set(_EYES) == set(EMOTIONS), "every emotion needs a face"


# ---------------------------------------------------------------------------------------------
# Distractor objects and intent badges.
# ---------------------------------------------------------------------------------------------


def _sun(d, x, y, r, c):
    d.ellipse([x - r, y - r, x + r, y + r], fill=c)


def _tree(d, x, y, r, c):
    d.rectangle([x - r / 5, y, x + r / 5, y + r * 1.2], fill=(110, 70, 30))
    d.ellipse([x - r, y - r * 1.2, x + r, y + r * 0.4], fill=c)


def _house(d, x, y, r, c):
    d.rectangle([x - r, y - r / 2, x + r, y + r], fill=c)
    d.polygon(
        [(x - r * 1.2, y - r / 2), (x + r * 1.2, y - r / 2), (x, y - r * 1.4)], fill=(150, 50, 40)
    )


def _cloud(d, x, y, r, c):
    for dx in (-r * 0.6, 0, r * 0.6):
        d.ellipse([x + dx - r / 2, y - r / 2, x + dx + r / 2, y + r / 2], fill=c)


_OBJECTS = {"sun": _sun, "tree": _tree, "house": _house, "cloud": _cloud}


def paint_face(d: ImageDraw.ImageDraw, face: Face) -> None:
    """Draw ``face`` onto an existing canvas (the face alone, no scene)."""
    _draw_face(d, face)


def paint_object(d: ImageDraw.ImageDraw, kind: str, x: float, y: float, r: float, colour) -> None:
    """Draw one distractor object of ``OBJECT_KINDS`` centred at (x, y)."""
    _OBJECTS[kind](d, x, y, r, colour)


def _draw_badge(
    d, intent: str, x: float, y: float, r: float = 24.0, disc: bool = True
) -> None:
    """The intent's symbol at (x, y), radius ``r``, on a white disc unless ``disc`` is off."""
    symbol, c = INTENT_BADGES[intent]
    if disc:
        d.ellipse([x - r, y - r, x + r, y + r], fill=(255, 255, 255), outline=(0, 0, 0), width=2)
    k = r * 0.75
    if symbol == "hand":
        corner = 4 * r / 24.0
        d.rounded_rectangle([x - k * 0.6, y - k * 0.1, x + k * 0.6, y + k * 0.9], corner, fill=c)
        for i in range(4):
            fx = x - k * 0.55 + i * k * 0.37
            d.rectangle([fx, y - k * 0.9, fx + k * 0.22, y], fill=c)
    elif symbol == "heart":
        d.ellipse([x - k, y - k * 0.8, x, y + k * 0.2], fill=c)
        d.ellipse([x, y - k * 0.8, x + k, y + k * 0.2], fill=c)
        d.polygon([(x - k * 0.97, y - k * 0.15), (x + k * 0.97, y - k * 0.15), (x, y + k)], fill=c)
    elif symbol == "triangle":
        d.polygon(
            [(x, y - k), (x - k, y + k * 0.8), (x + k, y + k * 0.8)],
            fill=c,
            outline=(0, 0, 0),
            width=2,
        )
        bar = 2.5 * r / 24.0
        d.rectangle([x - bar, y - k * 0.4, x + bar, y + k * 0.3], fill=(0, 0, 0))
        d.rectangle([x - bar, y + k * 0.45, x + bar, y + k * 0.65], fill=(0, 0, 0))
    elif symbol == "star":
        pts = []
        for i in range(10):
            a = math.pi / 2 + i * math.pi / 5
            rr = k if i % 2 == 0 else k * 0.42
            pts.append((x + rr * math.cos(a), y - rr * math.sin(a)))
        d.polygon(pts, fill=c)
    elif symbol == "bolt":
        pts = [
            (x + k * 0.2, y - k),
            (x - k * 0.6, y + k * 0.1),
            (x - k * 0.05, y + k * 0.1),
            (x - k * 0.3, y + k),
            (x + k * 0.6, y - k * 0.2),
            (x + k * 0.05, y - k * 0.2),
        ]
        d.polygon(pts, fill=c)
    elif symbol == "question":
        w = max(2, round(6 * r / 24.0))
        dot = 4 * r / 24.0
        _line(d, _arc_points(x, y - k * 0.35, k * 0.5, k * 0.45, 180, 400), c, w)
        _line(d, [(x + k * 0.2, y + k * 0.05), (x, y + k * 0.35)], c, w)
        d.ellipse([x - dot, y + k * 0.6, x + dot, y + k * 0.6 + 2 * dot], fill=c)
    else:  # pragma: no cover - guarded by the INTENT_BADGES assertion
        raise ValueError(symbol)


def paint_badge(
    d: ImageDraw.ImageDraw, intent: str, x: float, y: float, r: float = 24.0, disc: bool = True
) -> None:
    """Draw the intent's badge (``disc``) or its bare symbol at (x, y), radius ``r``."""
    _draw_badge(d, intent, x, y, r, disc)
