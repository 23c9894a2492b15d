"""Scene pieces of the mini EmoBench v2 and v3, composed on a 128x128 canvas around ``draw_faces``.

Each piece carries one cue at one visual scale (``scene_rules.py`` says which label it decides):

- local: a face alone, a small badge, a small clown nose;
- global: a crowd of small faces, a symbol tiled over the whole background, a scene drawn
  upside down, a sunny or a stormy scene;
- relation: an arrow from one object to another, a hat on the head or under the chin, a row of
  people or of things that a caption refers to.

Distractor objects (``draw_faces.OBJECT_KINDS``, any colour) and a red ball are drawn from the
record's generator independently of its label. Pure functions of their arguments: a seed fixes
the pixels.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

import emollm_jax.data.mini.draw_faces as draw_faces
from emollm_jax.data.mini.draw_faces import CANVAS, Face

SKY = (150, 200, 240)
GROUND = (110, 170, 90)
STORM_SKY = (70, 75, 90)
STORM_GROUND = (80, 90, 70)
# Sky or ground alike for the label-free landscape.
LANDSCAPE_COLOURS = (
    (150, 200, 240), (110, 170, 90), (70, 75, 90), (200, 170, 120), (230, 220, 190),
    (170, 150, 200), (120, 120, 120), (90, 140, 140),
)


def canvas(background) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    img = Image.new("RGB", (CANVAS, CANVAS), tuple(background))
    return img, ImageDraw.Draw(img)


def face_at(rng: np.random.Generator, emotion: str, cx: float, cy: float, rx: float) -> Face:
    """A face of ``emotion`` centred at (cx, cy), half-width ``rx``; skin, ink, stroke sampled."""
    f = draw_faces.sample_face(rng, emotion)
    scale = rx / f.rx
    stroke = max(2.0, f.stroke * scale)
    return Face(emotion, cx, cy, rx, f.ry * scale, f.skin, f.ink, stroke)


def distractors(rng: np.random.Generator, d: ImageDraw.ImageDraw, n_max: int = 2) -> None:
    """0..n_max objects near the edges and, half the time, a red ball: all label-free."""
    for _ in range(int(rng.integers(0, n_max + 1))):
        kind = draw_faces.OBJECT_KINDS[rng.integers(len(draw_faces.OBJECT_KINDS))]
        x, y = (float(v) for v in rng.choice([8, 20, 108, 120], size=2))
        colour = tuple(int(v) for v in rng.integers(40, 256, size=3))
        draw_faces.paint_object(d, kind, x, y, float(rng.uniform(7, 12)), colour)
    if rng.random() < 0.5:  # the same red as the clown nose, never on a face
        x, y = (float(v) for v in rng.choice([10, 118], size=2))
        r = float(rng.uniform(5, 8))
        d.ellipse([x - r, y - r, x + r, y + r], fill=(230, 0, 0))


def arrow(d: ImageDraw.ImageDraw, start, end, colour, width: float = 5.0) -> None:
    """A straight arrow from ``start`` to ``end`` with a filled head at ``end``."""
    (x0, y0), (x1, y1) = start, end
    angle = math.atan2(y1 - y0, x1 - x0)
    head = 4.0 * width
    base = (x1 - head * math.cos(angle), y1 - head * math.sin(angle))
    d.line([(x0, y0), base], fill=colour, width=round(width))
    side = (-math.sin(angle) * head * 0.6, math.cos(angle) * head * 0.6)
    d.polygon([(x1, y1), (base[0] + side[0], base[1] + side[1]),
               (base[0] - side[0], base[1] - side[1])], fill=colour)


def tiled_symbol(
    d: ImageDraw.ImageDraw, intent: str, offset, step: float = 24.0, r: float = 8.0
) -> None:
    """The intent's bare symbol, radius ``r``, repeated over the whole canvas (a wallpaper)."""
    ox, oy = offset
    for y in np.arange(oy, CANVAS + step, step):
        for x in np.arange(ox, CANVAS + step, step):
            draw_faces.paint_badge(d, intent, float(x), float(y), r=r, disc=False)


def landscape(
    rng: np.random.Generator, *, stormy: bool = False, free_colours: bool = False
) -> Image.Image:
    """Sky over ground, with a tree and a house standing on the ground; a sun in a clear sky,
    rain streaks and a lightning bolt in a stormy one. ``free_colours``: sky and ground of two
    colours drawn from one pool, the horizon anywhere from 40 to 88 px, tree and house on
    either side and no sun or weather, so that a copy turned upside down differs from an upright
    one only in which way the tree and the house point."""
    if free_colours:
        return _bare_landscape(rng)
    img, d = canvas(STORM_SKY if stormy else SKY)
    horizon = float(rng.uniform(84, 96))
    d.rectangle([0, horizon, CANVAS, CANVAS], fill=STORM_GROUND if stormy else GROUND)
    tree_x = float(rng.uniform(14, 40))
    house_x = float(rng.uniform(88, 112))
    draw_faces.paint_object(d, "tree", tree_x, horizon - 14, 12.0, (40, 140, 50))
    draw_faces.paint_object(d, "house", house_x, horizon - 10, 10.0, (200, 180, 120))
    if stormy:
        for _ in range(28):
            x, y = (float(v) for v in rng.uniform(0, CANVAS, size=2))
            d.line([(x, y), (x - 4, y + 10)], fill=(170, 180, 200), width=2)
        x = float(rng.uniform(40, 90))
        d.line([(x, 0), (x - 10, 22), (x + 4, 26), (x - 8, 52)], fill=(255, 240, 90), width=4)
    else:
        x = float(rng.uniform(60, 110))
        d.ellipse([x - 12, 6, x + 12, 30], fill=(255, 215, 0))
    return img


def _bare_landscape(rng: np.random.Generator) -> Image.Image:
    sky, ground = (LANDSCAPE_COLOURS[k] for k in rng.choice(len(LANDSCAPE_COLOURS), 2, False))
    img, d = canvas(sky)
    horizon = float(rng.uniform(40, 88))
    d.rectangle([0, horizon, CANVAS, CANVAS], fill=ground)
    tree_x, house_x = float(rng.uniform(14, 28)), float(rng.uniform(98, 112))
    if rng.random() < 0.5:
        tree_x, house_x = CANVAS - tree_x, CANVAS - house_x
    draw_faces.paint_object(d, "tree", tree_x, horizon - 19.2, 16.0, (40, 140, 50))
    draw_faces.paint_object(d, "house", house_x, horizon - 14, 14.0, (200, 180, 120))
    return img


def hat(d: ImageDraw.ImageDraw, face: Face, on_head: bool) -> None:
    """A black top hat resting on the head, or hanging under the chin."""
    w, h = face.rx * 0.9, face.ry * 0.55
    if on_head:
        brim_y = face.cy - face.ry * 0.8
        d.rectangle([face.cx - w / 2, brim_y - h, face.cx + w / 2, brim_y], fill=(20, 20, 20))
    else:
        brim_y = face.cy + face.ry * 1.0
        d.rectangle([face.cx - w / 2, brim_y, face.cx + w / 2, brim_y + h], fill=(20, 20, 20))
    d.rectangle([face.cx - w * 0.8, brim_y - 3, face.cx + w * 0.8, brim_y + 3], fill=(20, 20, 20))


def hat_on_ground(d: ImageDraw.ImageDraw, face: Face, x: float) -> None:
    """A hat of ``face``'s size standing on the canvas's bottom edge at ``x``."""
    w, h = face.rx * 0.9, face.ry * 0.55
    brim_y = CANVAS - 4.0
    d.rectangle([x - w / 2, brim_y - h, x + w / 2, brim_y], fill=(20, 20, 20))
    d.rectangle([x - w * 0.8, brim_y - 3, x + w * 0.8, brim_y + 3], fill=(20, 20, 20))


def clown_nose(d: ImageDraw.ImageDraw, face: Face, r: float) -> None:
    y = face.cy + 4 * face.rx / 48.0
    d.ellipse([face.cx - r, y - r, face.cx + r, y + r], fill=(230, 0, 0))


def trash_can(d: ImageDraw.ImageDraw, x: float, y: float, r: float, colour) -> None:
    """A thing, not a person: a bin with a lid and ribs."""
    d.rectangle([x - r * 0.7, y - r * 0.6, x + r * 0.7, y + r], fill=colour, outline=(30, 30, 30))
    d.rectangle([x - r * 0.85, y - r * 0.85, x + r * 0.85, y - r * 0.6], fill=(60, 60, 60))
    for k in (-0.35, 0.0, 0.35):
        d.line([(x + k * r, y - r * 0.4), (x + k * r, y + r * 0.8)], fill=(30, 30, 30), width=2)
