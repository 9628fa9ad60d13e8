"""Training items from strokes painted on a whole slide: only the tiles under the strokes, at one level.

Why: a slide of 100,000 x 100,000 pixels cannot be decoded to train on, and a few strokes cover a
few hundred of its 40,000 tiles.  As QuPath's pixel classifier does (it trains at one resolution
and computes only the tiles under its annotations), the user picks a pyramid level, and
``SlideStrokes.items`` returns (pixels, strokes) pairs for the live trainer
(``core.training.live.LiveTrainer.set_data``) built from:

* the strokes (a ChunkedLabels of the slide's size, 255 = not annotated, core.document.strokes):
  only the chunks that may hold a stroke are decoded (``ChunkedLabels.chunks_with_content``);
* reduced to the chosen level so that a class is kept where it was painted: a level pixel takes
  the class painted most often on the level-0 pixels it covers (ties: the lower id), and is
  unannotated only when none of them was painted.  (The pyramid's nearest-neighbour rule would
  drop a thin stroke at a coarse level.);
* grouped on a grid of ``TILE`` level pixels; touching stroked tiles become one item (a stroke
  stays whole, so holding strokes out for a score keeps its meaning) unless their box exceeds
  ``MAX_ITEM_PIXELS``, then each tile is its own item.  Each item is read from the slide at that
  level with a margin of image around it (unannotated), and nothing else is read.

Memory is the items' pixels (at most ``MAX_PIXELS`` level pixels in all; more is refused with a
message that names the slide and suggests a coarser level) plus one strokes chunk at a time,
whatever the slide's size.  Items read once are kept for the next call while their region stays
the same, so painting more strokes rereads only what changed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.training.annotation import IGNORE, TrainingDataError

TILE = 256  # level pixels per side of the grid strokes are grouped on
MARGIN = 48  # level pixels of image read around the strokes: a 48-px crop centred near a stroke stays in the image
MAX_ITEM_PIXELS = 2048 * 2048  # touching stroked tiles are read as one item up to this box, else tile by tile
MAX_PIXELS = 48 * 2**20  # level pixels read for all items together (144 MB as 8-bit RGB)

Region = tuple[int, int, int, int]  # (y0, y1, x0, x1) at the chosen level


@dataclass
class SlideItems:
    """What ``SlideStrokes.items`` found: pass ``items`` and ``names`` to ``LiveTrainer.set_data``."""

    items: list[tuple[np.ndarray, np.ndarray]]  # (pixels H x W x C at the level, strokes H x W uint8)
    names: list[str]  # one per item, for messages: the slide and the item's place in level-0 pixels
    regions: list[Region]  # each item's rows and columns at the level
    level: int
    downsample: tuple[float, float]  # level-0 pixels per level pixel (rows, columns)
    counts: np.ndarray = field(default_factory=lambda: np.zeros(256, np.int64))  # annotated level pixels per class
    chunks_decoded: int = 0  # strokes chunks read to find the strokes

    @property
    def annotated_pixels(self) -> int:
        return int(self.counts.sum())


def level_choices(source) -> list[tuple[int, float, tuple[int, int]]]:
    """(level, downsample, (width, height)) of each pyramid level of a slide (core.io.sources), for
    the level the user trains at: level 0 is full resolution."""
    w0 = source.levels[0][0]
    return [(k, w0 / w, (w, h)) for k, (w, h) in enumerate(source.levels)]


MIN_STROKE_PIXELS = 4  # the default level keeps a stroke at least this many level pixels wide ...
MAX_DEFAULT_DOWNSAMPLE = 4  # ... and is at most this many times coarser than full resolution


def default_level(source, brush: float) -> int:
    """The level Live Training reads unless the user picks one: the coarsest at which a stroke
    painted with the ``brush`` (its width in full-resolution pixels) is still MIN_STROKE_PIXELS
    wide, so a stroke stays a stroke, and no coarser than MAX_DEFAULT_DOWNSAMPLE, where a 48-pixel
    training crop spans about 200 slide pixels: cells and their texture, not tissue seen from afar."""
    widest = max(1.0, min(float(MAX_DEFAULT_DOWNSAMPLE), float(brush) / MIN_STROKE_PIXELS))
    fitting = [level for level, downsample, _ in level_choices(source) if downsample <= widest * 1.001]
    return max(fitting, default=0)


class SlideStrokes:
    """The training items of one slide's strokes at one level; ``items()`` again after more strokes."""

    def __init__(self, source, strokes, level: int, *, tile: int = TILE, margin: int = MARGIN,
                 max_pixels: int = MAX_PIXELS, max_item_pixels: int = MAX_ITEM_PIXELS):
        name = Path(getattr(source, "path", "slide")).name
        if not 0 <= level < len(source.levels):
            raise TrainingDataError(f"{name}: level {level} does not exist; the slide has levels "
                                    f"0-{len(source.levels) - 1}.")
        if tuple(strokes.shape) != (source.height, source.width):
            raise TrainingDataError(f"{name}: the strokes are {strokes.shape[1]}x{strokes.shape[0]} pixels "
                                    f"but the slide is {source.width}x{source.height}.")
        if getattr(strokes, "fill", IGNORE) != IGNORE:
            raise TrainingDataError(f"{name}: the strokes must hold {IGNORE} where nothing is annotated "
                                    f"(a mask, whose unpainted pixels are {strokes.fill}, was given).")
        self.source, self.strokes, self.level, self.name = source, strokes, int(level), name
        self.tile, self.margin = int(tile), int(margin)
        self.max_pixels, self.max_item_pixels = int(max_pixels), int(max_item_pixels)
        self.level_width, self.level_height = source.levels[self.level]
        self._photo = np.dtype(source.dtype) == np.uint8 and source.channels in (1, 3)
        self._pixels: dict[Region, np.ndarray] = {}  # regions read by the last call, reused by the next

    @property
    def downsample(self) -> tuple[float, float]:
        return self.source.height / self.level_height, self.source.width / self.level_width

    def items(self) -> SlideItems:
        """The items of the strokes as they are now (TrainingDataError when they would need more than
        ``max_pixels`` level pixels); the slide is read only where an item is new."""
        cells, classes, decoded = self._strokes_at_level()
        counts = np.bincount(classes, minlength=256).astype(np.int64)
        groups = self._groups(cells)
        regions = [region for region, _ in groups]
        total = sum((y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in regions)
        if total > self.max_pixels:
            raise TrainingDataError(
                f"{self.name}: the strokes cover {total / 1e6:.1f} million pixels at level {self.level} (with the "
                f"image around them), more than the {self.max_pixels / 1e6:.1f} million Live Training reads; "
                "train at a coarser level, or erase strokes far from the others.")
        wl, t = self.level_width, self.tile
        tile_of = (cells // wl // t) * (-(-wl // t)) + (cells % wl) // t
        all_tiles = np.concatenate([tiles for _, tiles in groups]) if groups else np.zeros(0, np.int64)
        group_of = np.concatenate([np.full(len(tiles), i) for i, (_, tiles) in enumerate(groups)]) \
            if groups else np.zeros(0, np.int64)
        order = np.argsort(all_tiles)
        cell_group = group_of[order][np.searchsorted(all_tiles[order], tile_of)] if cells.size else tile_of
        by_group = np.argsort(cell_group, kind="stable")
        bounds = np.searchsorted(cell_group[by_group], np.arange(len(groups) + 1))
        fy, fx = self.downsample
        items, names, kept = [], [], {}
        for i, (region, _) in enumerate(groups):
            y0, y1, x0, x1 = region
            pixels = self._pixels.get(region)
            if pixels is None:
                pixels = self._read(region)
            kept[region] = pixels
            mask = np.full((y1 - y0, x1 - x0), IGNORE, np.uint8)
            mine = by_group[bounds[i]:bounds[i + 1]]
            mask[cells[mine] // wl - y0, cells[mine] % wl - x0] = classes[mine]
            items.append((pixels, mask))
            names.append(f"{self.name} (level {self.level}, x {int(x0 * fx)}-{int(x1 * fx)}, "
                         f"y {int(y0 * fy)}-{int(y1 * fy)})")
        self._pixels = kept  # regions no longer used are let go
        return SlideItems(items, names, regions, self.level, self.downsample, counts, decoded)

    # ------------------------------------------------------------------ strokes at the level
    def _strokes_at_level(self) -> tuple[np.ndarray, np.ndarray, int]:
        """(flat index at the level, class) of every annotated level pixel, sorted by index, and the
        number of strokes chunks decoded.  Each level pixel takes its most painted class."""
        strokes = self.strokes
        h0, w0 = strokes.shape
        hl, wl = self.level_height, self.level_width
        parts, decoded = [], 0
        for key in strokes.chunks_with_content():
            y0, y1, x0, x1 = strokes.chunk_region(key)
            block = strokes.read(y0, y1, x0, x1)
            decoded += 1
            flat = block.ravel()
            where = np.flatnonzero(flat != IGNORE)
            if where.size == 0:
                continue
            ys, xs = np.divmod(where, block.shape[1])
            values = flat[where].astype(np.int64)
            cell = ((ys + y0) * hl // h0) * wl + (xs + x0) * wl // w0
            keys, n = np.unique(cell * 256 + values, return_counts=True)
            parts.append((keys, n))
        if not parts:
            return np.zeros(0, np.int64), np.zeros(0, np.uint8), decoded
        keys = np.concatenate([k for k, _ in parts])
        n = np.concatenate([c for _, c in parts])
        keys, inverse = np.unique(keys, return_inverse=True)  # a level pixel split across chunks: summed
        n = np.bincount(inverse, weights=n).astype(np.int64)
        cell, cls = keys // 256, keys % 256
        order = np.lexsort((cls, -n, cell))  # per level pixel: the most painted class, then the lower id
        cell, cls = cell[order], cls[order]
        first = np.ones(cell.size, bool)
        first[1:] = cell[1:] != cell[:-1]
        return cell[first], cls[first].astype(np.uint8), decoded

    # ------------------------------------------------------------------ items
    def _groups(self, cells: np.ndarray) -> list[tuple[Region, np.ndarray]]:
        """(region read, tile ids annotated in it) per item: touching stroked tiles together while
        their box stays within max_item_pixels, else one item per tile."""
        t, wl, hl = self.tile, self.level_width, self.level_height
        cols = -(-wl // t)
        tiles = np.unique((cells // wl // t) * cols + (cells % wl) // t)
        todo, out = set(tiles.tolist()), []
        for start in tiles.tolist():
            if start not in todo:
                continue
            todo.discard(start)
            group, queue = [start], deque([start])
            while queue:
                ty, tx = divmod(queue.popleft(), cols)
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        other = (ty + dy) * cols + tx + dx
                        if 0 <= tx + dx < cols and other in todo:
                            todo.discard(other)
                            group.append(other)
                            queue.append(other)
            ty, tx = np.divmod(np.asarray(group), cols)
            box = (int(ty.min()) * t, min(hl, (int(ty.max()) + 1) * t), int(tx.min()) * t, min(wl, (int(tx.max()) + 1) * t))
            if (box[1] - box[0]) * (box[3] - box[2]) <= self.max_item_pixels:
                out.append((self._with_margin(box), np.asarray(sorted(group))))
            else:
                for tile in sorted(group):
                    y, x = divmod(tile, cols)
                    box = (y * t, min(hl, (y + 1) * t), x * t, min(wl, (x + 1) * t))
                    out.append((self._with_margin(box), np.asarray([tile])))
        return out

    def _with_margin(self, box: Region) -> Region:
        y0, y1, x0, x1 = box
        m = self.margin
        return max(0, y0 - m), min(self.level_height, y1 + m), max(0, x0 - m), min(self.level_width, x1 + m)

    def _read(self, region: Region) -> np.ndarray:
        """The slide's pixels of a region at the level, as the trainer takes them (core.training.raw_input:
        an 8-bit grey or RGB slide's RGB view, any other slide's raw channels)."""
        y0, y1, x0, x1 = region
        if self._photo:
            return self.source.read(y0, y1, x0, x1, level=self.level)
        return self.source.read_raw(y0, y1, x0, x1, level=self.level)


def slide_training_items(source, strokes, level: int, **options) -> SlideItems:
    """One call of ``SlideStrokes(source, strokes, level, **options).items()``."""
    return SlideStrokes(source, strokes, level, **options).items()
