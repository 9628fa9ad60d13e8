"""Autosave after Segment Stack: ``python bench/stack_autosave.py [--planes 24 --side 2048]`` (offscreen).

Segment Stack leaves every plane of a stack with unsaved edits at once.  Measured in one run, on
the same dirty planes (a generated ZCYX stack, each plane given a mask as Segment Stack would):

  * ``all at once``: one pass copying every plane (``Autosave.flush()``, what the app did when a
    run ended), the time the window's thread is blocked;
  * ``a few at a time``: the automatic passes (``Autosave.step()``: about ``STEP_BYTES`` of labels
    each, the window's events run between them), the longest single pass and the number of passes;
  * the ratio of the two blocks (all at once / longest pass): what the window gains.

Wall times on a shared machine carry its load; the ratio is measured in one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def dirty_every_plane(window, planes: int, side: int, seed: int) -> None:
    stack = window.current.stack
    rng = np.random.default_rng(seed)
    for z in range(planes):
        labels = np.zeros((side, side), np.uint8)
        y, x = rng.integers(0, side // 2, 2)
        labels[y:y + side // 3, x:x + side // 3] = 1 + z % 2
        stack.documents((z,)).mask.apply_labels(labels, "segment stack")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--planes", type=int, default=24)
    parser.add_argument("--side", type=int, default=2048)
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory(prefix="unetseg-autosave-bench-") as name:
        tmp = Path(name)
        os.environ["UNETSEG_SETTINGS"] = str(tmp / "settings.ini")
        os.environ["UNETSEG_DATA_DIR"] = str(tmp / "data")
        from bench.stack_gui import write_stack

        path = tmp / "stack.ome.tif"
        write_stack(path, args.planes, args.side)
        return run(args, path)


def run(args, path: Path) -> int:
    from PySide6.QtWidgets import QApplication

    import gui.controllers.autosave as autosave_module
    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(["autosave-bench"])
    window = MainWindow()
    window.autosave.delay_ms = 3_600_000  # only the passes measured here write
    window.open_images([path])
    window.current.stack.keep = args.planes  # every plane's documents stay, as after Segment Stack

    dirty_every_plane(window, args.planes, args.side, 0)
    t0 = time.perf_counter()
    copied = window.autosave.flush()
    at_once = time.perf_counter() - t0

    dirty_every_plane(window, args.planes, args.side, 1)  # new edits: every plane is copied again
    passes, total = [], 0
    while total < args.planes:
        t0 = time.perf_counter()
        n = window.autosave.step()
        passes.append(time.perf_counter() - t0)  # the window's events would run here (not in this loop, so
        total += n  # the app's own follow-up pass does not run between the measured ones)
        if n == 0:
            break
    longest = max(passes)
    mb = args.side * args.side / 2**20
    print(f"{args.planes} planes of {args.side}² ({mb:.0f} MB of labels each); STEP_BYTES "
          f"{autosave_module.STEP_BYTES / 2**20:.0f} MB; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"all at once: {copied} copies in one pass, the window blocked {at_once * 1000:.0f} ms")
    print(f"a few at a time: {total} copies in {len(passes)} passes, the longest {longest * 1000:.0f} ms, "
          f"median {sorted(passes)[len(passes) // 2] * 1000:.0f} ms")
    print(f"ratio (all at once / longest pass): {at_once / longest:.1f}")
    window.current.stack.close()
    window.autosave.close_session()
    for entry in list(window.store):
        window.store.remove(entry)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
