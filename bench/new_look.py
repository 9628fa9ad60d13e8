"""Shape scenes of a look the built-in models never saw, for evaluation and the retrain bench.

The four shape classes and their geometry are core.training.synthetic's (what a class *is* must not
change), but everything else is drawn from sources that neither core.training.synthetic nor
core.training.appearance (the broader training recipe) use:

* backgrounds: 1/f ("pink") spectral noise, the statistics of natural photographs; Voronoi
  cells (pebbles, tissue, cobbles); wood grain (warped rings); woven cloth;
* shapes lit from one side (a shading gradient), textured by their own 1/f noise, and often
  casting a soft drop shadow (unlabelled) onto the background;
* the camera: colour cast, gamma, vignetting, blur, sensor noise, JPEG.

``look="stone"`` restricts backgrounds to pink noise and Voronoi cells in earthy colours: one
coherent new look for bench/retrain.py.  ``look="mixed"`` draws every family in any colour:
the independent evaluation set of bench/independent_quality.py.  Nothing here is imported by
training code, so no model is trained on it unless a user does so on purpose.
"""

from __future__ import annotations

import io
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.training.synthetic import (SUPERSAMPLE, _clip, _composite, _rasterize, find_spot, scene_seed,  # noqa: E402
                            shape_vertices)

EARTH = np.array([[120, 98, 76], [168, 150, 120], [90, 96, 84], [200, 184, 160], [140, 120, 110],
                  [70, 62, 58], [186, 170, 148], [110, 118, 96]], np.float32)


def pink_noise(rng: np.random.Generator, h: int, w: int, beta: float) -> np.ndarray:
    """Noise whose power falls as 1/f^beta (beta ~2: natural images), normalised to [0, 1]."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    spectrum = (rng.standard_normal(f.shape) + 1j * rng.standard_normal(f.shape)) / f ** (beta / 2)
    spectrum[0, 0] = 0
    out = np.fft.irfft2(spectrum, s=(h, w)).astype(np.float32)
    return (out - out.min()) / max(float(np.ptp(out)), 1e-6)


def _palette(rng: np.random.Generator, look: str, k: int) -> np.ndarray:
    if look == "stone":
        base = EARTH[rng.integers(0, len(EARTH), k)]
        return np.clip(base + rng.normal(0, 14, (k, 3)), 0, 255).astype(np.float32)
    return rng.uniform(0, 255, (k, 3)).astype(np.float32)


def _ramp(t: np.ndarray, colors: np.ndarray) -> np.ndarray:
    pos = np.linspace(0, 1, len(colors))
    return np.stack([np.interp(t, pos, colors[:, c]) for c in range(3)], -1).astype(np.float32)


def _voronoi(rng, h, w, look) -> np.ndarray:
    n = int(rng.integers(12, 60))
    pts = rng.uniform(0, 1, (n, 2)) * (h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = (yy[..., None] - pts[:, 0]) ** 2 + (xx[..., None] - pts[:, 1]) ** 2
    part = np.partition(d, 1, axis=-1)
    cell = d.argmin(-1)
    edge = np.sqrt(part[..., 1]) - np.sqrt(part[..., 0])  # distance to the nearest cell wall, x2
    colors = _palette(rng, look, n)
    img = colors[cell]
    shade = 1 - 0.45 * np.exp(-edge / rng.uniform(1.0, 3.0))  # dark grout / membranes
    grain = pink_noise(rng, h, w, rng.uniform(1.0, 2.0)) - 0.5
    return img * shade[..., None] + grain[..., None] * rng.uniform(20, 60)


def _pink(rng, h, w, look) -> np.ndarray:
    t = pink_noise(rng, h, w, rng.uniform(1.6, 2.6))
    img = _ramp(t, _palette(rng, look, int(rng.integers(2, 5))))
    return img + (pink_noise(rng, h, w, 1.0)[..., None] - 0.5) * rng.uniform(10, 40)


def _wood(rng, h, w, look) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = rng.uniform(-1.5, 2.5, 2) * (h, w)
    r = np.hypot((yy - cy) * rng.uniform(0.2, 1.0), xx - cx) + 25 * pink_noise(rng, h, w, 2.4)
    rings = 0.5 + 0.5 * np.sin(r * 2 * np.pi / rng.uniform(6, 20))
    light, dark = (_palette(rng, look, 2) if look != "stone" else
                   np.array([[186, 140, 96], [110, 70, 40]], np.float32) + rng.normal(0, 12, (2, 3)))
    return dark + (light - dark) * rings[..., None] ** rng.uniform(0.5, 2.0)


def _weave(rng, h, w, look) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    p = rng.uniform(3, 8)
    warp = 0.5 + 0.5 * np.sin(xx * np.pi / p)
    weft = 0.5 + 0.5 * np.sin(yy * np.pi / p)
    over = ((np.floor(xx / p) + np.floor(yy / p)) % 2).astype(np.float32)
    t = over * warp + (1 - over) * weft
    a, b = _palette(rng, look, 2)
    img = b + (a - b) * t[..., None]
    return img * (0.85 + 0.3 * pink_noise(rng, h, w, 2.0))[..., None]


BACKGROUNDS = {"stone": (_voronoi, _pink), "mixed": (_voronoi, _pink, _wood, _weave)}


def _shape_fill(rng, counts: np.ndarray, look: str) -> np.ndarray:
    """A bbox-sized fill: one colour, lit from one side, with its own fine texture."""
    bh, bw = counts.shape
    base = rng.uniform(0, 255, 3).astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:bh, 0:bw].astype(np.float32)
    u = (xx - bw / 2) * math.cos(a) + (yy - bh / 2) * math.sin(a)
    light = 1 + rng.uniform(0.1, 0.45) * u / max(bw, bh)
    texture = (pink_noise(rng, bh, bw, rng.uniform(1.0, 2.0)) - 0.5) * rng.uniform(0, 50)
    return np.clip(base * light[..., None] + texture[..., None], 0, 255)


def _stands_out(fill, under, alpha) -> float:
    diff = np.abs(fill - under).max(-1)
    return float((alpha * (diff >= 40)).sum() / max(alpha.sum(), 1))


def _shadow(canvas, x0, y0, counts, rng) -> None:
    """Darken the background under an offset, blurred copy of the shape (not labelled)."""
    dx, dy = rng.integers(2, 7, 2) * rng.choice([-1, 1], 2)
    alpha = Image.fromarray((counts.astype(np.float32) * (255 / SUPERSAMPLE**2)).astype(np.uint8))
    alpha = np.asarray(alpha.filter(ImageFilter.GaussianBlur(rng.uniform(1, 3))), np.float32) / 255
    clipped = _clip(x0 + dx, y0 + dy, counts, *canvas.shape[:2])
    if clipped is not None:
        img_sl, box_sl = clipped
        canvas[img_sl] *= (1 - rng.uniform(0.3, 0.6) * alpha[box_sl])[..., None]


def _camera(rng, canvas: np.ndarray) -> np.ndarray:
    h, w = canvas.shape[:2]
    img = canvas * rng.uniform(0.85, 1.15, 3).astype(np.float32)  # white balance
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((yy - h / 2) / h) ** 2 + ((xx - w / 2) / w) ** 2
    img *= (1 - rng.uniform(0, 0.6) * r2)[..., None]  # vignetting
    img = 255 * (np.clip(img, 0, 255) / 255) ** rng.uniform(0.75, 1.3)
    out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.3)))
    arr = np.asarray(out, np.float32) + rng.standard_normal((h, w, 3)).astype(np.float32) * rng.uniform(2, 10)
    buf = io.BytesIO()
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=int(rng.integers(40, 95)))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def new_look_scene(seed: int, size: int = 256, look: str = "mixed") -> tuple[np.ndarray, np.ndarray]:
    """(rgb, labels) of one scene; the same seed gives the same scene."""
    rng = np.random.default_rng(seed)
    h = w = size
    family = BACKGROUNDS[look][int(rng.integers(0, len(BACKGROUNDS[look])))]
    canvas = np.clip(family(rng, h, w, look), 0, 255).astype(np.float32)
    labels = np.zeros((h, w), np.uint8)
    instances = np.zeros((h, w), np.uint8)
    drawn, visible = [0], [0]
    wanted = int(rng.integers(5, 13))
    for _ in range(3 * wanted):
        if len(drawn) > wanted:
            break
        class_id = int(rng.integers(1, 5))
        diameter = math.exp(rng.uniform(math.log(12), math.log(72)))
        bx, by, counts = _rasterize(shape_vertices(class_id, diameter, rng) + rng.random(2))
        full = int((counts.astype(np.int32) * 2 >= SUPERSAMPLE**2).sum())
        if full == 0:
            continue
        spot = find_spot(rng, counts, bx, by, full, instances, visible, drawn)  # placement only
        if spot is None:
            continue
        x0, y0, img_sl, box_sl, left = spot
        if rng.random() < 0.5:
            _shadow(canvas, x0, y0, counts, rng)
        alpha = counts[box_sl].astype(np.float32)
        fill = max((_shape_fill(rng, counts, look) for _ in range(8)),
                   key=lambda f: _stands_out(f[box_sl], canvas[img_sl], alpha))
        on = _composite(canvas, labels, x0, y0, counts, fill, class_id)
        instances[img_sl][on] = len(drawn)
        visible = list(left) + [int(on.sum())]
        drawn.append(int(on.sum()))
    return _camera(rng, canvas), labels


def new_look_set(count: int, seed: int, size: int = 256, look: str = "mixed") -> list[tuple[np.ndarray, np.ndarray]]:
    return [new_look_scene(scene_seed(seed, i), size, look) for i in range(count)]


def write_set(out: Path, scenes) -> tuple[Path, Path]:
    """images/ and masks/ (index PNGs with the shape palette) for core.training.loop."""
    from core.io.masks import write_mask
    from core.training.synthetic import SHAPE_CLASSES

    images, masks = Path(out) / "images", Path(out) / "masks"
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    for i, (rgb, lab) in enumerate(scenes):
        Image.fromarray(rgb).save(images / f"scene_{i:03d}.png")
        write_mask(masks / f"scene_{i:03d}.png", lab, "index", SHAPE_CLASSES)
    return images, masks


if __name__ == "__main__":  # write a few for a look: python bench/new_look.py OUT [stone|mixed]
    look = sys.argv[2] if len(sys.argv) > 2 else "mixed"
    write_set(Path(sys.argv[1]), new_look_set(8, 99, 256, look))
