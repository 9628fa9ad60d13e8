"""A 2 GB Z-stack in the app: ``python bench/stack_gui.py [--planes 32 --side 4096 --seconds 60]`` (offscreen).

A generated ZCYX OME-TIFF (2 channels, 16-bit, ``--planes`` planes of ``--side``², uncompressed
strips as a microscope writes them: 32 x 4096² is 2.1 GB; written here, then deleted) is opened in
a 1400x880 window fitted to the view.  Measured in one run:

  * open: from File > Open to the first plane drawn (every tile in view), and the RSS after;
  * the next plane (Page Down) once the read-ahead has it (``cached``) and a plane 8 away, which
    the app has not read (``cold``: the OS file cache is warm, the file having just been written,
    so a first read from a slow disk adds its own time): the time until the plane is drawn
    (``shown``: the view has the new plane, coarse where its full-resolution tiles are still
    rendering) and until every tile in view is rendered (``complete``), median and worst;
  * brush move + repaint on the plane in view (the timings of bench/live_gui.py), idle and while
    Segment Stack runs with the built-in small model, how many planes Segment Stack finished
    (each one taken by the app) during the measurement, and the GUI thread's CPU per move;
  * the GUI thread's CPU time beside each wall time: on a loaded machine the wall times carry
    the load, the CPU times what the app itself spent;
  * RSS after browsing and the process's peak RSS.

Targets (issue 27): open < 2 s, next plane < 100 ms cached and < 300 ms cold, RSS < 1.5 GB, brush
< 16 ms on another plane while the stack is segmented.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gui_bench import brush_move_times  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def write_stack(path: Path, planes: int, side: int) -> float:
    """ZCYX uint16, written plane by plane (never whole in memory); returns GB written."""
    import tifffile

    rng = np.random.default_rng(0)
    base = rng.integers(0, 3000, (2, 512, 512), dtype=np.uint16)
    reps = -(-side // 512)

    def pages():
        for z in range(planes):
            for c in range(2):
                tile = np.roll(base[c], (37 * z, 53 * z), axis=(0, 1)) + np.uint16(20 * z)
                yield np.tile(tile, (reps, reps))[:side, :side]

    tifffile.imwrite(path, pages(), shape=(planes, 2, side, side), dtype=np.uint16, photometric="minisblack",
                     metadata={"axes": "ZCYX", "Channel": {"Name": ["DAPI", "GFP"]}}, ome=True, bigtiff=True)
    return path.stat().st_size / 1e9


def pump(app, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.002)


def drawn(app, window, limit_s: float = 30.0) -> float:
    """Repaint until every tile in view is rendered at the level shown; the seconds it took."""
    canvas, t0 = window.canvas, time.perf_counter()
    while time.perf_counter() - t0 < limit_s:
        canvas.viewport().repaint()
        app.processEvents()
        loader = canvas._loader
        if loader is None or (not loader._pending and canvas.image_layer.waiting == 0):
            break
        time.sleep(0.001)
    return time.perf_counter() - t0


SHOWN: list[tuple] = []  # planes the view has drawn (PlaneUi.plane_shown), in order


def go_and_wait(app, window, plane, limit_s: float = 60.0) -> None:
    """Move to ``plane`` and wait until the view draws it (a cold plane is read off the window's thread)."""
    n, t0 = len(SHOWN), time.perf_counter()
    window.plane_ui.go(plane)
    while not (len(SHOWN) > n and SHOWN[-1] == tuple(plane)) and time.perf_counter() - t0 < limit_s:
        app.processEvents()
        time.sleep(0.001)


def show_plane(app, window, plane) -> tuple[float, float, float]:
    """(seconds until the plane is drawn, until every tile in view is rendered, and the GUI thread's
    CPU seconds until drawn: what the wall time would be on an idle machine, less waits for disk)."""
    t0, c0 = time.perf_counter(), time.thread_time()
    go_and_wait(app, window, plane)
    window.canvas.viewport().repaint()
    app.processEvents()
    shown, cpu = time.perf_counter() - t0, time.thread_time() - c0
    return shown, shown + drawn(app, window), cpu


def summary(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    return f"median {statistics.median(ms):.1f} ms, worst {ms[-1]:.1f} ms (n={len(ms)})"


CPU_PER_MOVE: dict[str, list[float]] = {"idle": [], "busy": []}


def brush(app, window, n: int = 60, when: str = "idle") -> list[float]:
    """Wall seconds of each brush move (bench/gui_bench.py); the GUI thread's CPU per move goes to
    CPU_PER_MOVE[when] (what a move costs the app itself, whatever else the machine runs)."""
    h, w = window.document.shape
    c0 = time.thread_time()
    times, _ = brush_move_times(window, app, n, (w / 2, h / 2), min(w, h) / 3)
    CPU_PER_MOVE[when].append((time.thread_time() - c0) / n)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--planes", type=int, default=32)
    parser.add_argument("--side", type=int, default=4096)
    parser.add_argument("--seconds", type=float, default=60.0, help="brush measurement while Segment Stack runs")
    parser.add_argument("--steps", type=int, default=8, help="plane steps measured, cached and cold each")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory(prefix="unetseg-stack-bench-") as name:
        tmp = Path(name)
        os.environ["UNETSEG_SETTINGS"] = str(tmp / "settings.ini")
        os.environ["UNETSEG_DATA_DIR"] = str(tmp / "data")
        t0 = time.perf_counter()
        path = tmp / "stack.ome.tif"
        gb = write_stack(path, args.planes, args.side)
        print(f"stack: {args.planes} x 2 x {args.side}² uint16, {gb:.2f} GB, written in {time.perf_counter() - t0:.1f} s")
        return run(args, path)


def run(args, path: Path) -> int:
    from PySide6.QtWidgets import QApplication

    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(["stack-bench"])
    window = MainWindow()
    window.plane_ui.plane_shown.connect(SHOWN.append)
    window.resize(1400, 880)
    window.show()
    pump(app, 0.5)
    before = rss_mb()
    t0, c0 = time.perf_counter(), time.thread_time()
    window.open_images([path])
    while not SHOWN and time.perf_counter() - t0 < 60:  # its first plane may be read off the window's thread
        app.processEvents()
        time.sleep(0.001)
    opened, cpu = time.perf_counter() - t0, time.thread_time() - c0
    complete = opened + drawn(app, window)
    print(f"open: drawn after {opened:.2f} s (GUI thread CPU {cpu:.2f} s), every tile in view after {complete:.2f} s; "
          f"RSS {before:.0f} MB before, {rss_mb():.0f} MB after")

    entry = window.current
    cache = entry.plane_pixels
    cached, cold = [], []
    z = 0
    for _ in range(args.steps):
        z_next = z + 1
        t_wait = time.perf_counter()
        while (z_next,) not in cache and time.perf_counter() - t_wait < 30:  # the read-ahead at work
            pump(app, 0.01)
        cached.append(show_plane(app, window, (z_next,)))
        z = z_next
        far = (z + 8) % args.planes
        if (far,) in cache:
            far = (far + 3) % args.planes
        cold.append(show_plane(app, window, (far,)))
        z = far if far < args.planes - 1 else 0
        go_and_wait(app, window, (z,))
    for name, runs in (("next plane, cached", cached), ("plane 8 away, cold", cold)):
        print(f"{name}: shown {summary([r[0] for r in runs])}; complete {summary([r[1] for r in runs])}; "
              f"GUI thread CPU until shown {summary([r[2] for r in runs])}")
    print(f"RSS after browsing {rss_mb():.0f} MB; planes read {cache.reads}")

    idle = brush(app, window)
    window.load_model("small")
    t_wait = time.perf_counter()
    while window.models.segmenter is None and time.perf_counter() - t_wait < 120:
        pump(app, 0.05)
    if window.models.segmenter is None:
        print("the built-in small model did not load; no brush-while-segmenting figure")
        return 1
    go_and_wait(app, window, (args.planes - 1,))  # the brush on the last plane; Segment Stack starts at the first
    drawn(app, window)
    finished = []
    window.stack_seg.job.plane_done.connect(lambda plane, *_: finished.append(plane))
    window.commands.segment_stack.trigger()
    busy, t_end = [], time.perf_counter() + args.seconds
    while time.perf_counter() < t_end:
        busy += brush(app, window, 30, "busy")
        window.commands.undo.trigger()  # keep the plane as it was: each stroke is one undo step
        pump(app, 0.05)
    during_rss = rss_mb()
    window.commands.cancel.trigger()
    t_wait = time.perf_counter()
    while window.state.job is not None and time.perf_counter() - t_wait < 120:
        pump(app, 0.05)
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"brush, idle: {summary(idle)}, p95 {np.percentile(idle, 95) * 1000:.1f} ms; GUI thread CPU per move "
          f"{statistics.mean(CPU_PER_MOVE['idle']) * 1000:.2f} ms, while segmenting "
          f"{statistics.mean(CPU_PER_MOVE['busy']) * 1000:.2f} ms")
    print(f"brush while Segment Stack runs: {summary(busy)}, p95 {np.percentile(busy, 95) * 1000:.1f} ms; "
          f"{len(finished)} plane(s) finished and taken by the app meanwhile; ratio of medians "
          f"{statistics.median(busy) / statistics.median(idle):.1f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"RSS while segmenting {during_rss:.0f} MB; peak RSS of the process {peak:.0f} MB")
    for docs in entry.stack.loaded().values():  # nothing to ask about on close
        docs.mask.mark_saved()
        docs.strokes.mark_saved()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
