"""The README's stack screenshot: ``python bench/stack_screenshot.py docs/screenshot_stack.png``.

A generated 2-channel 16-bit Z stack (nuclei as ellipsoids that come into focus and fade through
the planes, a cytoplasm channel around them; made here, no sample data) is opened offscreen as
an OME-TIFF; the window shows a middle plane with the Z slider under the view, the Channels dock,
the Overview, a mask on that plane (the nuclei above a threshold, as a model might give) and a few
Live Training strokes, and is grabbed.
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

Z, H, W = 24, 640, 900


def nuclei_stack(z: int = Z, h: int = H, w: int = W, count: int = 45, seed: int = 3) -> np.ndarray:
    """Z x C x Y x X uint16: DAPI nuclei (ellipsoids, in focus at their own depth) and GFP around them."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    out = np.zeros((z, 2, h, w), np.float32)
    for _ in range(count):
        cy, cx, cz = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(2, z - 3)
        r, depth, a = rng.uniform(22, 36), rng.uniform(3, 6), rng.uniform(0.7, 1.0)
        angle = rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u = (dx * np.cos(angle) + dy * np.sin(angle)) / r
        v = (-dx * np.sin(angle) + dy * np.cos(angle)) / (r * a)
        flat = u * u + v * v
        for k in range(z):
            zz = ((k - cz) / depth) ** 2
            d = np.sqrt(flat + zz)
            focus = np.exp(-zz / 2)
            out[k, 0] += rng.uniform(0.7, 1.0) * focus / (1 + np.exp(np.minimum((d - 1) * 10, 50)))
            out[k, 1] += 0.5 * focus * np.exp(-((np.sqrt(flat) - 1.7) / 0.8) ** 2) * (flat < 9)
    noise = rng.normal(0, 25, out.shape).astype(np.float32)
    stack = np.stack([160 + 2800 * out[:, 0], 220 + 1700 * out[:, 1]], axis=1) + noise
    return np.clip(stack, 0, 4095).astype(np.uint16)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "docs/screenshot_stack.png").resolve()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory(prefix="unetseg-shot-") as name:
        tmp = Path(name)
        os.environ["UNETSEG_SETTINGS"] = str(tmp / "settings.ini")
        os.environ["UNETSEG_DATA_DIR"] = str(tmp / "data")
        return shoot(tmp, out)


def shoot(tmp: Path, out: Path) -> int:
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from core.classes import ClassInfo
    from core.io.display import COLORS
    from gui.main_window import MainWindow
    from tests.stack_images import write_ome_tiff

    data = nuclei_stack()
    image = write_ome_tiff(tmp / "embryo_nuclei.ome.tif", data, "ZCYX", names=("DAPI", "GFP"), z_step=1.0)
    app = QApplication.instance() or QApplication(["stack-shot"])
    window = MainWindow()
    window.resize(1400, 880)
    window.show()
    window.open_images([image])
    display = window.state.display
    display.set_color(0, COLORS["blue"])
    display.set_color(1, COLORS["green"])
    plane = Z // 2 - 1
    window.plane_ui.go((plane,))
    doc = window.document
    doc.set_classes([ClassInfo(0, "background", (0, 0, 0)), ClassInfo(1, "nucleus", (255, 200, 40))])
    nuclei = (data[plane, 0] > 1300).astype(np.uint8)
    doc.apply_labels(nuclei, "segment plane")
    window.state.outline = True
    strokes = window.state.strokes.doc
    strokes.set_brush_size(7)
    for value, points in ((1, [(300, 200), (330, 230), (350, 260)]), (0, [(80, 560), (240, 600), (420, 590)])):
        strokes.begin_stroke("brush", value)
        for x, y in points:
            strokes.stroke_to(x, y)
        strokes.end_stroke()
    window.plane_ui.go((plane,))  # redraw with the strokes layer
    window.resizeDocks([window.class_dock, window.channel_dock], [200, 520], Qt.Orientation.Vertical)
    canvas = window.canvas
    for _ in range(2000):  # until every tile in view is rendered
        canvas.viewport().repaint()
        app.processEvents()
        if canvas._loader is None or (not canvas._loader._pending and canvas.image_layer.waiting == 0):
            break
        time.sleep(0.005)
    window.class_panel.refresh_counts()  # the class list counts a plane shortly after it is shown
    out.parent.mkdir(parents=True, exist_ok=True)
    ok = window.grab().save(str(out))
    window.state.store.current.stack.save_masks(tmp / "unused_mask.ome.tif")  # nothing left unsaved to ask about
    window.state.store.current.stack.save_strokes(tmp / "unused_strokes.ome.tif")
    window.close()
    print(f"wrote {out}" if ok else f"could not write {out}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
