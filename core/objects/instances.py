"""How a model's class map becomes objects, the same whole, tiled, streamed and on Dask.

A model that separates touching objects has one class more than the user's: the **boundary**,
learnt from the edge band of every painted object (core.training.instance_targets), so two
touching objects are two cores of their class with a band of boundary between them.  Its
checkpoint says so in its metadata (``instances``: ``InstanceSpec``).  Its objects are:

1. **seeds**: the 4-connected components of each object class (pixels of one class), kept when
   they have ``min_seed`` pixels or more;
2. **growth**: each seed grows ``grow`` steps into neighbouring boundary pixels (4-neighbours,
   all seeds at once; a pixel reached by two seeds in the same step takes the higher id);
3. **ids**: 1..N in raster order of each seed's first pixel.

The class map is then **folded** so it names only the user's classes: a boundary pixel takes its
object's class (0 when no seed reached it), a seed too small to keep becomes background.

Why the class map and not the probabilities: the class map is already identical whole, tiled,
streamed and on Dask (core.segment), so a step that is a function of it alone is exact too, and
the chunked form below is the same arithmetic: seeds are labelled per chunk and joined across
chunk borders (a graph of the touching border pixels), sizes and first pixels are summed over
the join, and growth reads a halo of ``grow`` pixels around each chunk.  Deterministic: no
random numbers, and every tie is broken by id.  Measured against hysteresis seeds and a watershed
on the probabilities in bench/objects.py (bench/RESULTS.md).

API::

    InstanceSpec.from_metadata(metadata, num_classes) -> InstanceSpec | None
    separate(classes, spec[, threads]) -> (instances uint32, folded classes uint8)  # a whole image
    label_seeds(block, spec, origin, width) -> (local ids uint32, Seeds)      # pass 1, per chunk
    link_seeds({block: Seeds}, spec) -> Linked                                 # joins across borders
    grow_window(local_window, parts, luts, spec, core) -> ids                  # pass 2, per chunk
    fold(classes, ids, object_classes, spec) -> classes                       # the user's class map
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
from scipy import ndimage as ndi

CROSS = ndi.generate_binary_structure(2, 1)  # 4-connectivity
Block = tuple[int, int]


@dataclass(frozen=True)
class InstanceSpec:
    """How a model's classes become objects (its checkpoint's ``instances`` metadata).

    ``boundary_class``: the extra class learnt from painted objects' edges; ``object_classes``: the
    classes whose pixels are objects (their seeds); ``grow``: steps a seed grows into boundary
    pixels; ``min_seed``: smaller seeds are dropped; ``boundary_width``: the edge band (pixels)
    the boundary was trained on, recorded for the reader.
    """

    boundary_class: int
    object_classes: tuple[int, ...]
    grow: int = 4
    min_seed: int = 4
    boundary_width: int = 2
    method: str = "boundary"

    def __post_init__(self):
        if self.grow < 0 or self.min_seed < 1:
            raise ValueError(f"instances: grow must be >= 0 and min_seed >= 1, got {self.grow} and {self.min_seed}")
        if self.boundary_class in self.object_classes or 0 in self.object_classes or not self.object_classes:
            raise ValueError("instances: the object classes must be foreground classes other than the boundary")

    @property
    def halo(self) -> int:
        """Pixels around a chunk that its growth reads."""
        return self.grow

    def to_json(self) -> dict:
        return {"method": self.method, "boundary_class": self.boundary_class,
                "object_classes": list(self.object_classes), "grow": self.grow, "min_seed": self.min_seed,
                "boundary_width": self.boundary_width}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> "InstanceSpec":
        if raw.get("method", "boundary") != "boundary":
            raise ValueError(f"instances: unknown method {raw.get('method')!r} (this version knows 'boundary')")
        return cls(int(raw["boundary_class"]), tuple(int(c) for c in raw["object_classes"]),
                   int(raw.get("grow", 4)), int(raw.get("min_seed", 4)), int(raw.get("boundary_width", 2)))

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], num_classes: int) -> "InstanceSpec | None":
        """The spec a checkpoint records, or None for a model without an instance output.

        ValueError (one sentence) when it is recorded but does not fit the model's classes.
        """
        raw = metadata.get("instances") if isinstance(metadata, Mapping) else None
        if not raw:
            return None
        try:
            spec = cls.from_json(raw)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"the model's instance settings are incomplete ({exc!s})") from None
        top = max(spec.boundary_class, *spec.object_classes)
        if top >= num_classes or min(spec.object_classes) < 1:
            raise ValueError(f"the model's instance settings name class {top}, but it has {num_classes} classes")
        return spec

    def user_classes(self, num_classes: int) -> list[int]:
        """The class ids a folded class map can hold (all but the boundary)."""
        return [c for c in range(num_classes) if c != self.boundary_class]


# --------------------------------------------------------------------------- pass 1: seeds


@dataclass
class Seeds:
    """A chunk's seeds (local ids 1..n; id n + 1 marks its boundary pixels): their class, size,
    first pixel, and the local ids along the chunk's edges (0 where there is no seed)."""

    classes: np.ndarray  # uint8, per local id (index 0 unused)
    sizes: np.ndarray  # int64, pixels in this chunk
    first: np.ndarray  # int64, image raster index (y * width + x) of the first pixel in this chunk
    top: np.ndarray
    bottom: np.ndarray
    left: np.ndarray
    right: np.ndarray

    @property
    def count(self) -> int:
        return len(self.sizes) - 1

    @property
    def boundary_id(self) -> int:
        """The local id of the chunk's boundary pixels."""
        return len(self.sizes)


def label_seeds(classes: np.ndarray, spec: InstanceSpec, origin: tuple[int, int] = (0, 0),
                width: int | None = None, full_width: bool = False,
                out: np.ndarray | None = None) -> tuple[np.ndarray, Seeds]:
    """Pass 1 over one chunk (or a whole image): local ids (uint32: seeds 1..n, boundary n + 1,
    0 elsewhere) and the chunk's ``Seeds``.  ``origin``: the chunk's top-left in the image,
    ``width``: the image's width (for the raster index of first pixels).  ``full_width``: the chunk
    is a band of whole rows (or the whole image); with one object class its ids are then already in
    raster order of their first pixels (ndimage numbers them so), so the first pixels are not looked
    up: ``first`` is then the band's first raster index plus the id, which sorts the same way.
    ``out``: where to write the local ids (uint32, the chunk's shape, C-contiguous)."""
    classes = np.asarray(classes)
    h, w = classes.shape
    y0, x0 = origin
    width = w if width is None else width
    local = np.empty((h, w), np.uint32) if out is None else out
    kinds, sizes, firsts = [np.zeros(1, np.uint8)], [np.zeros(1, np.int64)], [np.zeros(1, np.int64)]
    n = 0
    for i, c in enumerate(spec.object_classes):
        mask = classes == c
        lab = local if i == 0 else np.empty((h, w), np.uint32)  # ndimage writes every pixel
        k = ndi.label(mask, structure=CROSS, output=lab)
        if not k:
            continue
        if full_width and len(spec.object_classes) == 1:  # the same order as the first pixels
            firsts.append(np.arange(1, k + 1, dtype=np.int64) + (y0 * width + x0))
        else:
            firsts.append(_first_pixels(lab, k, y0, x0, width))
        sizes.append(np.bincount(lab[mask], minlength=k + 1)[1:].astype(np.int64))
        kinds.append(np.full(k, c, np.uint8))
        if lab is not local:
            np.add(lab, np.uint32(n), out=local, where=mask)
        n += k
    local[classes == spec.boundary_class] = n + 1
    edge = lambda v: np.where(v > n, 0, v).astype(np.uint32)  # noqa: E731
    seeds = Seeds(np.concatenate(kinds), np.concatenate(sizes), np.concatenate(firsts),
                  edge(local[0]), edge(local[-1]), edge(local[:, 0]), edge(local[:, -1]))
    return local, seeds


def _first_pixels(lab: np.ndarray, count: int, y0: int, x0: int, width: int) -> np.ndarray:
    """The image raster index of each component's first pixel: the first row of its box, the first
    column there that holds it."""
    out = np.empty(count, np.int64)
    for i, (rows, cols) in enumerate(ndi.find_objects(lab, count)):
        row = lab[rows.start, cols]
        out[i] = (rows.start + y0) * width + x0 + cols.start + int(np.argmax(row == i + 1))
    return out


# --------------------------------------------------------------------------- join across chunks


@dataclass
class Linked:
    """Every chunk's local ids mapped to the image's object ids (its boundary id to 0), and each
    object's class."""

    luts: dict[Block, np.ndarray]  # per chunk: local id -> object id (uint32; 0: dropped, none or boundary)
    count: int  # objects in the image
    object_classes: np.ndarray = field(default_factory=lambda: np.zeros(1, np.uint8))  # id -> class


def link_seeds(chunks: Mapping[Block, Seeds], spec: InstanceSpec) -> Linked:
    """Join seeds that touch across chunk borders (4-neighbours of one class), keep those of
    ``min_seed`` pixels or more, and number them in raster order of their first pixel."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    blocks = sorted(chunks)
    offsets, total = {}, 0
    for b in blocks:
        offsets[b] = total
        total += len(chunks[b].sizes)
    kinds = np.concatenate([chunks[b].classes for b in blocks])
    sizes = np.concatenate([chunks[b].sizes for b in blocks])
    firsts = np.concatenate([chunks[b].first for b in blocks])
    us, vs = [], []
    for (by, bx) in blocks:
        here = chunks[(by, bx)]
        for other, mine, theirs in (((by + 1, bx), here.bottom, "top"), ((by, bx + 1), here.right, "left")):
            if other not in chunks:
                continue
            there = getattr(chunks[other], theirs)
            touch = (mine > 0) & (there > 0)
            a = mine[touch].astype(np.int64) + offsets[(by, bx)]
            b = there[touch].astype(np.int64) + offsets[other]
            same = kinds[a] == kinds[b]
            us.append(a[same])
            vs.append(b[same])
    u = np.concatenate(us) if us else np.zeros(0, np.int64)
    v = np.concatenate(vs) if vs else np.zeros(0, np.int64)
    if len(u):
        graph = coo_matrix((np.ones(len(u), np.int8), (u, v)), shape=(total, total))
        count, component = connected_components(graph, directed=False)
    else:  # one chunk, or nothing crosses a border: every seed is its own object
        count, component = total, np.arange(total)
    comp_size = np.bincount(component, weights=sizes, minlength=count)
    comp_first = np.full(count, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(comp_first, component, np.where(sizes > 0, firsts, np.iinfo(np.int64).max))
    comp_class = np.zeros(count, np.uint8)
    comp_class[component] = kinds
    kept = np.flatnonzero(comp_size >= spec.min_seed)
    kept = kept[np.argsort(comp_first[kept], kind="stable")]
    object_id = np.zeros(count, np.uint32)
    object_id[kept] = np.arange(1, len(kept) + 1, dtype=np.uint32)
    luts = {}
    for b in blocks:
        lut = np.zeros(len(chunks[b].sizes) + 1, np.uint32)  # the last entry: the chunk's boundary id
        lut[1:-1] = object_id[component[offsets[b] + 1:offsets[b] + len(chunks[b].sizes)]]
        luts[b] = lut
    object_classes = np.concatenate([np.zeros(1, np.uint8), comp_class[kept]])
    return Linked(luts, len(kept), object_classes)


# --------------------------------------------------------------------------- pass 2: growth


GROW_BLOCK = 1 << 15  # pixels a growth step takes at a time, so its temporaries stay in the cache


def grow_window(local: np.ndarray, parts: list[tuple[Block, tuple[slice, slice]]], luts: Mapping[Block, np.ndarray],
                spec: InstanceSpec, core: tuple[slice, slice]) -> np.ndarray:
    """Pass 2 for one chunk: its object ids (uint32).

    ``local``: local ids of the chunk and a halo of ``spec.halo`` pixels (clipped at the image's
    edges); ``parts``: which chunk each region of the window came from (its local ids are that
    chunk's); ``luts``: those chunks' id tables (``Linked.luts``); ``core``: the chunk inside the window.
    """
    return np.ascontiguousarray(_grown(local, parts, luts, spec)[core])


def _grown(local: np.ndarray, parts: list[tuple[Block, tuple[slice, slice]]], luts: Mapping[Block, np.ndarray],
           spec: InstanceSpec) -> np.ndarray:
    """The grown ids of the whole window (a view into a copy with a border of zeros)."""
    h, w = local.shape
    padded = np.zeros((h + 2, w + 2), np.uint32)  # a border of zeros: a neighbour is an index +-1 or +-a row
    boundary = np.zeros((h + 2, w + 2), bool)
    ids, inside = padded[1:-1, 1:-1], boundary[1:-1, 1:-1]
    for block, region in parts:
        piece, lut = local[region], luts[block]
        ids[region] = lut[piece]
        np.equal(piece, len(lut) - 1, out=inside[region])
    grow(padded, np.flatnonzero(boundary), spec.grow)
    return ids


def grow(padded: np.ndarray, todo: np.ndarray, steps: int) -> None:
    """Grow the ids of ``padded`` (2-D uint32 whose outer rows and columns are 0) into the pixels
    ``todo`` (its flat indices of boundary pixels without an id) for ``steps`` steps, in place: each
    step every such pixel takes the largest id among its 4 neighbours, all at once.  Works through
    ``todo`` in slices of ``GROW_BLOCK`` and reads the neighbours from four shifted views of the
    array, so a step costs four gathers and three maxima per pixel, in the cache."""
    row = padded.shape[1]
    flat = padded.reshape(-1)
    up, left, right, down, centre = flat, flat[row - 1:], flat[row + 1:], flat[2 * row:], flat[row:]
    todo = todo - row  # the index of each pixel's upper neighbour: every view is read at it
    best = np.empty(todo.size, padded.dtype)
    for _ in range(steps):
        n = todo.size
        if not n:
            break
        for i in range(0, n, GROW_BLOCK):
            at = todo[i:i + GROW_BLOCK]
            out = best[i:i + at.size]
            np.maximum(up.take(at), down.take(at), out=out)
            np.maximum(out, left.take(at), out=out)
            np.maximum(out, right.take(at), out=out)
        found = best[:n]
        reached = found > 0
        centre[todo[reached]] = found[reached]
        todo = todo[~reached]


def fold(classes: np.ndarray, ids: np.ndarray, object_classes: np.ndarray, spec: InstanceSpec,
         out: np.ndarray | None = None) -> np.ndarray:
    """The user's class map: object and boundary pixels take their object's class (0 without one);
    into ``out`` (uint8, the shape of ``classes``) when given."""
    keep = np.arange(256, dtype=np.uint8)  # a class's own id, 0 for object and boundary classes
    keep[[*spec.object_classes, spec.boundary_class]] = 0
    out = np.take(keep, classes, out=out)
    np.copyto(out, object_classes[ids], where=ids > 0)
    return out


# --------------------------------------------------------------------------- whole image


PARALLEL_PIXELS = 2**22  # images from this size on are separated on every core
BAND_PIXELS = 2**21  # a band's pixels: small temporaries, reused from one band to the next


def separate(classes: np.ndarray, spec: InstanceSpec, threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(instance ids uint32, folded class map uint8) of a whole class map: the chunked passes over
    bands of whole rows (of about ``BAND_PIXELS``, at least one per thread), joined as a slide's
    chunks are, so a slide's chunked result equals it; on ``threads`` threads (default: one per
    core for ``PARALLEL_PIXELS`` or more; ndimage and numpy let go of the GIL there).

    Why bands this small: each band's temporaries are a few MB that the allocator hands from one
    band to the next, where whole-image ones were fresh memory each call, and the kernel's first
    touch of that memory cost as much as the arithmetic."""
    classes = np.asarray(classes)
    h, w = classes.shape
    if threads is None:
        threads = (os.cpu_count() or 1) if classes.size >= PARALLEL_PIXELS else 1
    threads = max(1, int(threads))
    bands = max(1, min(max(threads, -(-classes.size // BAND_PIXELS)), h))
    edges = [h * i // bands for i in range(bands + 1)]
    local = np.empty((h, w), np.uint32)  # every band's local ids, in its rows
    out_ids, out_classes = np.empty((h, w), np.uint32), np.empty((h, w), np.uint8)

    def seeds_of(i: int) -> Seeds:
        y0, y1 = edges[i], edges[i + 1]
        return label_seeds(classes[y0:y1], spec, (y0, 0), w, full_width=True, out=local[y0:y1])[1]

    def grow_band(i: int) -> None:
        y0, y1 = edges[i], edges[i + 1]
        wy0, wy1 = max(0, y0 - spec.halo), min(h, y1 + spec.halo)
        parts = [((j, 0), (slice(max(wy0, edges[j]) - wy0, min(wy1, edges[j + 1]) - wy0), slice(0, w)))
                 for j in range(bands) if min(wy1, edges[j + 1]) > max(wy0, edges[j])]
        out_ids[y0:y1] = _grown(local[wy0:wy1], parts, linked.luts, spec)[y0 - wy0:y1 - wy0]
        fold(classes[y0:y1], out_ids[y0:y1], linked.object_classes, spec, out=out_classes[y0:y1])

    def each(task) -> list:
        if threads == 1 or bands == 1:
            return [task(i) for i in range(bands)]
        with ThreadPoolExecutor(min(threads, bands), thread_name_prefix="unetseg-objects") as pool:
            return list(pool.map(task, range(bands)))

    linked = link_seeds(dict(zip(((i, 0) for i in range(bands)), each(seeds_of))), spec)
    each(grow_band)
    return out_ids, out_classes
