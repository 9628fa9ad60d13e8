"""Whole-slide viewing and editing in the app, measured in a fresh process (so peak RSS is the
slide's alone): ``python bench/slide_view.py --side 100000 [--no-segment] [--channels 4]`` prints JSON.

Run by ``bench/gui_bench.py --slide-side N [--slide-channels C]``, which prints the table against
the targets of the whole-slide issue.  The slide is generated: a pyramidal tiled OME-TIFF of
repeated, pre-compressed RGB tiles (tests.large_images.write_repeated_pyramid), or with
``--channels C`` a C-channel 16-bit OME-Zarr of repeated fluorescence-like chunks
(tests.channel_images.write_repeated_ome_zarr), drawn through the channel display; then a channel's
colour and contrast are changed and the time until every tile in view is redrawn is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def settle(window, app, timeout: float = 60.0) -> None:
    """Until the tiles the view asked for are decoded and drawn."""
    canvas = window.canvas
    deadline = time.monotonic() + timeout
    canvas.viewport().repaint()
    while time.monotonic() < deadline:
        app.processEvents()
        loader = canvas._loader
        if loader is None or not loader._pending:
            break
        time.sleep(0.005)
    app.processEvents()
    canvas.viewport().repaint()


def frame_times(window, app, steps: int) -> list[float]:
    """Pan by 40 screen px back and forth over cached tiles: one scroll + repaint a frame."""
    bar = window.canvas.horizontalScrollBar()
    times = []
    for i in range(steps):
        t0 = time.perf_counter()
        bar.setValue(bar.value() + (40 if (i // 10) % 2 == 0 else -40))
        window.canvas.viewport().repaint()
        app.processEvents()
        times.append(time.perf_counter() - t0)
    return times


def display_change(window, app) -> float:
    """Seconds from a channel's new colour and contrast to every tile in view redrawn with them
    (the old rendering stays on screen meanwhile: each frame only blits)."""
    display, canvas = window.state.display, window.canvas
    loader = canvas._loader
    lo, hi = display.view.channels[0].limits
    t0 = time.perf_counter()
    display.set_color(0, (255, 128, 0))
    display.set_limits(0, lo, hi * 2)
    while True:
        canvas.viewport().repaint()  # a paint asks for the stale tiles in view
        app.processEvents()
        if not loader._pending and canvas.image_layer.waiting == 0:
            break
        time.sleep(0.002)
    return time.perf_counter() - t0


def brush_times(window, app, x0: float, y0: float, n: int) -> list[float]:
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QMouseEvent

    canvas = window.canvas
    vp = canvas.viewport()

    def event(kind, x, y, buttons):
        pos = QPointF(canvas.mapFromScene(x, y))
        return QMouseEvent(kind, pos, vp.mapToGlobal(pos), Qt.MouseButton.LeftButton, buttons,
                           Qt.KeyboardModifier.NoModifier)

    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    app.sendEvent(vp, event(QMouseEvent.Type.MouseButtonPress, x0, y0, left))
    times = []
    for i in range(n):
        x, y = x0 + 3 * i, y0 + (i % 20)
        t0 = time.perf_counter()
        app.sendEvent(vp, event(QMouseEvent.Type.MouseMove, x, y, left))
        app.processEvents()  # as in gui_bench's brush moves: the dirty box is repainted
        times.append(time.perf_counter() - t0)
    app.sendEvent(vp, event(QMouseEvent.Type.MouseButtonRelease, x, y, none))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=100_000)
    parser.add_argument("--slide", type=Path, default=None, help="an existing slide (default: generate one)")
    parser.add_argument("--no-segment", action="store_true", help="skip Segment View (minutes on a CPU)")
    parser.add_argument("--channels", type=int, default=0,
                        help="a 16-bit OME-Zarr with this many channels instead of an RGB TIFF (0)")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = Path(tempfile.mkdtemp(prefix="unetseg-slide-"))
    os.environ["UNETSEG_SETTINGS"] = str(tmp / "settings.ini")
    os.environ["UNETSEG_DATA_DIR"] = str(tmp / "data")
    slide = args.slide
    if slide is None and args.channels:
        from tests.channel_images import write_repeated_ome_zarr

        slide = write_repeated_ome_zarr(tmp / "slide.ome.zarr", args.side, channels=args.channels)
    elif slide is None:
        from tests.large_images import write_repeated_pyramid

        slide = write_repeated_pyramid(tmp / "slide.ome.tif", args.side)
    side = args.side

    from PySide6.QtWidgets import QApplication

    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(["slide-bench"])
    window = MainWindow()
    window.resize(1920 + 520, 1080 + 140)  # docks and bars around a viewport of about 1920x1080
    window.show()
    app.processEvents()
    t0 = time.perf_counter()
    window.open_images([slide])
    settle(window, app)
    first_view = time.perf_counter() - t0
    canvas = window.canvas
    viewport = canvas.viewport().size()

    canvas.set_scale(1 / 16)
    canvas.center_on_image(side / 2, side / 2)
    settle(window, app)
    frame_times(window, app, 20)  # warm: the tiles around get cached
    frames = frame_times(window, app, 100)
    restyle = display_change(window, app) if args.channels else None

    # pan across the whole image at three zoom levels, then paint 100 strokes
    for scale in (1 / 64, 1 / 8, 1.0):
        canvas.set_scale(scale)
        stops = 12
        for i in range(stops):
            canvas.center_on_image(side * (i + 0.5) / stops, side * ((i * 7) % stops + 0.5) / stops)
            settle(window, app)
    canvas.set_scale(1.0)
    canvas.center_on_image(side * 0.61, side * 0.37)
    settle(window, app)
    window.state.brush_size = 40
    moves = brush_times(window, app, side * 0.61 - 200, side * 0.37 - 60, 150)
    for s in range(100):
        x, y = side * ((s * 37) % 100 + 0.5) / 100, side * ((s * 53) % 100 + 0.5) / 100
        canvas.center_on_image(x, y)
        settle(window, app)
        brush_times(window, app, x - 50, y, 10)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB -> MB on Linux

    segment_view = None
    if not args.no_segment:
        from core.segment.inference import Segmenter

        window.models.set_segmenter(Segmenter.load("small", device="cpu"))
        canvas.set_scale(1.0)
        canvas.center_on_image(side * 0.25, side * 0.75)
        settle(window, app)
        box = canvas.visible_box()
        t0 = time.perf_counter()
        window.commands.segment_view.trigger()
        while window.segmentation.running:
            app.processEvents()
            time.sleep(0.01)
        segment_view = {"seconds": time.perf_counter() - t0, "pixels": box.area,
                        "tta": bool(window.models.segmenter.tta),
                        "refine": window.models.segmenter.refine is not None}
    result = {
        "side": side, "viewport": [viewport.width(), viewport.height()], "first_view_s": first_view,
        "frame_median_s": statistics.median(frames), "brush_median_s": statistics.median(moves),
        "peak_rss_mb": peak_rss, "tile_cache_mb": canvas.tile_cache.bytes / 2**20,
        "tiles_decoded": canvas._loader.decoded if canvas._loader else 0,
        "mask_cache_mb": window.document.labels.cached_bytes / 2**20,
        "history_mb": window.document.history.nbytes / 2**20,
        "segment_view": segment_view, "channels": args.channels, "display_change_s": restyle,
    }
    window.document.mark_saved()
    window.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
