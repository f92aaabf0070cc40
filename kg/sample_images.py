"""The product pictures of :mod:`kg.samples`: a shape per category or accessory kind (car,
ring, bead necklace...) in the product's colour, on a light background with smooth noise.
Deterministic: the same ``(seed, slug, size)`` gives the same pixels."""

from __future__ import annotations

import math
import random
import zlib

import numpy as np
from PIL import Image, ImageDraw

from .sample_tables import ACCESSORIES, COLOURS, LEAVES


def _shade(rgb: tuple[int, ...], k: float) -> tuple[int, ...]:
    """Darker (k < 1) or towards white (k > 1) version of a colour."""
    if k <= 1:
        return tuple(int(v * k) for v in rgb)
    return tuple(int(v + (255 - v) * (k - 1)) for v in rgb)


def draw_product(p, seed: int, size: int) -> Image.Image:
    """The picture of a sample product ``p`` (its ``slug``, ``kind`` and ``colour``): its
    shape in its colour on a ``size`` x ``size`` canvas, jittered by ``(seed, slug)``."""
    s = size
    rng = random.Random(f"{seed}/{p.slug}")
    base = rng.randint(234, 248)
    bg = tuple(base + rng.randint(-3, 3) for _ in range(3))  # light, slightly tinted
    img = Image.new("RGB", (s, s), bg)
    cx, cy = (s / 2 + rng.uniform(-0.06, 0.06) * s for _ in range(2))
    r = s * 0.36 * rng.uniform(0.88, 1.08)
    shape = ACCESSORIES[p.kind].shape if p.kind in ACCESSORIES else LEAVES[p.kind].shape
    SHAPES[shape](ImageDraw.Draw(img), cx, cy, r, COLOURS[p.colour][0], bg)
    # smooth, low-amplitude noise: an 8x8 random field upsampled (integer ops only)
    noise = np.random.default_rng(zlib.crc32(f"{seed}/{p.slug}".encode()))
    field_ = Image.fromarray(noise.integers(0, 256, (8, 8, 3), dtype=np.uint8), "RGB")
    smooth = np.asarray(field_.resize((s, s), Image.Resampling.BILINEAR), dtype=np.int16)
    pixels = np.asarray(img, dtype=np.int16) + (smooth - 128) // 16
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _box(cx: float, cy: float, w: float, h: float) -> list[float]:
    return [cx - w, cy - h, cx + w, cy + h]


def _car(d, cx, cy, r, c, bg):
    d.rounded_rectangle(_box(cx, cy + 0.05 * r, r, 0.3 * r), radius=0.12 * r, fill=c)
    d.rounded_rectangle(_box(cx - 0.1 * r, cy - 0.4 * r, 0.45 * r, 0.2 * r), radius=0.1 * r, fill=c)
    d.rectangle(_box(cx - 0.1 * r, cy - 0.4 * r, 0.33 * r, 0.12 * r), fill=_shade(c, 1.6))
    for dx in (-0.55, 0.55):
        d.ellipse(_box(cx + dx * r, cy + 0.38 * r, 0.24 * r, 0.24 * r), fill=(35, 35, 35))


def _bricks(d, cx, cy, r, c, bg):
    for row in range(3):
        y = cy + (0.6 - 0.5 * row) * r
        for col in range(2 - row % 2):
            x = cx + (col - 0.5 + 0.5 * (row % 2)) * 0.95 * r
            d.rectangle(_box(x, y, 0.45 * r, 0.22 * r), fill=c, outline=_shade(c, 0.6))
    for dx in (-0.2, 0.2):
        d.ellipse(_box(cx + dx * r, cy - 0.62 * r, 0.1 * r, 0.07 * r), fill=_shade(c, 0.8))


def _doll(d, cx, cy, r, c, bg):
    d.polygon([(cx, cy - 0.35 * r), (cx - 0.6 * r, cy + r), (cx + 0.6 * r, cy + r)], fill=c)
    d.ellipse(_box(cx, cy - 0.6 * r, 0.3 * r, 0.3 * r), fill=(240, 205, 175))


def _puzzle(d, cx, cy, r, c, bg):
    cell = 2 * r / 3
    for i in range(3):
        for j in range(3):
            x, y = cx - r + (i + 0.5) * cell, cy - r + (j + 0.5) * cell
            d.rectangle(
                _box(x, y, 0.44 * cell, 0.44 * cell), fill=_shade(c, (1.0, 1.35)[(i + j) % 2])
            )


def _plush(d, cx, cy, r, c, bg):
    for dx in (-0.6, 0.6):
        d.ellipse(_box(cx + dx * r, cy - 0.65 * r, 0.3 * r, 0.3 * r), fill=c)
    d.ellipse(_box(cx, cy + 0.05 * r, 0.85 * r, 0.85 * r), fill=c)
    d.ellipse(_box(cx, cy + 0.3 * r, 0.3 * r, 0.22 * r), fill=_shade(c, 1.5))
    for dx in (-0.3, 0.3):
        d.ellipse(_box(cx + dx * r, cy - 0.1 * r, 0.08 * r, 0.08 * r), fill=(20, 20, 20))


def _ring(d, cx, cy, r, c, bg):
    d.ellipse(_box(cx, cy, 0.8 * r, 0.8 * r), fill=c)
    d.ellipse(_box(cx, cy, 0.55 * r, 0.55 * r), fill=bg)
    d.ellipse(_box(cx, cy - 0.75 * r, 0.18 * r, 0.18 * r), fill=_shade(c, 1.5))


def _necklace(d, cx, cy, r, c, bg):
    for k in range(13):
        a = math.radians(15 + 150 * k / 12)
        x, y = cx + r * math.cos(a), cy - 0.45 * r + r * math.sin(a)
        d.ellipse(_box(x, y, 0.09 * r, 0.09 * r), fill=c)
    d.ellipse(_box(cx, cy + 0.75 * r, 0.2 * r, 0.2 * r), fill=_shade(c, 0.8))


def _earrings(d, cx, cy, r, c, bg):
    for dx in (-0.45, 0.45):
        x = cx + dx * r
        d.ellipse(_box(x, cy - 0.6 * r, 0.1 * r, 0.1 * r), outline=c, width=max(1, int(0.05 * r)))
        d.polygon(
            [(x, cy - 0.4 * r), (x - 0.25 * r, cy + 0.3 * r), (x + 0.25 * r, cy + 0.3 * r)], fill=c
        )
        d.ellipse(_box(x, cy + 0.35 * r, 0.25 * r, 0.25 * r), fill=c)


def _bracelet(d, cx, cy, r, c, bg):
    d.ellipse(_box(cx, cy, r, 0.6 * r), outline=c, width=max(2, int(0.22 * r)))


def _watch(d, cx, cy, r, c, bg):
    d.rectangle(_box(cx, cy, 0.32 * r, r), fill=c)
    d.ellipse(_box(cx, cy, 0.55 * r, 0.55 * r), fill=c)
    d.ellipse(_box(cx, cy, 0.43 * r, 0.43 * r), fill=(250, 250, 245))
    d.line([(cx, cy), (cx, cy - 0.35 * r)], fill=(30, 30, 30), width=max(1, int(0.05 * r)))
    d.line([(cx, cy), (cx + 0.25 * r, cy)], fill=(30, 30, 30), width=max(1, int(0.05 * r)))


def _battery(d, cx, cy, r, c, bg):
    d.rectangle(_box(cx, cy + 0.05 * r, 0.3 * r, 0.55 * r), fill=c)
    d.rectangle(_box(cx, cy - 0.55 * r, 0.12 * r, 0.06 * r), fill=(90, 90, 90))
    d.rectangle(_box(cx, cy + 0.05 * r, 0.3 * r, 0.1 * r), fill=_shade(c, 1.5))


def _charger(d, cx, cy, r, c, bg):
    d.rounded_rectangle(_box(cx - 0.2 * r, cy, 0.35 * r, 0.35 * r), radius=0.08 * r, fill=c)
    d.line([(cx + 0.15 * r, cy), (cx + 0.8 * r, cy + 0.4 * r)], fill=c, width=max(1, int(0.08 * r)))


def _track(d, cx, cy, r, c, bg):
    d.arc(_box(cx, cy + 0.3 * r, r, 0.8 * r), 190, 350, fill=c, width=max(2, int(0.25 * r)))


def _case(d, cx, cy, r, c, bg):
    d.rectangle(
        _box(cx, cy, 0.7 * r, 0.6 * r), fill=_shade(c, 1.7), outline=c, width=max(1, int(0.1 * r))
    )


def _dress(d, cx, cy, r, c, bg):
    d.polygon([(cx - 0.2 * r, cy - 0.6 * r), (cx + 0.2 * r, cy - 0.6 * r),
               (cx + 0.6 * r, cy + 0.6 * r), (cx - 0.6 * r, cy + 0.6 * r)], fill=c)  # fmt: skip


def _frame(d, cx, cy, r, c, bg):
    d.rectangle(_box(cx, cy, 0.75 * r, 0.6 * r), outline=c, width=max(2, int(0.2 * r)))


def _chain(d, cx, cy, r, c, bg):
    for k in range(9):
        x = cx - 0.8 * r + 0.2 * k * r
        y = cy + 0.25 * r * math.sin(k * 0.9)
        d.ellipse(_box(x, y, 0.13 * r, 0.09 * r), outline=c, width=max(2, int(0.07 * r)))


def _gift_box(d, cx, cy, r, c, bg):
    d.rectangle(_box(cx, cy + 0.1 * r, 0.55 * r, 0.5 * r), fill=c)
    d.rectangle(_box(cx, cy + 0.1 * r, 0.08 * r, 0.5 * r), fill=(212, 172, 50))
    d.ellipse(_box(cx, cy - 0.5 * r, 0.15 * r, 0.1 * r), fill=(212, 172, 50))


def _kit(d, cx, cy, r, c, bg):
    d.rectangle(_box(cx - 0.3 * r, cy + 0.15 * r, 0.2 * r, 0.45 * r), fill=c)
    d.rectangle(_box(cx - 0.3 * r, cy - 0.38 * r, 0.1 * r, 0.08 * r), fill=(60, 60, 60))
    d.rectangle(_box(cx + 0.35 * r, cy + 0.3 * r, 0.3 * r, 0.3 * r), fill=_shade(c, 1.5))


def _strap(d, cx, cy, r, c, bg):
    d.rounded_rectangle(_box(cx, cy, 0.2 * r, 0.9 * r), radius=0.1 * r, fill=c)
    for k in range(3):
        d.ellipse(_box(cx, cy + (0.2 + 0.2 * k) * r, 0.04 * r, 0.04 * r), fill=bg)
    d.rectangle(_box(cx, cy - 0.8 * r, 0.28 * r, 0.1 * r), outline=(120, 120, 120), width=2)


SHAPES = {
    "car": _car, "bricks": _bricks, "doll": _doll, "puzzle": _puzzle, "plush": _plush,
    "ring": _ring, "necklace": _necklace, "earrings": _earrings, "bracelet": _bracelet,
    "watch": _watch, "battery": _battery, "charger": _charger, "track": _track, "case": _case,
    "dress": _dress, "frame": _frame, "chain": _chain, "box": _gift_box, "kit": _kit,
    "strap": _strap,
}  # fmt: skip
