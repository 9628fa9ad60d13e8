"""The README's channel-panel screenshot: ``python bench/channels_screenshot.py docs/screenshot_channels.png``.

A generated 3-channel 16-bit fluorescence-like OME-TIFF (nuclei, cytoplasm and spots in a 12-bit
camera's range, made here: no sample data) is opened offscreen; the channels are given the
usual stain colours through the display model, as the Channels dock would, and the window is
grabbed.
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


def cells(h: int, w: int, count: int, seed: int = 5) -> np.ndarray:
    """H x W x 3 uint16: nuclei (DAPI), cytoplasm around them (GFP), spots inside (mCherry)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    dapi, gfp, spots = (np.zeros((h, w), np.float32) for _ in range(3))
    for _ in range(count):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r, a, angle = rng.uniform(14, 24), rng.uniform(0.7, 1.0), rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u = (dx * np.cos(angle) + dy * np.sin(angle)) / r
        v = (-dx * np.sin(angle) + dy * np.cos(angle)) / (r * a)
        d = np.sqrt(u * u + v * v)
        dapi += rng.uniform(0.5, 1.0) / (1 + np.exp(np.minimum((d - 1) * 12, 50)))
        gfp += rng.uniform(0.25, 0.7) * np.exp(-((d - 1.6) / 0.9) ** 2) * (d < 3.2)
        for _ in range(rng.integers(2, 7)):
            sy, sx = cy + rng.normal(0, r * 1.4), cx + rng.normal(0, r * 1.4)
            spots += rng.uniform(0.5, 1.0) * np.exp(-((yy - sy) ** 2 + (xx - sx) ** 2) / (2 * 2.2 ** 2))
    texture = 1 + 0.25 * rng.standard_normal((h, w)).astype(np.float32)
    out = np.stack([180 + 2600 * dapi * texture, 240 + 1800 * gfp, 150 + 3200 * spots], axis=-1)
    out += rng.normal(0, 30, out.shape)
    out[h // 3, w // 5] = 65535  # a hot pixel: the auto-contrast must not care
    return np.clip(out, 0, 65535).astype(np.uint16)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "docs/screenshot_channels.png").resolve()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = Path(tempfile.mkdtemp(prefix="unetseg-shot-"))
    os.environ["UNETSEG_SETTINGS"] = str(tmp / "settings.ini")
    os.environ["UNETSEG_DATA_DIR"] = str(tmp / "data")
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from core.io.display import COLORS
    from gui.main_window import MainWindow
    from tests.channel_images import write_ome_tiff

    image = write_ome_tiff(tmp / "hela_like.ome.tif", cells(900, 1200, 60))
    app = QApplication.instance() or QApplication(["channels-shot"])
    window = MainWindow()
    window.resize(1400, 860)
    window.show()
    window.open_images([image])
    display = window.state.display
    display.set_color(0, COLORS["blue"])
    display.set_color(1, COLORS["green"])
    display.set_color(2, COLORS["magenta"])
    lo, hi = display.view.channels[1].limits
    display.set_limits(1, lo, hi * 0.8)  # the cytoplasm a little brighter
    window.resizeDocks([window.class_dock, window.channel_dock], [200, 560], Qt.Orientation.Vertical)
    canvas = window.canvas
    for _ in range(2000):  # until every tile in view is rendered with these colours
        canvas.viewport().repaint()
        app.processEvents()
        if not canvas._loader._pending and canvas.image_layer.waiting == 0:
            break
        time.sleep(0.005)
    out.parent.mkdir(parents=True, exist_ok=True)
    ok = window.grab().save(str(out))
    window.close()
    print(f"wrote {out}" if ok else f"could not write {out}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
