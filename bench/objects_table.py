"""How the Objects table keeps up with edits: ``python bench/objects_table.py [--side 2048] [--objects 800]``.

A generated image (side x side, two 16-bit channels) holds about ``--objects`` touching nuclei
(seeds grown until they meet, so most objects touch a neighbour).  The app's refresh after an
edit (core.objects.live_table: plan, measure the touched objects' crop, splice their rows) is
timed against measuring the whole table again (core.objects.measure, what a refresh without it
would cost), for each kind of object edit, and the edit itself is timed too.  The refreshed
table is checked equal to a fresh full measurement after every edit.  The Objects mode's
outlines are timed as the canvas paints them (offscreen, 1400 x 900 view, fitted and at 1:1).

Prints medians and the ratio full / live from one run; timings on a loaded machine are inflated,
the ratios much less.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def touching_nuclei(side: int, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(uint32 ids, side x side x 2 uint16 pixels): ``count`` seeds grown to radius ~r, meeting
    where they are closer than 2r (a Voronoi split), the way packed nuclei touch."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    r = 0.62 * side / np.sqrt(count)
    seeds = np.zeros((side, side), np.int32)
    pts = rng.integers(int(r), side - int(r), size=(count, 2))
    seeds[pts[:, 0], pts[:, 1]] = np.arange(1, count + 1)
    dist, (iy, ix) = ndi.distance_transform_edt(seeds == 0, return_indices=True)
    radius = r * rng.uniform(0.8, 1.2, count + 1)
    nearest = seeds[iy, ix]
    ids = np.where(dist < radius[nearest], nearest, 0).astype(np.uint32)
    bright = rng.uniform(800, 3000, count + 1)
    dna = 120 + bright[nearest] * np.clip(1.2 - dist / np.maximum(radius[nearest], 1), 0, 1) * (ids > 0)
    actin = 200 + 900 * np.exp(-((dist - radius[nearest]) / 3.0) ** 2)
    pixels = np.stack([dna, actin], -1) + rng.normal(0, 30, (side, side, 2))
    return ids, np.clip(pixels, 0, 65535).astype(np.uint16)


def median_ms(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", type=int, default=2048)
    parser.add_argument("--objects", type=int, default=800)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    from core.classes import default_classes
    from core.document.mask_document import MaskDocument
    from core.objects.live_table import measure_update, plan_update, splice
    from core.objects.measure import Columns, measure

    ids, pixels = touching_nuclei(args.side, args.objects)
    classes = (ids > 0).astype(np.uint8)
    doc = MaskDocument(classes, default_classes(2))
    doc.objects.set_labels(ids)
    layer = doc.objects
    n = layer.count
    touching = int(np.count_nonzero((ids[:, 1:] != ids[:, :-1]) & (ids[:, 1:] > 0) & (ids[:, :-1] > 0)))
    columns = Columns(channel_names=("DNA", "actin"), classes=doc.classes)
    print(f"{args.side}x{args.side}, {n} objects, {touching:,} pixel edges between touching objects; "
          f"2 x uint16 channels")

    full_ms, table = median_ms(lambda: measure(layer.labels, pixels, doc.labels, columns), args.repeat)
    print(f"whole table measured: {full_ms:.0f} ms ({len(table['label'])} rows, {len(table)} columns)")

    boxes: list = []
    layer.changed.connect(boxes.append)
    doc.changed.connect(boxes.append)
    rng = np.random.default_rng(1)

    def pick():
        return int(rng.choice(layer.ids()))

    def neighbours():
        a = layer.labels
        edge = (a[:, 1:] != a[:, :-1]) & (a[:, 1:] > 0) & (a[:, :-1] > 0)
        ys, xs = np.nonzero(edge)
        k = int(rng.integers(len(ys)))
        return int(a[ys[k], xs[k]]), int(a[ys[k], xs[k] + 1])

    def new_object(at):
        y, x = at
        doc.set_brush_size(24)
        layer.begin_paint(1)
        layer.stroke_to(float(x), float(y))
        layer.stroke_to(float(x) + 10, float(y) + 4)
        layer.end_stroke()

    def split(object_id):
        box = layer.box_of(object_id)
        cy, cx = (box.y0 + box.y1) / 2, (box.x0 + box.x1) / 2
        layer.split([(cx + 0.3, box.y0 - 3.0), (cx - 0.2, box.y1 + 3.0)])

    def erase(object_id):
        box = layer.box_of(object_id)
        doc.set_brush_size(8)
        layer.begin_erase(object_id)
        layer.stroke_to(box.x0 + 0.5, (box.y0 + box.y1) / 2)
        layer.stroke_to((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2)
        layer.end_stroke()

    # (what the user points at, chosen untimed; the edit, timed)
    edits = {
        "paint a new object": (lambda: tuple(rng.integers(50, args.side - 50, 2)), new_object),
        "delete one": (pick, layer.delete),
        "merge two touching": (neighbours, lambda pair: layer.merge(*pair)),
        "split one along a line": (pick, split),
        "erase from one": (pick, erase),
        "undo": (lambda: None, lambda _: doc.undo()),
    }
    rows = []
    for name, (choose, edit) in edits.items():
        edit_times, live_times = [], []
        for _ in range(args.repeat):
            target = choose()
            boxes.clear()
            t = time.perf_counter()
            edit(target)
            edit_times.append(1000 * (time.perf_counter() - t))
            if not boxes:
                continue  # nothing changed (a new object's brush fell on other objects only)
            box = boxes[0]
            for b in boxes[1:]:
                box = box.union(b)
            t = time.perf_counter()
            update = plan_update(table, layer.labels, tuple(box))
            new_rows = measure_update(update, layer.labels, pixels, doc.labels, columns)
            table = splice(table, update, new_rows)
            live_times.append(1000 * (time.perf_counter() - t))
        if live_times:
            rows.append((name, statistics.median(edit_times), statistics.median(live_times), len(update.ids)))
    check = measure(layer.labels, pixels, doc.labels, columns)
    for key in check:
        a, b = np.asarray(check[key]), np.asarray(table[key])
        same = a.tolist() == b.tolist() if a.dtype.kind in "US" else np.allclose(a, b, equal_nan=True)
        assert same, f"the live table's {key} differs from a full measurement"
    print("after every edit the live table equals a full measurement: yes\n")
    print("| edit | the edit | table refresh (live) | objects re-measured | full / live |")
    print("|---|---|---|---|---|")
    for name, edit_ms, live_ms, count in rows:
        print(f"| {name} | {edit_ms:.1f} ms | {live_ms:.1f} ms | {count} | {full_ms / live_ms:.0f}x |")

    print()
    paint_outlines(doc, pixels, args.repeat)
    return 0


def paint_outlines(doc, pixels: np.ndarray, repeat: int) -> None:
    """Frame times of the canvas (offscreen, 1400 x 900) with the Objects mode's outlines on and
    off: a full repaint, fitted and zoomed in."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from gui.canvas.view import Canvas
    from gui.state.app_state import AppState

    app = QApplication.instance() or QApplication(["objects-bench"])
    state = AppState()
    canvas = Canvas(state)
    canvas.resize(1400, 900)
    canvas.show()
    rgb = np.clip(pixels[..., [0, 1, 0]] / 16, 0, 255).astype(np.uint8)
    canvas.set_content(rgb, doc)
    h, w = doc.shape
    print("| view (1400 x 900) | frame, objects off | frame, Objects mode | outlines cost |")
    print("|---|---|---|---|")
    for label, scale in (("fitted", None), ("1:1", 1.0), ("4:1", 4.0)):
        if scale is None:
            canvas.fit()
        else:
            canvas.set_scale(scale)
            canvas.center_on_image(w / 2, h / 2)
        times = {}
        for shown in (False, True):
            state.objects.shown = shown
            app.processEvents()
            times[shown], _ = median_ms(lambda: canvas.viewport().repaint(), max(7, repeat))
        print(f"| {label} | {times[False]:.0f} ms | {times[True]:.0f} ms | {times[True] - times[False]:.0f} ms |")
    canvas.close()


if __name__ == "__main__":
    sys.exit(main())
