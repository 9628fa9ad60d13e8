"""Strokes on a whole slide, trained live in the app: ``python bench/slide_live.py [--seconds 60]``.

A generated 100,000 x 100,000 pyramidal OME-TIFF (tests.large_images.write_flat_slide: repeated
zstd tiles, 5 MB) is opened offscreen in a window whose view shows about 1900 x 1000 of it.  Strokes
of two classes are painted far apart at full resolution, Live Training is turned on with its
default settings at the default level (core.training.slide_strokes.default_level for the brush),
and, in one run:

  * the Stroke tool on the slide at 100% (move + repaint), idle and while training, beside the
    same tool on a 1920x1080 image in memory (median, 95th percentile, worst; target: 16 ms);
  * the preview latency (new weights to the view's prediction on screen) on the slide at 100%,
    and on the image in memory with the same training running ("as today": 0.72 s median in
    bench/RESULTS.md, "Quiet reruns after the merge of issues 20-22");
  * the process's RSS while training: the highest sampled VmRSS and the peak (target: 1.5 GB);
  * what training read: the items and slide pixels at the level, and the reads of the slide's
    tiles by the training worker against the level's size.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gui_bench import brush_move_times  # noqa: E402
from bench.live_gui import stats  # noqa: E402

SIDE = 100_000
PLACES = [(0.03, 0.02), (0.12, 0.85), (0.4, 0.4), (0.55, 0.1), (0.7, 0.66), (0.95, 0.94)]  # (x, y) of the slide


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


class Pump:
    """Run the event loop, sampling the RSS as it goes."""

    def __init__(self, app):
        self.app, self.highest = app, 0.0

    def __call__(self, seconds: float, until=None) -> bool:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            self.app.processEvents()
            self.highest = max(self.highest, rss_mb())
            if until is not None and until():
                return True
            time.sleep(0.01)
        return until() if until is not None else True


def paint_slide_strokes(strokes, size: int, length: int) -> None:
    """Two strokes per place, one of each class, 40 px apart, each ``length`` px long."""
    strokes.set_brush_size(size)
    for i, (fx, fy) in enumerate(PLACES):
        for cid, dy in ((1, 0), (0, 40)):
            strokes.set_active_class(cid)
            strokes.begin_stroke("brush")
            x0, y0 = fx * (SIDE - 2 * length), fy * (SIDE - 200) + dy
            for t in np.linspace(0, length, 12):
                strokes.stroke_to(x0 + t, y0 + 15 * np.sin(t / 40 + i))
            strokes.end_stroke()


def main(argv: list[str] | None = None) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="unetseg-slide-live-"))
    try:
        return run(tmp, argv)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp: Path, argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60, help="training time while the previews are timed")
    parser.add_argument("--moves", type=int, default=150)
    parser.add_argument("--brush", type=int, default=16, help="brush width of the strokes (full-resolution px)")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["UNETSEG_SETTINGS"] = str(tmp / "settings.ini")
    os.environ["UNETSEG_DATA_DIR"] = str(tmp / "data")

    from PIL import Image
    from PySide6.QtCore import QThread
    from PySide6.QtWidgets import QApplication

    from core.training.live import LiveConfig
    from core.training.synthetic import generate_scene
    from gui import dialogs as gui_dialogs
    from gui.infra.workers import wait_for_workers
    from gui.main_window import MainWindow
    from gui.state.app_state import Tool
    from tests.large_images import write_flat_slide

    app = QApplication.instance() or QApplication(["slide-live-bench"])
    pump = Pump(app)
    t0 = time.perf_counter()
    slide = write_flat_slide(tmp / "slide.ome.tif", SIDE)
    written = time.perf_counter() - t0
    rgb, _truth = generate_scene(3, 1080, 1920)
    scene = tmp / "scene.png"
    Image.fromarray(rgb).save(scene)
    window = MainWindow()
    for dock in (window.file_dock, window.overview_dock, window.class_dock):
        dock.hide()
    window.resize(1920 + 420, 1080 + 160)
    window.show()
    app.processEvents()
    start_rss = rss_mb()
    window.open_images([scene, slide])
    canvas, live, state = window.canvas, window.live, window.state
    window.live_dock.show()

    def at(entry_path, x, y) -> None:
        window.show_entry(window.store.get(entry_path))
        canvas.set_scale(1.0)
        canvas.center_on_image(x, y)
        pump(0.5)

    def stroke_moves(entry_path, x, y) -> list[float]:
        at(entry_path, x, y)
        state.tool = Tool.STROKE
        window.select_class(1)
        times, _ = brush_move_times(window, app, args.moves, (x, y), 400)
        window.current.strokes.undo()  # the measuring stroke goes
        return times

    # strokes: two classes in six places far apart (full resolution), and a few on the scene's top left
    window.show_entry(window.store.get(slide))
    strokes = window.current.strokes
    paint_slide_strokes(strokes, args.brush, 300)
    annotated = strokes.annotated_pixels
    state.brush_size = args.brush
    level = live.level_of(window.current)
    w_level, h_level = window.current.source.levels[level]
    cx, cy = PLACES[2][0] * (SIDE - 600) + 150, PLACES[2][1] * (SIDE - 200) + 20
    idle = {"slide": stroke_moves(slide, cx, cy), "scene": stroke_moves(scene, 960, 540)}

    source = window.store.get(slide).source
    reads, real = [], source.read

    def spy(y0, y1, x0, x1, level=0, plane=()):
        if QThread.currentThread().objectName() == "slide-items":
            reads.append((level, (y1 - y0) * (x1 - x0)))
        return real(y0, y1, x0, x1, level, plane)

    source.read = spy
    at(slide, cx, cy)
    config = LiveConfig()
    t_on = time.perf_counter()
    window.commands.live_training.trigger()
    shown: list = []
    live.preview_shown.connect(lambda p: shown.append((time.perf_counter(), p)))
    if not pump(120, lambda: bool(shown)):
        print("no prediction reached the view:", state.live.status, state.live.warning)
        return 1
    first = shown[0][0] - t_on
    busy = {"slide": stroke_moves(slide, cx, cy), "scene": stroke_moves(scene, 960, 540)}
    at(slide, cx, cy)
    live.preview_seconds.clear()
    pump(args.seconds / 2)
    on_slide, slide_rss, tiles = list(live.preview_seconds), pump.highest, canvas.tile_cache.bytes
    at(scene, 960, 540)
    live.preview_seconds.clear()
    pump(args.seconds / 2)
    on_scene = list(live.preview_seconds)
    trained = time.perf_counter() - t_on
    history = len(state.live.history)
    found = live.slides.items.get(next(iter(live.slides.items)), None) if live.slides.items else None
    window.commands.live_training.trigger()
    wait_for_workers(30, cancel=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"Strokes on a whole slide, trained live: {SIDE:,}^2 slide written in {written:.1f} s, "
          f"{QApplication.platformName()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"strokes: {annotated:,} annotated pixels in {len(PLACES)} places (brush {args.brush}); trained at "
          f"level {level} ({w_level:,} x {h_level:,}); LiveConfig: {config.arch}, patch {config.patch}, "
          f"batch {config.batch}, {config.threads} training thread(s)")
    if found is not None:
        read = sum(n for _, n in reads)
        print(f"training items: {len(found.items)}, {sum(px.shape[0] * px.shape[1] for px, _ in found.items) / 1e6:.2f} "
              f"Mpx at level {found.level}; the training worker read {len(reads)} regions, {read / 1e6:.2f} Mpx "
              f"({100 * read / (w_level * h_level):.4f}% of the level), all at level(s) {sorted({lv for lv, _ in reads})}")
    print(f"{'Stroke tool move + repaint (ms)':44} {'median':>6} {'p95':>6} {'worst':>7}")
    for where in ("slide", "scene"):
        name = "100k slide at 100%" if where == "slide" else "1920x1080 image in memory"
        print(f"{name + ', idle':44} {stats(idle[where])}")
        print(f"{name + ', while training':44} {stats(busy[where])}")
    ratio = statistics.median(busy["slide"]) / statistics.median(busy["scene"])
    print(f"ratio slide / in memory while training, median: {ratio:.2f}")
    for name, values in (("slide at 100%", on_slide), ("image in memory at 100%", on_scene)):
        if values:
            print(f"preview latency, {name:26} median {statistics.median(values):.2f} s, worst {max(values):.2f} s "
                  f"({len(values)} refreshes)")
        else:
            print(f"preview latency, {name:26} no refresh")
    if on_slide and on_scene:
        print(f"ratio slide / in memory, median: {statistics.median(on_slide) / statistics.median(on_scene):.2f}")
    print(f"first prediction in view {first:.1f} s after turning it on; {history} checkpoints in {trained:.0f} s")
    print(f"RSS: {start_rss:.0f} MB with the window up; highest sampled while training, until the slide's "
          f"previews were timed {slide_rss:.0f} MB (tile cache {tiles / 2**20:.0f} MB), then with the image in "
          f"memory shown {pump.highest:.0f} MB; peak of the process {peak:.0f} MB (target < 1500 MB)")
    for entry in window.store:
        for doc in (entry.doc, entry.strokes):
            if doc is not None:
                doc.mark_saved()
    gui_dialogs.ask_save_model = lambda *args: "discard"  # the model is not kept: no question at close
    window.close()
    ok = statistics.median(busy["slide"]) < 0.016 and slide_rss < 1500 and bool(on_slide)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
