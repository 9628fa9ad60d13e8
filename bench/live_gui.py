"""Live Training in the app: ``python bench/live_gui.py [--seconds 60]`` (runs offscreen).

A generated scene (core.training.synthetic, never scikit-image's samples) of 1920x1080 is
opened at 100% in a window whose view shows about 1920x1080 of it; a few short strokes per
class (under 1% of the pixels) are painted with the Stroke tool, and Live Training is turned
on with its default settings (core.training.live.LiveConfig: every core but one for training).
Measured in one run:

  * brush move + repaint (radius 20, mask brush and Stroke tool), idle and while training:
    median, 95th percentile and worst (target: under 16 ms while training);
  * preview latency: from a published checkpoint (new weights) to its prediction of the
    view on screen, at 100% (1920x1080 of image pixels) and fitted (target: at most 2 s);
  * time from turning Live Training on to the first prediction in view, checkpoints made, and
    the mIoU of the newest view prediction against the scene's full ground truth;
  * with ``--slide-side N``: a generated N x N slide shown while training, its view predicted at
    three zooms in three places, and the process's peak RSS (target: under 1.5 GB).
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

from bench.gui_bench import brush_move_times  # noqa: E402


def simulated_strokes(truth: np.ndarray, per_class: int, length: int, seed: int = 0) -> list[tuple[int, list]]:
    """(class id, points) of short straight strokes well inside each class's regions."""
    from scipy.ndimage import distance_transform_edt

    rng = np.random.default_rng(seed)
    strokes = []
    for cid in np.unique(truth):
        inside = distance_transform_edt(truth == cid) > 8
        ys, xs = np.nonzero(inside)
        for _ in range(min(per_class, len(ys))):
            i = rng.integers(len(ys))
            angle = rng.uniform(0, np.pi)
            points = []
            for t in np.linspace(0, length, 8):
                x, y = xs[i] + t * np.cos(angle), ys[i] + t * np.sin(angle)
                yi, xi = int(round(y)), int(round(x))
                if not (0 <= yi < truth.shape[0] and 0 <= xi < truth.shape[1]) or not inside[yi, xi]:
                    break
                points.append((x + 0.5, y + 0.5))
            if len(points) >= 2:
                strokes.append((int(cid), points))
    return strokes


def paint(window, strokes, size: int) -> int:
    doc = window.current.strokes
    doc.set_brush_size(size)
    for cid, points in strokes:
        doc.set_active_class(cid)
        doc.begin_stroke("brush")
        for x, y in points:
            doc.stroke_to(x, y)
        doc.end_stroke()
    return doc.annotated_pixels


def pump(app, seconds: float, until=None) -> bool:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        if until is not None and until():
            return True
        time.sleep(0.005)
    return until() if until is not None else True


def stats(times: list[float]) -> str:
    ms = np.array(times) * 1000
    return f"{np.median(ms):6.1f} {np.percentile(ms, 95):6.1f} {ms.max():7.1f}"


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def slide_views(window, app, side: int, tmp: Path) -> list[str]:
    """Show a generated side x side slide while Live Training runs: the view's prediction at three
    zooms in several places (read at the level shown), and the process's peak RSS after."""
    import resource

    from tests.large_images import write_repeated_pyramid

    slide = write_repeated_pyramid(tmp / "slide.ome.tif", side)
    before = rss_mb()
    live, canvas = window.live, window.canvas
    window.open_images([slide])
    rows, latencies = [], []
    for scale in (None, 1 / 16, 1.0):
        for fx, fy in ((0.5, 0.5), (0.2, 0.7), (0.8, 0.3)):
            canvas.fit() if scale is None else canvas.set_scale(scale)
            canvas.center_on_image(side * fx, side * fy)
            live.preview_seconds.clear()
            got = pump(app, 60, lambda: bool(live.preview_seconds))
            prediction = window.state.live.prediction
            if got and prediction is not None and prediction.image == slide:
                latencies.append(live.preview_seconds[-1])
                rows.append(f"slide view at {'fit' if scale is None else f'{scale:g}x'}: "
                            f"{prediction.labels.shape[1]}x{prediction.labels.shape[0]} samples, 1 per "
                            f"{prediction.factor} px, {latencies[-1]:.2f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(f"{side}x{side} slide: {len(latencies)} of 9 views predicted, median "
                f"{statistics.median(latencies) if latencies else float('nan'):.2f} s; RSS {before:.0f} MB before "
                f"the slide opened, {rss_mb():.0f} MB after its views; peak RSS of the whole process "
                f"{peak:.0f} MB (target < 1.5 GB); tile cache {window.canvas.tile_cache.bytes / 2**20:.0f} MB")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--seconds", type=float, default=60, help="training time before the last figures")
    parser.add_argument("--moves", type=int, default=150)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--slide-side", type=int, default=0,
                        help="also show an N x N generated slide while training (e.g. 100000; 0 skips)")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = Path(tempfile.mkdtemp(prefix="unetseg-live-"))
    os.environ["UNETSEG_SETTINGS"] = str(tmp / "settings.ini")
    os.environ["UNETSEG_DATA_DIR"] = str(tmp / "data")

    from PIL import Image
    from PySide6.QtWidgets import QApplication

    from core.classes import complete_classes
    from core.metrics import IoUAccumulator
    from core.training.live import LiveConfig
    from core.training.synthetic import generate_scene
    from gui.infra.workers import wait_for_workers
    from gui import dialogs as gui_dialogs
    from gui.main_window import MainWindow
    from gui.state.app_state import Tool

    app = QApplication.instance() or QApplication(["live-bench"])
    rgb, truth = generate_scene(args.seed, args.height, args.width)
    path = tmp / "scene.png"
    Image.fromarray(rgb).save(path)
    window = MainWindow()
    for dock in (window.file_dock, window.overview_dock, window.class_dock):
        dock.hide()
    window.resize(args.width + 420, args.height + 160)
    window.show()
    app.processEvents()
    window.open_images([path])
    doc = window.document
    doc.set_classes(complete_classes(doc.classes, top=int(truth.max())))  # the scene's five classes
    window.live_dock.show()
    window.canvas.actual_size()
    window.canvas.center_on_image(args.width / 2, args.height / 2)
    pump(app, 0.3)
    view = window.canvas.visible_box()
    annotated = paint(window, simulated_strokes(truth, 4, 60), 7)
    live = window.live
    window.brush_spin.setValue(40)
    cx, cy = args.width * 0.4, args.height * 0.5

    def moves(tool: Tool) -> list[float]:
        window.state.tool = tool
        times, _ = brush_move_times(window, app, args.moves, (cx, cy), 400)
        doc.undo() if tool == Tool.BRUSH else window.current.strokes.undo()
        return times

    idle = {t: moves(t) for t in (Tool.BRUSH, Tool.STROKE)}
    config = LiveConfig()
    t_on = time.perf_counter()
    window.commands.live_training.trigger()
    if not window.state.live.on:
        print("Live Training did not start:", window.state.live.status)
        return 1
    shown: list = []
    live.preview_shown.connect(lambda p: shown.append((time.perf_counter(), p)))
    pump(app, 120, lambda: bool(shown))
    first = shown[0][0] - t_on if shown else float("nan")
    busy = {t: moves(t) for t in (Tool.BRUSH, Tool.STROKE)}
    pump(app, max(0.0, args.seconds - (time.perf_counter() - t_on)))
    at_100 = list(live.preview_seconds)
    window.canvas.fit()
    live.preview_seconds.clear()
    pump(app, 4 * config.snapshot_every + 4)
    fitted = list(live.preview_seconds)
    window.canvas.actual_size()
    window.canvas.center_on_image(args.width / 2, args.height / 2)
    live.preview_seconds.clear()
    pump(app, 60, lambda: bool(live.preview_seconds))
    prediction = window.state.live.prediction
    history = len(window.state.live.history)
    trained = time.perf_counter() - t_on
    slide_rows = slide_views(window, app, args.slide_side, tmp) if args.slide_side else []
    window.commands.live_training.trigger()
    wait_for_workers(30, cancel=True)

    miou = float("nan")
    if prediction is not None and prediction.factor == 1:
        acc = IoUAccumulator(256)
        acc.update(prediction.labels, truth[prediction.box.slices])
        miou = acc.mean_iou(np.unique(truth).tolist())

    h, w = truth.shape
    print(f"Live Training in the app: {w}x{h} scene, view {view.width}x{view.height} at 100%, "
          f"{QApplication.platformName()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"strokes: {annotated} annotated pixels ({100 * annotated / truth.size:.2f}% of the image); "
          f"LiveConfig: {config.arch}, patch {config.patch}, batch {config.batch}, {config.threads} training "
          f"thread(s), a checkpoint every {config.snapshot_every:.0f} s")
    print(f"{'brush move + repaint (ms)':40} {'median':>6} {'p95':>6} {'worst':>7}")
    for tool in (Tool.BRUSH, Tool.STROKE):
        name = "mask brush" if tool == Tool.BRUSH else "Stroke tool"
        print(f"{name + ', idle':40} {stats(idle[tool])}")
        print(f"{name + ', while training':40} {stats(busy[tool])}")
    for name, values in (("100% (1920x1080 image px)", at_100), ("fit to window", fitted)):
        if values:
            print(f"preview latency, {name:28} median {statistics.median(values):.2f} s, worst {max(values):.2f} s "
                  f"({len(values)} refreshes)")
        else:
            print(f"preview latency, {name:28} no refresh")
    print(f"first prediction in view {first:.1f} s after turning it on; {history} checkpoints in {trained:.0f} s; "
          f"dropped preview requests: {live.preview.dropped}")
    print(f"mIoU of the newest 100% view prediction against the full ground truth: {miou:.3f}")
    for row in slide_rows:
        print(row)
    worst_busy = max(statistics.median(v) for v in busy.values())
    for entry in window.store:
        for doc in (entry.doc, entry.strokes):
            if doc is not None:
                doc.mark_saved()
    gui_dialogs.ask_save_model = lambda *args: "discard"  # the model is not kept: no question at close
    window.close()
    ok = worst_busy < 0.016 and bool(at_100) and statistics.median(at_100) <= 2.0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
