"""The README's Objects-mode screenshot: ``python bench/objects_screenshot.py docs/screenshot_objects.png``.

A generated 2-channel 16-bit image of packed, touching nuclei (made here by bench/objects_table.py's
generator: no sample data) is opened offscreen.  Its objects are painted with the Objects mode's
own brush (one new object per nucleus, each a stroke over its pixels, the way a person paints
them, touching neighbours left whole), one pair is merged and one object split, one object is
selected, the Objects table is sorted by area, and the window is grabbed.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def paint_like_a_person(doc, ids: np.ndarray) -> None:
    """One object-brush stroke per nucleus through its pixels' rows (the brush never takes a
    neighbour's pixels, so a stroke slightly over the edge stays inside its own object where
    the neighbour is already painted)."""
    layer = doc.objects
    doc.set_brush_size(3)
    for object_id in np.unique(ids[ids > 0]):
        ys, xs = np.nonzero(ids == object_id)
        layer.begin_paint(1)
        for y in np.unique(ys):
            row = xs[ys == y]
            layer.stroke_to(float(row.min()) + 0.5, float(y) + 0.5)
            layer.stroke_to(float(row.max()) + 0.5, float(y) + 0.5)
        layer.end_stroke()
    # what the brush painted beyond a nucleus's edge onto background is trimmed back to it
    extra = (layer.labels > 0) & (ids == 0)
    if extra.any():
        keep = np.where(extra, 0, layer.labels)
        doc.apply_labels(np.where(keep > 0, doc.labels, 0).astype(np.uint8), "trim", objects=keep)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "docs/screenshot_objects.png").resolve()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = Path(tempfile.mkdtemp(prefix="unetseg-shot-"))
    os.environ["UNETSEG_SETTINGS"] = str(tmp / "settings.ini")
    os.environ["UNETSEG_DATA_DIR"] = str(tmp / "data")
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from bench.objects_table import touching_nuclei
    from core.io.display import COLORS
    from gui.main_window import MainWindow
    from tests.channel_images import write_ome_tiff

    ids, pixels = touching_nuclei(512, 70, seed=3)
    image = write_ome_tiff(tmp / "nuclei.ome.tif", pixels, names=("DNA", "actin"))
    app = QApplication.instance() or QApplication(["objects-shot"])
    window = MainWindow()
    window.resize(1500, 980)
    window.show()
    window.open_images([image])
    display = window.state.display
    display.set_color(0, COLORS["blue"])
    display.set_color(1, COLORS["green"])
    doc = window.document
    doc.set_classes([c if c.id != 1 else c._replace(name="nucleus") for c in doc.classes])
    paint_like_a_person(doc, ids)
    layer = doc.objects
    # merge one touching pair, split one object
    a = layer.labels
    edge = (a[:, 1:] != a[:, :-1]) & (a[:, 1:] > 0) & (a[:, :-1] > 0)
    ys, xs = np.nonzero(edge)
    layer.merge(int(a[ys[len(ys) // 2], xs[len(ys) // 2]]), int(a[ys[len(ys) // 2], xs[len(ys) // 2] + 1]))
    big = int(np.bincount(a.ravel())[1:].argmax()) + 1
    box = layer.box_of(big)
    cx = (box.x0 + box.x1) / 2
    layer.split([(cx, box.y0 - 4.0), (cx + 1.0, box.y1 + 4.0)])
    window.state.objects.shown = True
    window.state.opacity = 25
    window.state.objects.selected = big
    window.resizeDocks([window.objects_dock], [300], Qt.Orientation.Vertical)
    window.resizeDocks([window.class_dock, window.channel_dock], [260, 420], Qt.Orientation.Vertical)
    deadline = time.monotonic() + 120
    window.objects.refresh()
    while not window.objects.current and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    table = window.state.objects.table
    view = window.objects_panel.view
    view.sortByColumn(table.names.index("area"), Qt.SortOrder.DescendingOrder)
    view.scrollTo(view.currentIndex(), view.ScrollHint.PositionAtCenter)  # the selected object's row
    window.canvas.fit()
    for _ in range(200):
        window.canvas.viewport().repaint()
        app.processEvents()
        time.sleep(0.005)
    out.parent.mkdir(parents=True, exist_ok=True)
    ok = window.grab().save(str(out))
    print(f"{layer.count} objects, {len(table)} rows; " + (f"wrote {out}" if ok else f"could not write {out}"),
          file=sys.stderr)
    window.document.mark_saved()
    window.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
