"""A multi-channel 16-bit image held in memory, in the app: ``python bench/channels_view.py [--side 8192]``.

Opens a generated side x side OME-TIFF with 4 uint16 channels (repeated fluorescence-like tiles,
tests.channel_images.blobs) and, in the same process, an 8-bit RGB PNG-like image of the same
side, offscreen in a window whose view is about 1868x1138, and prints per image: the time to open
and show it, the median pan frame (scroll 40 px + repaint) at 1:1 and fitted, and for the
channels the median time of a contrast change repainted over the whole view.  Unlike a slide's
tiles, an in-memory image composites the exposed part at paint time (gui.canvas.layers).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.slide_view import frame_times  # noqa: E402


def change_median(window, steps: int = 10) -> float:
    display, viewport = window.state.display, window.canvas.viewport()
    lo, hi = display.view.channels[0].limits
    times = []
    for i in range(steps):
        t0 = time.perf_counter()
        display.set_limits(0, lo, hi * (1 + 0.05 * (i + 1)))
        viewport.repaint()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(window, app, path: Path) -> dict:
    t0 = time.perf_counter()
    window.open_images([path])
    window.canvas.viewport().repaint()
    app.processEvents()
    result = {"open_s": time.perf_counter() - t0}
    window.canvas.pyramids.wait()  # an RGB image's zoomed-out levels, built in the background
    app.processEvents()
    channels = not window.state.display.view.photo
    for name, scale in (("1:1", 1.0), ("fit", None)):
        if scale:
            window.canvas.set_scale(scale)
        else:
            window.canvas.fit()
        result[f"pan_{name}_ms"] = statistics.median(frame_times(window, app, 40)) * 1000
        if channels:
            result[f"change_{name}_ms"] = change_median(window) * 1000
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=8192)
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = Path(tempfile.mkdtemp(prefix="unetseg-channels-"))
    os.environ["UNETSEG_SETTINGS"] = str(tmp / "settings.ini")
    os.environ["UNETSEG_DATA_DIR"] = str(tmp / "data")
    from PIL import Image
    from PySide6.QtWidgets import QApplication

    from gui.main_window import MainWindow
    from tests.channel_images import blobs, write_ome_tiff

    reps = -(-args.side // 1024)
    tile = blobs(1024, 1024, 4, seed=1)
    pixels = np.tile(tile, (reps, reps, 1))[:args.side, :args.side]
    fluo = write_ome_tiff(tmp / "channels.ome.tif", pixels, names=["A", "B", "C", "D"])
    rgb = tmp / "photo.png"
    Image.fromarray((pixels[..., :3] >> 4).astype(np.uint8)).save(rgb, compress_level=1)
    app = QApplication.instance() or QApplication(["channels-bench"])
    window = MainWindow()
    window.resize(1920 + 520, 1080 + 140)
    window.show()
    app.processEvents()
    print(f"{args.side}x{args.side}, view {window.canvas.viewport().width()}x{window.canvas.viewport().height()}")
    for label, path in (("4 x uint16 channels", fluo), ("8-bit RGB", rgb)):
        r = measure(window, app, path)
        print(f"{label:20} " + "  ".join(f"{k} {v:.2f}" for k, v in r.items()))
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
