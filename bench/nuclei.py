"""Fluorescence-like 16-bit images of touching nuclei with their true instance labels, made here.

Two generators of different styles, so a method chosen on them does not fit one of them:

* ``round``: ellipses with wavy outlines in loose clumps; flat-topped intensity with soft
  edges and chromatin texture, a Gaussian PSF, Poisson and read noise, uneven illumination.
  Where two nuclei overlap, each pixel belongs to the one it is deeper inside, so touching
  nuclei meet along a curve, often with a faint dip of intensity there, sometimes none.
* ``dense``: tissue-like packing of irregular, lobed and elongated nuclei of two size
  populations (their shapes come from a noisy distance field, not from ellipses); a dome profile
  (bright centre, dim rim) with bright foci, an anisotropic PSF, Gaussian-dominated noise,
  out-of-focus haze blobs in the background, and some very dim nuclei.

``simulate_annotation`` is the issue's protocol: in one quadrant, 12 nuclei painted whole (two
touching pairs among them) and a few background strokes (about 2 % of the image's pixels
annotated in all), as a 16-bit label image: 65535 = not annotated, 0 = background, 1..12 = objects.
Never scikit-image's sample images.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

NOT_ANNOTATED = 65535


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    noise = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return noise / (noise.std() + 1e-6)


def _clustered_centres(rng, h, w, count, clump_share, spread):
    """Centres: a share of them in clumps around parent points, the rest scattered."""
    parents = rng.uniform((0, 0), (h, w), (max(1, int(count * clump_share / 5)), 2))
    out = []
    for _ in range(count):
        if rng.random() < clump_share:
            p = parents[rng.integers(len(parents))]
            out.append(p + rng.normal(0, spread, 2))
        else:
            out.append(rng.uniform((0, 0), (h, w)))
    return np.clip(np.array(out), 0, (h - 1, w - 1))


def _rasterise_owner(h, w, nuclei, depth_of):
    """Labels by "deepest inside wins": depth_of(nucleus, yy, xx) -> normalised radius (< 1 inside)."""
    labels = np.zeros((h, w), np.uint32)
    best = np.full((h, w), np.inf, np.float32)
    for i, n in enumerate(nuclei, start=1):
        y0, y1, x0, x1 = n["box"]
        y0, x0, y1, x1 = max(0, y0), max(0, x0), min(h, y1), min(w, x1)
        if y1 <= y0 or x1 <= x0:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        depth = depth_of(n, yy, xx)
        win = (depth < 1) & (depth < best[y0:y1, x0:x1])
        labels[y0:y1, x0:x1][win] = i
        best[y0:y1, x0:x1][win] = depth[win]
    return labels, best


def _place(rng, centres, radii, max_overlap):
    """Keep nuclei whose centre is not too deep inside an already kept one (touching, not stacked)."""
    kept = []
    for c, r in zip(centres, radii):
        if all(np.hypot(*(c - k[0])) > max_overlap * (r + k[1]) for k in kept):
            kept.append((c, r))
    return kept


def round_scene(seed: int, size: int = 512, count: int = 130) -> tuple[np.ndarray, np.ndarray]:
    """(uint16 H x W image, uint32 instance labels) in the ``round`` style."""
    rng = np.random.default_rng(seed)
    h = w = size
    centres = _clustered_centres(rng, h, w, int(count * 1.3), clump_share=0.6, spread=14)
    radii = rng.uniform(7, 15, len(centres)) * rng.choice([1.0, 1.25], len(centres), p=[0.8, 0.2])
    kept = _place(rng, centres, radii, 0.72)[:count]
    nuclei = []
    for (cy, cx), r in kept:
        a, b = r * rng.uniform(1.0, 1.25), r * rng.uniform(0.75, 1.0)
        harmonics = [(k, rng.normal(0, 0.05 / k), rng.uniform(0, 2 * np.pi)) for k in (2, 3, 4, 5)]
        reach = int(a * 1.4) + 2
        nuclei.append(dict(c=(cy, cx), a=a, b=b, t=rng.uniform(0, np.pi), harm=harmonics,
                           box=(int(cy) - reach, int(cy) + reach + 1, int(cx) - reach, int(cx) + reach + 1),
                           bright=rng.lognormal(0, 0.35), soft=rng.uniform(0.8, 2.0)))

    def depth_of(n, yy, xx):
        dy, dx = yy - n["c"][0], xx - n["c"][1]
        ct, st = np.cos(n["t"]), np.sin(n["t"])
        u, v = dx * ct + dy * st, -dx * st + dy * ct
        theta = np.arctan2(v, u)
        wobble = 1 + sum(amp * np.cos(k * theta + ph) for k, amp, ph in n["harm"])
        return np.sqrt((u / n["a"]) ** 2 + (v / n["b"]) ** 2) / wobble

    labels, depth = _rasterise_owner(h, w, nuclei, depth_of)
    intensity = np.zeros((h, w), np.float32)
    texture = 1 + 0.18 * _smooth_noise(rng, (h, w), 1.5)
    for i, n in enumerate(nuclei, start=1):
        inside = labels == i
        r_px = (1 - depth[inside]) * n["a"]  # roughly the distance to the edge in pixels
        intensity[inside] = n["bright"] * (1 / (1 + np.exp(-(r_px - 1.0) / n["soft"])))
    intensity *= texture
    intensity = ndi.gaussian_filter(intensity, rng.uniform(0.8, 1.8))
    illumination = 1 + 0.25 * _smooth_noise(rng, (h, w), 120)
    photons = rng.uniform(150, 600)
    signal = intensity * illumination * photons + rng.uniform(5, 30)
    counts = rng.poisson(np.clip(signal, 0, None)).astype(np.float32) + rng.normal(0, rng.uniform(2, 8), (h, w))
    gain = rng.uniform(2, 6)
    image = np.clip(100 + gain * counts, 0, 65534).astype(np.uint16)
    return image, labels


def dense_scene(seed: int, size: int = 512, count: int = 125) -> tuple[np.ndarray, np.ndarray]:
    """(uint16 H x W image, uint32 instance labels) in the ``dense`` style."""
    rng = np.random.default_rng(seed + 10_000)
    h = w = size
    centres = _clustered_centres(rng, h, w, int(count * 1.5), clump_share=0.8, spread=22)
    big = rng.random(len(centres)) < 0.35
    radii = np.where(big, rng.uniform(12, 17, len(centres)), rng.uniform(6, 10, len(centres)))
    kept = _place(rng, centres, radii, 0.62)[:count]
    field = _smooth_noise(rng, (h, w), 3.0)  # lobes: one shared noisy field perturbs every outline
    nuclei = []
    for (cy, cx), r in kept:
        elong = rng.uniform(1.0, 1.9) if rng.random() < 0.4 else rng.uniform(1.0, 1.2)
        a, b = r * np.sqrt(elong), r / np.sqrt(elong)
        reach = int(a * 1.5) + 3
        dim = rng.random() < 0.12
        nuclei.append(dict(c=(cy, cx), a=a, b=b, t=rng.uniform(0, np.pi), lobes=rng.uniform(0.05, 0.16),
                           box=(int(cy) - reach, int(cy) + reach + 1, int(cx) - reach, int(cx) + reach + 1),
                           bright=rng.lognormal(0, 0.25) * (rng.uniform(0.25, 0.4) if dim else 1.0)))

    def depth_of(n, yy, xx):
        dy, dx = yy - n["c"][0], xx - n["c"][1]
        ct, st = np.cos(n["t"]), np.sin(n["t"])
        u, v = dx * ct + dy * st, -dx * st + dy * ct
        y0, x0 = int(yy[0, 0]), int(xx[0, 0])
        local = field[y0:y0 + yy.shape[0], x0:x0 + yy.shape[1]]
        return np.sqrt((u / n["a"]) ** 2 + (v / n["b"]) ** 2) + n["lobes"] * local

    labels, depth = _rasterise_owner(h, w, nuclei, depth_of)
    labels = _drop_small_pieces(labels, 20)
    intensity = np.zeros((h, w), np.float32)
    foci = np.clip(_smooth_noise(rng, (h, w), 1.0) - 1.5, 0, None)
    for i, n in enumerate(nuclei, start=1):
        inside = labels == i
        if inside.any():
            d = np.clip(depth[inside], 0, 1)
            intensity[inside] = n["bright"] * (0.45 + 0.55 * np.sqrt(1 - d ** 2)) * (1 + 0.6 * foci[inside])
    sy, sx = rng.uniform(0.7, 1.6), rng.uniform(0.7, 1.6)
    intensity = ndi.gaussian_filter(intensity, (sy, sx))
    haze = np.zeros((h, w), np.float32)
    for _ in range(rng.integers(3, 8)):
        y, x = rng.uniform(0, h), rng.uniform(0, w)
        haze[int(y), int(x)] = rng.uniform(0.2, 0.5)
    haze = ndi.gaussian_filter(haze, 18) * (2 * np.pi * 18 ** 2)
    illumination = 1 + 0.15 * _smooth_noise(rng, (h, w), 200)
    level = rng.uniform(800, 2500)
    signal = (intensity + np.clip(haze, 0, 0.35)) * illumination * level
    image = signal + rng.uniform(200, 500) + rng.normal(0, rng.uniform(20, 60), (h, w)) + \
        rng.poisson(np.clip(signal / 8, 0, None)) * 2.0
    return np.clip(image, 0, 65534).astype(np.uint16), labels


def _drop_small_pieces(labels: np.ndarray, min_area: int) -> np.ndarray:
    """Keep each nucleus's largest piece (owner maps can split one) and nuclei of min_area or more; ids 1..n."""
    from skimage.measure import label as cc
    from skimage.segmentation import relabel_sequential

    out = np.zeros_like(labels)
    for i, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        part = labels[sl] == i
        pieces = cc(part, connectivity=1)
        if pieces.max() > 1:
            sizes = np.bincount(pieces.ravel())
            sizes[0] = 0
            part = pieces == sizes.argmax()
        if part.sum() >= min_area:
            out[sl][part] = i
    return relabel_sequential(out)[0].astype(np.uint32)


GENERATORS = {"round": round_scene, "dense": dense_scene}


def scene(style: str, seed: int, size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    image, labels = GENERATORS[style](seed, size)
    return image, _drop_small_pieces(labels, 20)


# --------------------------------------------------------------------------- the protocol


QUADRANTS = ((0, 0), (0, 1), (1, 0), (1, 1))


def quadrant_box(shape: tuple[int, int], q: int) -> tuple[slice, slice]:
    h, w = shape
    qy, qx = QUADRANTS[q]
    return slice(qy * h // 2, (qy + 1) * h // 2), slice(qx * w // 2, (qx + 1) * w // 2)


def touching_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    """Pairs of ids that share an edge (4-neighbours)."""
    pairs = set()
    for a, b in ((labels[:-1], labels[1:]), (labels[:, :-1], labels[:, 1:])):
        m = (a != b) & (a > 0) & (b > 0)
        for u, v in zip(a[m], b[m]):
            pairs.add((int(min(u, v)), int(max(u, v))))
    return pairs


def simulate_annotation(labels: np.ndarray, seed: int, quadrant: int | None = None, objects: int = 12,
                        pairs: int = 2, share: float = 0.02, strokes: int = 3) -> tuple[np.ndarray, int]:
    """(16-bit label image: 65535 not annotated, 0 background strokes, 1..objects painted whole; the quadrant).

    Objects lie wholly inside the quadrant; ``pairs`` touching pairs first, then others at random.
    Background strokes (5 px wide, 25-70 px long, 2 px or more from any nucleus) are added until
    ``share`` of the image's pixels is annotated, and at least ``strokes`` of them.
    """
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    q = int(rng.integers(4)) if quadrant is None else quadrant
    box = quadrant_box(labels.shape, q)
    inside = np.zeros(labels.shape, bool)
    inside[box] = True
    ids = [i for i in np.unique(labels[box]) if i and not ((labels == i) & ~inside).any()
           and not _touches_edge(labels == i, box)]
    touching = [p for p in touching_pairs(labels) if p[0] in ids and p[1] in ids]
    rng.shuffle(touching)
    chosen: list[int] = []
    for a, b in touching:
        if len(chosen) // 2 >= pairs:
            break
        if a not in chosen and b not in chosen:
            chosen += [a, b]
    rest = [i for i in ids if i not in chosen]
    rng.shuffle(rest)
    chosen += rest[:objects - len(chosen)]
    out = np.full(labels.shape, NOT_ANNOTATED, np.uint16)
    for k, i in enumerate(chosen, start=1):
        out[labels == i] = k
    free = ndi.binary_erosion(labels == 0, iterations=2) & inside
    h, w = labels.shape
    target = share * labels.size
    tries = painted = 0
    while ((out != NOT_ANNOTATED).sum() < target or painted < strokes) and tries < 400:
        tries += 1
        ys, xs = np.nonzero(free)
        if ys.size == 0:
            break
        k = rng.integers(ys.size)
        angle, n = rng.uniform(0, 2 * np.pi), rng.integers(25, 70)
        canvas = Image.new("L", (w, h), 0)
        end = (xs[k] + n * np.cos(angle), ys[k] + n * np.sin(angle))
        ImageDraw.Draw(canvas).line([(xs[k], ys[k]), end], fill=1, width=5)
        line = np.asarray(canvas, bool)
        if line.any() and not (line & ~free).any():
            out[line] = 0
            painted += 1
    return out, q


def _touches_edge(obj: np.ndarray, box: tuple[slice, slice]) -> bool:
    """True when the object touches the image's outer edge (then it is not 'painted whole')."""
    h, w = obj.shape
    return bool(obj[0].any() or obj[-1].any() or obj[:, 0].any() or obj[:, -1].any())


def scored_region(labels: np.ndarray, quadrant: int) -> np.ndarray:
    """Labels with the annotated quadrant removed (the other three quadrants are scored)."""
    out = np.array(labels, copy=True)
    out[quadrant_box(labels.shape, quadrant)] = 0
    return out
