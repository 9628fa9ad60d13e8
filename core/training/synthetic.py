"""Seeded synthetic shape scenes: the data the built-in models are trained and evaluated on.

The demo task is to recognise shapes *by shape*: fill colours, fill styles and backgrounds are
drawn independently of the class, so colour and texture carry no class information.  Every random
choice comes from one ``np.random.Generator`` and Pillow's drawing is deterministic, so a seed
regenerates a scene bit-for-bit (given the same numpy and Pillow versions).

Geometry convention: pixel ``(row, col)`` covers ``[col, col + 1) x [row, row + 1)`` in continuous
``(x, y)`` coordinates.  Shapes are rasterised at ``SUPERSAMPLE``x on their bounding box only; the
image gets the box-filtered coverage as alpha (anti-aliased edges) and a pixel gets the shape's
label when at least half of its sub-samples are covered, so labels and drawn edges always agree.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from core.classes import ClassInfo, palette_array

ELLIPSE, RECTANGLE, TRIANGLE, STAR = 1, 2, 3, 4

SHAPE_CLASSES: list[ClassInfo] = [
    ClassInfo(0, "background", (0, 0, 0)),
    ClassInfo(ELLIPSE, "ellipse", (66, 135, 245)),
    ClassInfo(RECTANGLE, "rectangle", (245, 130, 48)),
    ClassInfo(TRIANGLE, "triangle", (60, 190, 90)),
    ClassInfo(STAR, "star", (235, 60, 200)),
]

SUPERSAMPLE = 4
MIN_DIAMETER, MAX_DIAMETER = 8.0, 80.0
MIN_CONTRAST = 32  # max-abs channel difference that makes a shape pixel stand out
SIZE_CHOICES = np.arange(96, 385, 8)
RGBLike = Sequence[float] | np.ndarray


# --- geometry -------------------------------------------------------------------------------
def shape_vertices(class_id: int, diameter: float, rng: np.random.Generator) -> np.ndarray:
    """Polygon ``(N, 2)`` of a random shape of ``class_id`` centred on the origin.

    ``diameter`` is that of the circumscribed circle; ellipses are 64-gons (sub-pixel accurate
    at these sizes), so every class goes through the same rasteriser.
    """
    r = diameter / 2.0
    if class_id == ELLIPSE:
        t = np.linspace(0.0, 2 * np.pi, 64, endpoint=False)
        pts = np.stack([r * np.cos(t), r / rng.uniform(1.0, 2.0) * np.sin(t)], axis=1)
    elif class_id == RECTANGLE:
        phi = math.atan(1.0 / rng.uniform(1.0, 3.0))
        hw, hh = r * math.cos(phi), r * math.sin(phi)
        pts = np.array([[-hw, -hh], [hw, -hh], [hw, hh], [-hw, hh]])
    elif class_id == TRIANGLE:
        # Interior angles uniform on the simplex with every angle >= 25 degrees (no slivers);
        # by the inscribed-angle theorem the arc opposite an angle spans twice that angle.
        cuts = np.sort(rng.random(2))
        angles = np.radians(np.diff([0.0, cuts[0], cuts[1], 1.0]) * (180 - 3 * 25) + 25)
        pos = np.array([0.0, 2 * angles[2], 2 * angles[2] + 2 * angles[0]])
        pts = np.stack([r * np.cos(pos), r * np.sin(pos)], axis=1)
    elif class_id == STAR:
        t = np.arange(10) * np.pi / 5
        radius = np.where(np.arange(10) % 2 == 0, r, r * rng.uniform(0.38, 0.5))
        pts = np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1)
    else:
        raise ValueError(f"no shape for class id {class_id}")
    a = rng.uniform(0.0, 2 * np.pi)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return pts @ rot.T


def _inset(poly: np.ndarray, d: float) -> np.ndarray:
    """Move every edge of a simple polygon ``d`` inward (mitred vertices), either orientation."""
    poly = poly[np.any(poly != np.roll(poly, 1, axis=0), axis=1)]  # drop repeated vertices
    e = np.roll(poly, -1, axis=0) - poly
    orient = np.sign(np.sum(poly[:, 0] * e[:, 1] - poly[:, 1] * e[:, 0])) or 1.0
    n = orient * np.stack([-e[:, 1], e[:, 0]], axis=1) / np.hypot(e[:, 0], e[:, 1])[:, None]
    n_prev = np.roll(n, 1, axis=0)
    return poly + d * (n + n_prev) / np.maximum(1 + np.sum(n * n_prev, axis=1), 0.05)[:, None]


def _rasterize(vertices: np.ndarray) -> tuple[int, int, np.ndarray]:
    """(x0, y0, counts): covered sub-samples (0..SUPERSAMPLE**2) per pixel of the padded bbox.

    Pillow truncates vertices to integers and fills every sub-sample an edge touches, which
    dilates shapes by ~0.32 sub-pixel on average; insetting by that much makes coverage
    unbiased (and exact for edges on pixel boundaries).
    """
    s = SUPERSAMPLE
    x0, y0 = (math.floor(v) - 1 for v in vertices.min(axis=0))
    x1, y1 = (math.ceil(v) + 1 for v in vertices.max(axis=0))
    bw, bh = x1 - x0, y1 - y0
    mask = Image.new("L", (bw * s, bh * s), 0)
    scaled = _inset((vertices - (x0, y0)) * s, 0.32)
    ImageDraw.Draw(mask).polygon(scaled.ravel().tolist(), fill=1)
    counts = np.asarray(mask).reshape(bh, s, bw, s).sum(axis=(1, 3), dtype=np.uint8)
    return x0, y0, counts


def _clip(x0: int, y0: int, counts: np.ndarray, height: int, width: int):
    """(image slices, bbox slices) of the part of a bbox inside the image, or None."""
    bh, bw = counts.shape
    ys, ye, xs, xe = max(y0, 0), min(y0 + bh, height), max(x0, 0), min(x0 + bw, width)
    if ys >= ye or xs >= xe:
        return None
    return (slice(ys, ye), slice(xs, xe)), (slice(ys - y0, ye - y0), slice(xs - x0, xe - x0))


def _composite(canvas, labels, x0, y0, counts, fill, class_id) -> np.ndarray | None:
    """Alpha-blend ``fill`` over ``canvas`` and paint the label; returns the labelled mask.

    ``fill`` is an RGB triple or a bbox-sized ``(bh, bw, 3)`` array.  Drawing order is z-order:
    the last shape composited owns the pixels it labels.
    """
    img_sl, box_sl = _clip(x0, y0, counts, *labels.shape) or (None, None)
    if img_sl is None:
        return None
    c = counts[box_sl]
    f = np.asarray(fill, np.float32)
    f = f[box_sl] if f.ndim == 3 else f
    region = canvas[img_sl]
    region += (f - region) * (c.astype(np.float32) / SUPERSAMPLE**2)[..., None]
    on = c.astype(np.int32) * 2 >= SUPERSAMPLE**2
    labels[img_sl][on] = class_id
    return on


def render_shapes(
    shapes: Iterable[tuple[int, np.ndarray, RGBLike]], height: int, width: int,
    background: RGBLike = (0, 0, 0),
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``(class_id, vertices, rgb)`` shapes in order, flat and undegraded.

    The same rasterise-and-composite step ``generate_scene`` uses, exposed for tests and
    hand-made scenes; vertices are in image pixel coordinates (see the module docstring).
    """
    canvas = np.full((height, width, 3), np.asarray(background, np.float32), np.float32)
    labels = np.zeros((height, width), np.uint8)
    for class_id, vertices, color in shapes:
        x0, y0, counts = _rasterize(np.asarray(vertices, np.float64))
        _composite(canvas, labels, x0, y0, counts, color, class_id)
    return _to_uint8(canvas), labels


# --- textures -------------------------------------------------------------------------------
def _to_uint8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: float) -> np.ndarray:
    """Value noise in ~[0, 1]: a small random grid, bicubically upsampled (cells = longer side)."""
    gh = max(2, round(cells * h / max(h, w)) + 1)
    gw = max(2, round(cells * w / max(h, w)) + 1)
    grid = Image.fromarray(rng.random((gh, gw), dtype=np.float32))
    return np.asarray(grid.resize((w, h), Image.BICUBIC))


def fractal(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Cloud-like fractal noise normalised to [0, 1]: octaves of value noise."""
    cells, gain = rng.uniform(2.0, 6.0), rng.uniform(0.4, 0.7)
    total = np.zeros((h, w), np.float32)
    for octave in range(int(rng.integers(3, 7))):
        total += gain**octave * smooth_noise(rng, h, w, cells * 2**octave)
    return (total - total.min()) / max(float(np.ptp(total)), 1e-6)


def colormap(rng: np.random.Generator, t: np.ndarray, stops: int | None = None) -> np.ndarray:
    """Map t in [0, 1] through a random piecewise-linear colour map of 2..4 colours."""
    k = stops or int(rng.integers(2, 5))
    colors = np.stack([random_color(rng) for _ in range(k)])
    pos = np.concatenate([[0.0], np.sort(rng.random(k - 2)), [1.0]])
    flat = np.clip(t, 0, 1).ravel()
    out = [np.interp(flat, pos, colors[:, ch]).astype(np.float32) for ch in range(3)]
    return np.stack(out, axis=-1).reshape(*t.shape, 3)


def random_color(rng: np.random.Generator) -> np.ndarray:
    """Any colour; one grey in seven so achromatic scenes occur too."""
    if rng.random() < 1 / 7:
        return np.full(3, rng.integers(0, 256), np.float32)
    return rng.integers(0, 256, 3).astype(np.float32)


def _coords(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates rotated by a random angle: (u along it, v across it)."""
    a = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    return xx * math.cos(a) + yy * math.sin(a), -xx * math.sin(a) + yy * math.cos(a)


def random_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A random float32 RGB background; the kinds are mixed evenly except 'flat'."""
    kind = rng.choice(["flat", "linear", "radial", "noise", "stripes", "checker", "fractal",
                       "marble"], p=[0.08, 0.12, 0.1, 0.14, 0.12, 0.1, 0.22, 0.12])
    if kind == "flat":
        return np.broadcast_to(random_color(rng), (h, w, 3)).copy()
    if kind == "linear":
        u, _ = _coords(rng, h, w)
        return colormap(rng, (u - u.min()) / max(float(np.ptp(u)), 1e-6))
    if kind == "radial":
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        cy, cx = rng.uniform(-0.2, 1.2, 2) * (h, w)
        d = np.hypot(yy - cy, xx - cx)
        return colormap(rng, d / d.max())
    if kind == "noise":
        if rng.random() < 0.5:
            return colormap(rng, smooth_noise(rng, h, w, rng.uniform(2, 12)), 3)
        chans = [smooth_noise(rng, h, w, rng.uniform(2, 12)) for _ in range(3)]
        lo, hi = np.sort(rng.uniform(0, 255, (2, 3)), axis=0)
        return np.stack(chans, axis=-1) * (hi - lo) + lo
    if kind in ("stripes", "checker"):
        u, v = _coords(rng, h, w)
        freq = 2 * np.pi / rng.uniform(8, 48)
        wave = np.sin(u * freq) if kind == "stripes" else np.sin(u * freq) * np.sin(v * freq)
        sharp = rng.uniform(1, 12)  # 1 = soft sine, 12 = nearly hard-edged
        return colormap(rng, 0.5 + 0.5 * np.clip(wave * sharp, -1, 1), 2)
    if kind == "fractal":
        return colormap(rng, fractal(rng, h, w), int(rng.integers(2, 6)))
    u, _ = _coords(rng, h, w)  # marble: sine bands warped by turbulence
    warp = rng.uniform(2, 10) * fractal(rng, h, w)
    return colormap(rng, 0.5 + 0.5 * np.sin(u * 2 * np.pi / rng.uniform(20, 120) + warp))


def _fill(rng: np.random.Generator, counts: np.ndarray, base: np.ndarray) -> np.ndarray:
    """A bbox-sized fill: mostly flat, sometimes gradient, smooth texture or speckle, and
    sometimes a darkened outline.  Independent of the class by construction."""
    bh, bw = counts.shape
    fill = np.broadcast_to(base, (bh, bw, 3)).astype(np.float32)
    style = rng.random()
    if style < 0.15:
        u, _ = _coords(rng, bh, bw)
        t = (u - u.min()) / max(float(np.ptp(u)), 1e-6)
        fill = fill + (rng.uniform(-100, 100, 3).astype(np.float32) * t[..., None])
    elif style < 0.27:
        noise = smooth_noise(rng, bh, bw, rng.uniform(2, 6)) - 0.5
        fill = fill + noise[..., None] * rng.uniform(30, 90, 3).astype(np.float32)
    elif style < 0.35:
        fill = fill + rng.standard_normal((bh, bw, 1), np.float32) * rng.uniform(5, 18)
    if rng.random() < 0.15:
        alpha = Image.fromarray(np.minimum(counts.astype(np.int32) * 16, 255).astype(np.uint8))
        inner = np.asarray(alpha.filter(ImageFilter.MinFilter(int(rng.choice([3, 5])))))
        band = np.clip((np.asarray(alpha, np.float32) - inner) / 255.0, 0, 1)
        fill = fill * (1 - rng.uniform(0.35, 0.75) * band)[..., None]
    return np.clip(fill, 0, 255)


def _degrade(rng: np.random.Generator, canvas: np.ndarray) -> np.ndarray:
    """Camera-ish whole-image damage: blur, brightness/contrast, noise, JPEG."""
    img = _to_uint8(canvas)
    if rng.random() < 0.5:
        blurred = Image.fromarray(img).filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
        img = np.asarray(blurred)
    out = img.astype(np.float32)
    if rng.random() < 0.6:
        out = (out - 128) * rng.uniform(0.75, 1.25) + 128 + rng.uniform(-25, 25)
    if rng.random() < 0.6:
        out += rng.standard_normal(out.shape, np.float32) * rng.uniform(0, 12)
    img = _to_uint8(out)
    if rng.random() < 0.35:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=int(rng.integers(30, 96)))
        img = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return img


# --- scenes ---------------------------------------------------------------------------------
def generate_scene(
    seed: int | np.random.Generator, height: int | None = None, width: int | None = None,
    background: Callable[[np.random.Generator, int, int], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(rgb ``HxWx3`` uint8, labels ``HxW`` uint8 in 0..4) for one seeded random scene.

    Sides left as None are drawn from 96..384 in steps of 8, independently.  Shapes are placed
    so each stays at least half inside the image and no shape loses more than half of its
    pixels to later ones: heavily occluded fragments would be unrecognisable yet labelled.
    ``background(rng, h, w)`` (float RGB) replaces this module's backgrounds (core.training.appearance).
    """
    rng = np.random.default_rng(seed)  # passes a Generator through unchanged
    h = int(height if height is not None else rng.choice(SIZE_CHOICES))
    w = int(width if width is not None else rng.choice(SIZE_CHOICES))
    canvas = (np.clip(background(rng, h, w), 0, 255) if background else random_background(rng, h, w)).astype(np.float32)
    labels = np.zeros((h, w), np.uint8)
    instances = np.zeros((h, w), np.uint8)
    drawn, visible = [0], [0]  # per instance id (0 = background): pixels when drawn, now
    # ~15 shapes per 200x200, capped: small images stay uncluttered, and drawing near the cap
    # keeps the foreground share up (sizes are log-uniform, so most shapes are small).
    n_max = int(np.clip(round(15 * h * w / 200**2), 3, 15))
    wanted = int(rng.integers(max(3, 2 * n_max // 3), n_max + 1))
    max_d = min(MAX_DIAMETER, 0.75 * min(h, w))
    for _ in range(3 * wanted):
        if len(drawn) > wanted:
            break
        class_id = int(rng.integers(1, 5))
        diameter = math.exp(rng.uniform(math.log(MIN_DIAMETER), math.log(max_d)))
        verts = shape_vertices(class_id, diameter, rng) + rng.random(2)
        bx, by, counts = _rasterize(verts)
        full = int((counts.astype(np.int32) * 2 >= SUPERSAMPLE**2).sum())
        if full == 0:
            continue
        spot = find_spot(rng, counts, bx, by, full, instances, visible, drawn)
        if spot is None:
            continue
        x0, y0, img_sl, box_sl, left = spot
        fill = _contrasting_fill(rng, canvas[img_sl], counts, box_sl)
        on = _composite(canvas, labels, x0, y0, counts, fill, class_id)
        instances[img_sl][on] = len(drawn)
        visible = list(left) + [int(on.sum())]
        drawn.append(int(on.sum()))
    return _degrade(rng, canvas), labels


def find_spot(rng, counts: np.ndarray, bx: int, by: int, full: int, instances: np.ndarray,
              visible: list, drawn: list):
    """Up to 12 random tries for where a rasterised shape may go: at least half of it shows,
    and no earlier shape loses more than half of what it had.  (x0, y0, image slices, box
    slices, pixels each earlier shape keeps) or None.  Any scene generator places its shapes
    this way, whatever it draws them with."""
    h, w = instances.shape
    for _try in range(12):
        x0, y0 = bx + int(rng.integers(0, w)), by + int(rng.integers(0, h))
        clipped = _clip(x0, y0, counts, h, w)
        if clipped is None:
            continue
        img_sl, box_sl = clipped
        on = counts[box_sl].astype(np.int32) * 2 >= SUPERSAMPLE**2
        if on.sum() * 2 < full:
            continue
        lost = np.bincount(instances[img_sl][on], minlength=len(drawn))
        left, total = np.array(visible) - lost, np.array(drawn)
        if np.any((left[1:] * 2 < total[1:])):
            continue
        return x0, y0, img_sl, box_sl, left
    return None


def _contrasting_fill(rng, under: np.ndarray, counts: np.ndarray, box_sl) -> np.ndarray:
    """A fill that stands out from what it covers, pixel by pixel.

    At least 3/4 of the covered pixels (alpha-weighted) must differ by >= MIN_CONTRAST in some
    channel: a mean test alone passes a brown shape on a brown/green checker, which then melts
    into the brown squares.  After 20 misses the best candidate is kept.
    """
    alpha = counts[box_sl].astype(np.float32)
    best, best_score = None, -1.0
    for _ in range(20):
        fill = _fill(rng, counts, random_color(rng))
        diff = np.abs(fill[box_sl] - under).max(axis=-1)
        score = float((alpha * (diff >= MIN_CONTRAST)).sum() / alpha.sum())
        if score >= 0.75:
            return fill
        if score > best_score:
            best, best_score = fill, score
    return best


def scene_seed(seed: int, index: int) -> int:
    """The seed of scene ``index`` of a dataset: independent of the dataset's size.

    ``SeedSequence`` spawning (child ``index`` of ``seed``) gives well-mixed, non-overlapping
    streams, unlike ``seed + index``.
    """
    child = np.random.SeedSequence(seed, spawn_key=(index,))
    return int(child.generate_state(1, np.uint64)[0])


def write_dataset(
    out_dir: str | Path, count: int, seed: int, height: int | None = None,
    width: int | None = None, progress: Callable[[int, int], object] | None = None,
    workers: int = 1, appearance: str = "shapes",
) -> tuple[Path, Path]:
    """Write ``images/scene_NNNNN.png`` (RGB) and ``masks/scene_NNNNN.png`` (palette, pixel =
    class id) for ``count`` scenes; returns ``(images_dir, masks_dir)``.

    Scene i depends only on (seed, i), so ``workers`` processes give the same files.
    ``appearance="broad"`` draws core.training.appearance's broader scenes instead.
    """
    images_dir, masks_dir = Path(out_dir) / "images", Path(out_dir) / "masks"
    for folder in (images_dir, masks_dir):
        folder.mkdir(parents=True, exist_ok=True)
    jobs = [(out_dir, i, seed, height, width, appearance) for i in range(count)]
    if workers > 1 and count > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            for done, _ in enumerate(pool.map(_write_scene, jobs, chunksize=16), 1):
                if progress is not None:
                    progress(done, count)
    else:
        for done, job in enumerate(jobs, 1):
            _write_scene(job)
            if progress is not None:
                progress(done, count)
    return images_dir, masks_dir


def _write_scene(job: tuple) -> None:
    out_dir, i, seed, height, width, appearance = job
    if appearance == "broad":
        from core.training.appearance import broad_scene

        rgb, labels = broad_scene(scene_seed(seed, i), height, width)
    else:
        rgb, labels = generate_scene(scene_seed(seed, i), height, width)
    name = f"scene_{i:05d}.png"
    Image.fromarray(rgb).save(Path(out_dir) / "images" / name)
    mask = Image.frombytes("P", (labels.shape[1], labels.shape[0]), labels.tobytes())
    mask.putpalette(palette_array(SHAPE_CLASSES).ravel().tolist())
    mask.save(Path(out_dir) / "masks" / name)
