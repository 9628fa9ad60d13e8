"""Scenes for bench/strokes.py, made here (never images shipped in a package), and a simulated
user's strokes on them.

Four kinds of task, so that a recipe chosen on them is not tuned to one look:

* ``texture``: 4 classes that differ by texture (stripes, checks, blobs, speckle) more than by
  colour, under uneven shading (the scenes the first defaults were chosen on);
* ``document``: a scanned page: paper with grain, uneven illumination and faint text bled
  through from the back (all paper), printed words in several sizes (text) and ruled or table
  lines (lines), blurred and noisy as a scanner makes them; thin classes, 1-3 px across;
* ``nuclei``: fluorescence-like 16-bit grey: nuclei of very different brightness (some barely
  above the haze), touching ones separated by a 1 px gap in the truth, small bright foci-like
  specks (their own class), Poisson and read noise;
* ``natural``: aerial-like land cover: water, vegetation, fields with rows, rock, each a
  fractal texture with its own spectrum and colour, the colours overlapping, under haze.

``scene(task, seed)`` returns (pixels, truth, classes): pixels H x W x C (uint8 RGB, or uint16
with one channel for nuclei), truth H x W uint8 class ids.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage as ndi

IGNORE = 255
TASKS = ("texture", "document", "nuclei", "natural")
H, W = 384, 512


def smooth(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth noise with features about ``cell`` pixels across, mean 0, std 1."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    small = rng.standard_normal((gh, gw)).astype(np.float32)
    big = np.asarray(Image.fromarray(small, mode="F").resize((w, h), Image.BICUBIC))
    return (big - big.mean()) / (big.std() + 1e-6)


def fractal(rng: np.random.Generator, h: int, w: int, beta: float, anisotropy: float = 1.0,
            angle: float = 0.0) -> np.ndarray:
    """1/f^beta noise (std 1): beta ~1 rough like foliage, ~3 smooth like water; optionally
    stretched along ``angle``."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    c, s = np.cos(angle), np.sin(angle)
    u, v = fx * c + fy * s, (-fx * s + fy * c) * anisotropy
    f = np.sqrt(u * u + v * v)
    f[0, 0] = 1.0
    spectrum = (rng.standard_normal(f.shape) + 1j * rng.standard_normal(f.shape)) / f ** (beta / 2)
    spectrum[0, 0] = 0
    out = np.fft.irfft2(spectrum, s=(h, w)).astype(np.float32)
    return (out - out.mean()) / (out.std() + 1e-6)


def regions(rng: np.random.Generator, count: int, h: int, w: int, cell=(90, 160), least: float = 0.06) -> np.ndarray:
    """Blobby regions of ``count`` classes, each at least ``least`` of the image."""
    while True:
        fields = np.stack([smooth(rng, h, w, rng.uniform(*cell)) for _ in range(count)])
        truth = fields.argmax(0).astype(np.uint8)
        if np.bincount(truth.ravel(), minlength=count).min() > least * h * w:
            return truth


# --------------------------------------------------------------------------- texture


def _texture(rng: np.random.Generator, kind: str, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "stripes":
        theta, period = rng.uniform(0, np.pi), rng.uniform(6, 14)
        return np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period + rng.uniform(0, 6.3))
    if kind == "checks":
        period = rng.uniform(5, 12)
        return np.sign(np.sin(2 * np.pi * xx / period) * np.sin(2 * np.pi * yy / period)) * 0.8
    if kind == "blobs":
        return smooth(rng, h, w, rng.uniform(4, 10))
    return smooth(rng, h, w, 1.2)  # speckle


def texture_scene(seed: int, h: int = H, w: int = W) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8, truth 0..3): regions that differ by texture more than by colour."""
    rng = np.random.default_rng(seed)
    truth = regions(rng, 4, h, w)
    kinds = rng.permutation(["stripes", "checks", "blobs", "speckle"])
    common = rng.uniform(70, 180, 3)
    img = np.zeros((h, w, 3), np.float32)
    for c, kind in enumerate(kinds):
        base = common + rng.uniform(-25, 25, 3)  # mean colours overlap: texture decides
        direction = rng.standard_normal(3)
        direction = np.abs(direction) / np.linalg.norm(direction) * rng.choice([-1, 1])
        amplitude = rng.uniform(22, 45)
        tex = _texture(rng, str(kind), h, w)
        inside = truth == c
        img[inside] = base + amplitude * tex[inside, None] * direction
    shading = 1 + 0.18 * smooth(rng, h, w, 200)
    img = img * shading[..., None] + rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), truth


# --------------------------------------------------------------------------- document

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _words(rng: np.random.Generator, n: int) -> str:
    lengths = rng.integers(1, 10, n)
    return " ".join("".join(rng.choice(list(_LETTERS), k)) for k in lengths)


def _text_layer(rng: np.random.Generator, h: int, w: int, top: int, bottom: int, left: int, right: int,
                sizes=(10, 18)) -> np.ndarray:
    """Anti-aliased ink coverage 0..1 of lines of random words between the margins."""
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    y = top
    while y < bottom:
        size = int(rng.integers(*sizes))
        font = ImageFont.load_default(size=size)
        x = left + int(rng.integers(0, 30))
        while x < right - 20:
            word = _words(rng, 1)
            box = draw.textbbox((x, y), word, font=font)
            if box[2] > right:
                break
            draw.text((x, y), word, fill=255, font=font)
            x = box[2] + int(size * rng.uniform(0.3, 0.7))
        y += int(size * rng.uniform(1.3, 2.0))
        if rng.random() < 0.15:
            y += size  # a paragraph break
    return np.asarray(canvas, np.float32) / 255


def document_scene(seed: int, h: int = H, w: int = W) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8, truth: 0 paper, 1 text, 2 ruled/table lines) of a scanned page."""
    rng = np.random.default_rng(seed)
    text = _text_layer(rng, h, w, 8, h - 16, 10, w - 10)
    lines = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(lines)
    if rng.random() < 0.5:  # ruled paper: every line under the text, a margin line
        step = int(rng.integers(18, 28))
        for y in range(int(rng.integers(10, 20)), h, step):
            draw.line([(0, y), (w, y)], fill=255, width=int(rng.integers(1, 3)))
        x = int(rng.integers(30, 60))
        draw.line([(x, 0), (x, h)], fill=255, width=2)
    else:  # a table over part of the page
        x0, y0 = int(rng.integers(0, w // 3)), int(rng.integers(0, h // 3))
        x1, y1 = int(rng.integers(2 * w // 3, w)), int(rng.integers(2 * h // 3, h))
        width = int(rng.integers(1, 3))
        for y in np.linspace(y0, y1, int(rng.integers(4, 9))):
            draw.line([(x0, y), (x1, y)], fill=255, width=width)
        for x in np.linspace(x0, x1, int(rng.integers(3, 6))):
            draw.line([(x, y0), (x, y1)], fill=255, width=width)
    lines = np.asarray(lines, np.float32) / 255
    truth = np.zeros((h, w), np.uint8)
    truth[lines > 0.5] = 2
    truth[text > 0.5] = 1  # text printed over a line is text
    # the scan: paper colour and grain, illumination, bleed-through, ink, blur, noise
    paper = np.array([rng.uniform(225, 250), rng.uniform(220, 245), rng.uniform(200, 235)], np.float32)
    img = np.ones((h, w, 3), np.float32) * paper
    img *= (1 + 0.02 * smooth(rng, h, w, 3))[..., None]  # paper grain
    back = _text_layer(rng, h, w, 5, h - 10, 10, w - 10)[:, ::-1]  # the other side, mirrored
    back = ndi.gaussian_filter(back, 1.2)
    img -= (back * rng.uniform(18, 40))[..., None]  # bleed-through: faint, and paper
    if rng.random() < 0.5:  # a highlighter stroke over some words: still text and paper
        y = int(rng.integers(20, h - 40))
        hl = np.zeros((h, w), np.float32)
        hl[y:y + int(rng.integers(14, 22)), int(rng.integers(0, w // 2)):int(rng.integers(w // 2, w))] = 1
        img = img * (1 - hl[..., None] * np.array([0.0, 0.05, 0.45]))
    ink = np.array([rng.uniform(20, 60)] * 3, np.float32) + rng.uniform(-10, 10, 3)
    line_ink = ink if rng.random() < 0.5 else np.array([rng.uniform(60, 120), rng.uniform(80, 140), rng.uniform(150, 210)])
    for cover, colour in ((lines, line_ink), (text, ink)):
        img = img * (1 - cover[..., None]) + cover[..., None] * colour
    img *= (1 + 0.08 * smooth(rng, h, w, 250))[..., None]  # uneven illumination
    img = ndi.gaussian_filter(img, (rng.uniform(0.5, 0.9),) * 2 + (0,))
    img += rng.normal(0, rng.uniform(3, 6), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), truth


# --------------------------------------------------------------------------- nuclei


def nuclei_scene(seed: int, h: int = H, w: int = W) -> tuple[np.ndarray, np.ndarray]:
    """(uint16 H x W x 1, truth: 0 background, 1 nucleus, 2 bright speck) of a fluorescence field."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    signal = np.zeros((h, w), np.float32)
    truth = np.zeros((h, w), np.uint8)
    owner = np.zeros((h, w), np.int32)
    for k in range(1, int(rng.integers(28, 45))):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(8, 18), rng.uniform(8, 18)
        theta = rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u = (dx * np.cos(theta) + dy * np.sin(theta)) / rx
        v = (-dx * np.sin(theta) + dy * np.cos(theta)) / ry
        inside = u * u + v * v <= 1
        brightness = np.exp(rng.uniform(np.log(900), np.log(9000)))  # some barely above the haze
        chromatin = 1 + 0.25 * smooth(rng, h, w, rng.uniform(2, 4))
        signal[inside] = np.maximum(signal[inside], brightness * chromatin[inside])
        owner[inside] = k
    # touching nuclei: a 1 px gap between them in the truth (the user's masks separate them)
    edge = ndi.maximum_filter(owner, 3) != ndi.minimum_filter(np.where(owner == 0, 1 << 30, owner), 3)
    truth[(owner > 0) & ~(edge & (ndi.minimum_filter(owner, 3) > 0))] = 1
    for _ in range(int(rng.integers(15, 30))):  # small bright specks, in and between nuclei
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(2.0, 3.5)
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        signal[inside] = rng.uniform(12000, 20000)
        truth[inside] = 2
    haze = 400 + 250 * np.exp(0.5 * smooth(rng, h, w, 180)) + 150 * ndi.gaussian_filter(signal, 12) / 1000
    img = ndi.gaussian_filter(signal, 1.3) + haze
    img = rng.poisson(np.maximum(img, 0) / 4).astype(np.float32) * 4 + rng.normal(0, 20, img.shape)
    return np.clip(img, 0, 65535).astype(np.uint16)[..., None], truth


# --------------------------------------------------------------------------- natural


def natural_scene(seed: int, h: int = H, w: int = W) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8, truth: 0 water, 1 vegetation, 2 field, 3 rock) of an aerial-like view."""
    rng = np.random.default_rng(seed)
    truth = regions(rng, 4, h, w, cell=(100, 180))
    img = np.zeros((h, w, 3), np.float32)
    looks = [  # (mean colour, colour of the texture, beta, anisotropy, amplitude)
        ((60, 85, 95), (10, 15, 20), 3.2, 4.0, 1.0),
        ((70, 105, 55), (35, 45, 25), 1.3, 1.0, 1.0),
        ((140, 125, 80), (30, 25, 15), 1.8, 12.0, 1.0),
        ((115, 110, 100), (28, 26, 24), 2.2, 1.0, 1.0),
    ]
    for c, (mean, tint, beta, aniso, amp) in enumerate(looks):
        mean = np.array(mean, np.float32) + rng.uniform(-25, 25, 3)
        tex = fractal(rng, h, w, beta, aniso, rng.uniform(0, np.pi))
        if c == 2:  # field rows
            theta, period = rng.uniform(0, np.pi), rng.uniform(5, 9)
            rows = np.sin(2 * np.pi * (np.arange(w)[None] * np.cos(theta) + np.arange(h)[:, None] * np.sin(theta)) / period)
            tex = 0.6 * tex + 0.8 * rows
        inside = truth == c
        img[inside] = mean + tex[inside, None] * np.array(tint, np.float32) * amp * rng.uniform(0.8, 1.2)
    haze = rng.uniform(0, 0.25) * (0.5 + 0.5 * smooth(rng, h, w, 300))[..., None]
    img = img * (1 - haze) + 180 * haze
    img = ndi.gaussian_filter(img, (0.7, 0.7, 0)) + rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), truth


MAKERS = {"texture": texture_scene, "document": document_scene, "nuclei": nuclei_scene, "natural": natural_scene}
CLASS_COUNT = {"texture": 4, "document": 3, "nuclei": 3, "natural": 4}


def scene(task: str, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    pixels, truth = MAKERS[task](seed)
    return pixels, truth, CLASS_COUNT[task]


# --------------------------------------------------------------------------- the user's strokes


def simulate_strokes(truth: np.ndarray, rng: np.random.Generator, per_class: int = 3, width: int = 3,
                     length: tuple[int, int] = (20, 50), classes: int | None = None) -> np.ndarray:
    """A careful user's strokes: ``per_class`` short straight strokes per class, kept on the class
    (255 elsewhere).  The first lies well inside its class where the class is wide enough (8 px
    from its edge, else 3, else 1), the second nearer the edge (3 px), the others along it (1 px),
    as one paints the background between the objects that matter; on classes too thin for that
    (text, lines, specks) a stroke is the brush's path over the class's pixels, as one paints
    along a word."""
    from skimage.morphology import disk

    h, w = truth.shape
    strokes = np.full((h, w), IGNORE, np.uint8)
    for c in range(classes or int(truth.max()) + 1):
        region = truth == c
        if not region.any():
            continue
        insides = [(r, ndi.binary_erosion(region, structure=disk(r))) for r in (8, 3, 1)] + [(0, region)]
        for k in range(per_class):
            done = False
            for radius, inside in insides[min(k, 2):]:
                ys, xs = np.nonzero(inside)
                if ys.size == 0:
                    continue
                thin = radius == 0
                for _try in range(80):
                    k = rng.integers(ys.size)
                    angle = rng.uniform(0, 2 * np.pi)
                    n = rng.integers(*length) * (2 if thin else 0.5 ** (_try // 40))
                    if thin and c and rng.random() < 0.7:
                        angle = rng.choice([0.0, np.pi])  # along the line of text, or the ruled line
                    end = (xs[k] + n * np.cos(angle), ys[k] + n * np.sin(angle))
                    canvas = Image.new("L", (w, h), 0)
                    ImageDraw.Draw(canvas).line([(xs[k], ys[k]), end], fill=1, width=width)
                    line = np.asarray(canvas, bool)
                    if thin:
                        kept = line & inside & (strokes == IGNORE)
                        if kept.sum() >= 12:
                            strokes[kept] = c
                            done = True
                            break
                    elif not (line & ~inside).any():
                        strokes[line] = c
                        done = True
                        break
                if done:
                    break
    return strokes
