"""Broader appearance for training the built-in models: scenes that do not look like one generator.

Why: the shipped models learnt core.training.synthetic's backgrounds and score far lower on shape scenes
drawn elsewhere (issue 15).  This module widens what training sees while keeping what a class
*is* (core.training.synthetic's shapes, labels and placement rules):

* a quarter of the scenes are core.training.synthetic's own, untouched (the shipped look must not regress);
* backgrounds, half of the rest: core.training.synthetic's own, or a *collage* of regions with
  irregular, noise-shaped borders, each region filled with another texture (so edges that are
  not shapes are common); or *oriented* textures (sums of random Gabor-like wave packets:
  grass, hair, fabric); or scattered unlabelled *clutter* blobs; or a *mosaic* of
  straight-edged cells (the plane cut by random lines, or a jittered brick/tile grid, with
  optional grout): fields, roofs, paving and tiles have straight edges too, and a model that
  calls every contrasting straight-edged region a rectangle or triangle fails on them;
* on all the rest, stronger camera and colour damage: hue rotation, saturation, gamma,
  per-channel gain, an uneven illumination field, blur up to sigma 2.5, noise up to 20, JPEG
  down to quality 20;
* occlusion, in 30 % of the rest: unlabelled blobs painted over the scene (their pixels
  become background; no class loses more than a third of its pixels to them).

Sources deliberately *not* used here, so that bench/new_look.py stays an independent test:
1/f spectral noise, Voronoi cells (nearest-point cells; the mosaic here cuts the plane by lines
or grids instead), wood grain, weaves, drop shadows, scikit-image's sample images.  Every random choice comes from the scene's seed.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageFilter

from core.training.synthetic import random_background, colormap, fractal, random_color, smooth_noise, generate_scene

PLAIN_SHARE = 0.25  # scenes left exactly as core.training.synthetic draws them


def _blob(rng: np.random.Generator, h: int, w: int, cover: float) -> np.ndarray:
    """A boolean mask of irregular smooth regions covering about ``cover`` of the image."""
    field = smooth_noise(rng, h, w, rng.uniform(2, 8)) + 0.5 * smooth_noise(rng, h, w, rng.uniform(8, 20))
    return field > np.quantile(field, 1 - cover)


def _oriented(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Sum of random oriented wave packets, mapped through a colour map."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(0, np.pi)
    total = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(4, 12))):
        a = base + rng.normal(0, 0.35)
        f = 2 * np.pi / rng.uniform(3, 16)
        phase = rng.uniform(0, 2 * np.pi) + 3 * smooth_noise(rng, h, w, rng.uniform(2, 6))
        envelope = smooth_noise(rng, h, w, rng.uniform(2, 8))
        total += envelope * np.sin((xx * math.cos(a) + yy * math.sin(a)) * f + phase)
    t = (total - total.min()) / max(float(np.ptp(total)), 1e-6)
    return colormap(rng, t, int(rng.integers(2, 4)))


def _collage(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Regions with noise-shaped borders, each its own texture."""
    canvas = random_background(rng, h, w).astype(np.float32)
    for _ in range(int(rng.integers(1, 4))):
        region = _blob(rng, h, w, rng.uniform(0.15, 0.5))
        other = _oriented(rng, h, w) if rng.random() < 0.4 else random_background(rng, h, w)
        canvas[region] = other[region]
    return canvas


def _clutter(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A background with unlabelled blobs in random colours: contrast that is not a shape."""
    canvas = random_background(rng, h, w).astype(np.float32)
    for _ in range(int(rng.integers(2, 8))):
        small = _blob(rng, h, w, rng.uniform(0.01, 0.06))
        canvas[small] = random_color(rng) * (0.8 + 0.4 * fractal(rng, h, w)[small, None])
    return canvas


def _line_cells(rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The plane cut by random lines: convex polygons of every shape (id: which side of each line)."""
    n = int(rng.integers(3, 12))
    angles, offsets = rng.uniform(0, np.pi, n), rng.uniform(0, 1, n)
    ids, edge = np.zeros(xx.shape, np.int64), np.full(xx.shape, np.inf, np.float32)
    for i, (a, t) in enumerate(zip(angles, offsets)):
        along = xx * math.cos(a) + yy * math.sin(a)
        signed = along - (along.min() + t * float(np.ptp(along)))
        ids |= (signed > 0).astype(np.int64) << i
        edge = np.minimum(edge, np.abs(signed))
    return ids, edge


def _grid_cells(rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bricks or tiles, maybe turned (id: row and column)."""
    a = rng.uniform(0, np.pi) if rng.random() < 0.5 else 0.0
    u, v = xx * math.cos(a) + yy * math.sin(a), -xx * math.sin(a) + yy * math.cos(a)
    ch, cw = rng.uniform(10, 70), rng.uniform(10, 120)
    row = np.floor(v / ch)
    shifted = u + (row % 2) * cw * rng.choice([0.0, 0.5, rng.uniform(0.2, 0.8)])
    col = np.floor(shifted / cw)
    edge = np.minimum(np.minimum(v - row * ch, (row + 1) * ch - v),
                      np.minimum(shifted - col * cw, (col + 1) * cw - shifted))
    return ((row - row.min()) * 100_000 + (col - col.min())).astype(np.int64), edge.astype(np.float32)


def _cells(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(cell id 0..n-1, distance to the nearest cell edge) of a random line arrangement or brick grid."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    ids, edge = (_line_cells if rng.random() < 0.5 else _grid_cells)(rng, xx, yy)
    return np.unique(ids, return_inverse=True)[1].reshape(h, w), edge


def _mosaic(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Straight-edged cells in related or random colours, each slightly textured, maybe grouted."""
    ids, edge = _cells(rng, h, w)
    n = int(ids.max()) + 1
    if rng.random() < 0.5:  # one family of colours (paving, roofs) or any colours (fields, tiles)
        colors = np.clip(random_color(rng) + rng.normal(0, rng.uniform(10, 50), (n, 3)), 0, 255)
    else:
        colors = np.stack([random_color(rng) for _ in range(n)])
    img = colors.astype(np.float32)[ids]
    img += (fractal(rng, h, w)[..., None] - 0.5) * rng.uniform(0, 60)
    if rng.random() < 0.6:
        width = rng.uniform(0.5, 3.0)
        grout = np.clip(1 - edge / width, 0, 1)[..., None]
        img = img * (1 - grout) + random_color(rng) * grout
    return np.clip(img, 0, 255)


def broad_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    kind = rng.choice(["synthetic", "collage", "oriented", "clutter", "mosaic"], p=[0.4, 0.2, 0.1, 0.1, 0.2])
    return {"synthetic": random_background, "collage": _collage, "oriented": _oriented, "clutter": _clutter,
            "mosaic": _mosaic}[kind](rng, h, w)


def _occlude(rng: np.random.Generator, rgb: np.ndarray, labels: np.ndarray) -> None:
    """Paint unlabelled blobs over the scene; skip any that would bring a class's hidden pixels over a third."""
    h, w = labels.shape
    original = np.bincount(labels.ravel(), minlength=256)
    for _ in range(int(rng.integers(1, 4))):
        blob = _blob(rng, h, w, rng.uniform(0.01, 0.05))
        left = np.bincount(labels.ravel(), minlength=256) - np.bincount(labels[blob], minlength=256)
        if np.any((original[1:] - left[1:]) * 3 > original[1:]):
            continue
        rgb[blob] = (random_color(rng) * (0.7 + 0.6 * smooth_noise(rng, h, w, 6)[blob, None])).clip(0, 255)
        labels[blob] = 0


def augment_colour_and_camera(rng: np.random.Generator, rgb: np.ndarray) -> np.ndarray:
    """Hue rotation, saturation, gamma, gains, illumination, blur, noise, JPEG (uint8 in and out)."""
    x = rgb.astype(np.float32) / 255
    a = rng.uniform(-np.pi, np.pi)  # hue: rotate about the grey axis
    k = np.ones(3, np.float32) / math.sqrt(3)
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]], np.float32)
    rot = np.eye(3, dtype=np.float32) * math.cos(a) + math.sin(a) * cross + (1 - math.cos(a)) * np.outer(k, k)
    x = x @ rot.T
    grey = x.mean(-1, keepdims=True)
    x = grey + (x - grey) * rng.uniform(0.3, 1.5)
    x = np.clip(x * rng.uniform(0.8, 1.2, 3).astype(np.float32), 0, 1) ** rng.uniform(0.6, 1.6)
    h, w = rgb.shape[:2]
    x *= (1 + rng.uniform(-0.5, 0.5) * (smooth_noise(rng, h, w, 2) - 0.5))[..., None]
    img = Image.fromarray(np.clip(x * 255, 0, 255).astype(np.uint8))
    if rng.random() < 0.6:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 2.5)))
    out = np.asarray(img, np.float32) + rng.standard_normal((h, w, 3)).astype(np.float32) * rng.uniform(0, 20)
    img = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))
    if rng.random() < 0.5:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=int(rng.integers(20, 96)))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return np.asarray(img)


def broad_scene(seed: int, height: int | None = None, width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(rgb, labels) of one broad-appearance scene; the same seed gives the same scene."""
    rng = np.random.default_rng(seed)
    if rng.random() < PLAIN_SHARE:  # keep the generator's own look in the mix: no regression there
        return generate_scene(rng, height, width)
    rgb, labels = generate_scene(rng, height, width, background=broad_background)
    rgb = rgb.copy()
    if rng.random() < 0.3:
        _occlude(rng, rgb, labels)
    return augment_colour_and_camera(rng, rgb), labels
