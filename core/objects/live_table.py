"""A measurement table kept current while objects are edited: after an edit, only the objects it
touched are measured again (core.objects.measure on a crop of them), and their rows replace the
old ones.  The app's Objects table refreshes this way after each stroke, merge or split; on a
2048 x 2048 image with 800 touching objects that is tens of milliseconds where the whole table
takes seconds, 150-460x less (bench/objects_table.py, bench/RESULTS.md).

An edit within ``box`` can change the objects with pixels in the box now, and the objects whose
rows' bounding box meets it (they may have lost pixels there).  Every one of them lies inside
the box joined with their old bounding boxes: an object only grows into the edited box, and a
new one (painted, or a piece of a split) lies within it.  Measurements are taken from each
object's own crop, so a row measured in the crop equals the row of the whole image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.objects.measure import Columns, measure

_X = ("centroid_x", "bbox_x")  # columns in pixels that count from the image's left edge
_Y = ("centroid_y", "bbox_y")


@dataclass(frozen=True)
class Update:
    """What to measure again: the object ids, and the region (y0, x0, y1, x1) that holds them."""

    ids: np.ndarray
    region: tuple[int, int, int, int]

    @property
    def empty(self) -> bool:
        return self.ids.size == 0


def empty_table(columns: Columns) -> dict[str, np.ndarray]:
    return {n: np.array([]) for n in columns.names}


def plan_update(table: dict[str, np.ndarray], instances: np.ndarray, box: tuple[int, int, int, int]) -> Update:
    """The objects an edit within ``box`` (y0, x0, y1, x1) may have changed, and where they are."""
    y0, x0, y1, x1 = (int(v) for v in box)
    now = np.unique(instances[y0:y1, x0:x1])
    now = now[now != 0].astype(np.int64)
    labels = np.asarray(table.get("label", []), np.int64)
    if labels.size:
        bx, by = np.asarray(table["bbox_x"], np.int64), np.asarray(table["bbox_y"], np.int64)
        bw, bh = np.asarray(table["bbox_width"], np.int64), np.asarray(table["bbox_height"], np.int64)
        hit = (bx < x1) & (bx + bw > x0) & (by < y1) & (by + bh > y0)
        ids = np.union1d(labels[hit], now)
        known = np.isin(labels, ids)  # every candidate's old box: a merged-in object may lie far away
        if known.any():
            y0, x0 = min(y0, int(by[known].min())), min(x0, int(bx[known].min()))
            y1, x1 = max(y1, int((by + bh)[known].max())), max(x1, int((bx + bw)[known].max()))
    else:
        ids = now
    return Update(ids, (y0, x0, y1, x1))


def measure_update(update: Update, instances: np.ndarray, pixels=None, class_mask=None,
                   columns: Columns = Columns()) -> dict[str, np.ndarray]:
    """The rows of ``update.ids`` as they are now (objects gone from the image have none),
    measured from the crop of ``update.region`` (arrays of the whole image, or that crop with
    ``origin``: see ``measure_crop``)."""
    y0, x0, y1, x1 = update.region
    crop = lambda a: None if a is None else np.asarray(a[y0:y1, x0:x1])  # noqa: E731
    return measure_crop(update, crop(instances), crop(pixels), crop(class_mask), columns)


def measure_crop(update: Update, instances: np.ndarray, pixels=None, class_mask=None,
                 columns: Columns = Columns()) -> dict[str, np.ndarray]:
    """``measure_update`` of arrays already cut to ``update.region`` (a worker thread gets copies)."""
    y0, x0 = update.region[:2]
    only = np.where(np.isin(instances, update.ids), instances, 0)
    rows = measure(only, pixels, class_mask, columns)
    return shifted(rows, y0, x0, columns.for_pixels(pixels))


def shifted(rows: dict[str, np.ndarray], y0: int, x0: int, columns: Columns) -> dict[str, np.ndarray]:
    """Rows measured in a crop whose corner is (y0, x0), in the whole image's coordinates."""
    out = dict(rows)
    if not len(out.get("label", [])):
        return out
    for name in _X:
        out[name] = np.asarray(out[name]) + x0
    for name in _Y:
        out[name] = np.asarray(out[name]) + y0
    um = columns.microns
    if um and "centroid_x_um" in out:
        sy, sx = um
        out["centroid_x_um"] = np.asarray(out["centroid_x_um"]) + x0 * sx
        out["centroid_y_um"] = np.asarray(out["centroid_y_um"]) + y0 * sy
    return out


def splice(table: dict[str, np.ndarray], update: Update, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``table`` with the rows of ``update.ids`` replaced by ``rows`` (sorted by label again)."""
    labels = np.asarray(table.get("label", []), np.int64)
    keep = ~np.isin(labels, update.ids) if labels.size else np.zeros(0, bool)
    new = np.asarray(rows.get("label", []), np.int64)
    merged_labels = np.concatenate([labels[keep], new])
    order = np.argsort(merged_labels, kind="stable")
    out = {}
    for name in table:
        old = np.asarray(table[name])
        parts = [a for a in (old[keep] if old.size else old, np.asarray(rows.get(name, []))) if a.size]
        both = np.concatenate(parts) if parts else old[:0]
        out[name] = both[order] if both.size else both
    return out
