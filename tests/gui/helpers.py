"""Shared helpers for GUI tests: image files, pointer input in image coordinates, fakes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt

from core.classes import ClassInfo

MODEL_CLASSES = [ClassInfo(0, "background", (0, 0, 0)), ClassInfo(1, "cell", (255, 0, 0)),
                 ClassInfo(2, "nucleus", (0, 255, 0)), ClassInfo(3, "debris", (0, 0, 255))]


def write_image(path: Path, h: int = 60, w: int = 80, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def label_images(window, folder: Path, count: int) -> None:
    """Give each of the first ``count`` images of ``folder`` an all-ones mask (unsaved edits)."""
    for i in range(count):
        window.show_entry(window.store.get(folder / f"img{i}.png"))
        window.document.apply_labels(np.ones(window.document.shape, np.uint8))


def view_pos(window, x: float, y: float) -> QPoint:
    """Viewport position of image point (x, y)."""
    return window.canvas.mapFromScene(QPointF(x, y))


def click(qtbot, window, x: float, y: float, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    vp = window.canvas.viewport()
    qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, modifier, view_pos(window, x, y))


def drag(qtbot, window, points, button=Qt.MouseButton.LeftButton) -> None:
    """Press at the first point, move through the others, release at the last."""
    vp = window.canvas.viewport()
    qtbot.mousePress(vp, button, Qt.KeyboardModifier.NoModifier, view_pos(window, *points[0]))
    for p in points[1:]:
        qtbot.mouseMove(vp, view_pos(window, *p))
    qtbot.mouseRelease(vp, button, Qt.KeyboardModifier.NoModifier, view_pos(window, *points[-1]))


class FakeSegmenter:
    """Labels by a fixed rule, tile by tile, optionally slow or failing: drives the worker."""

    def __init__(self, classes=MODEL_CLASSES, tile: int = 16, delay: float = 0.0,
                 fail_after: int | None = None, value: int = 2):
        self.classes = list(classes)
        self.device = "cpu"
        self.arch, self.tta, self.refine, self.checkpoint = "small", False, None, None
        self.tile, self.delay, self.fail_after, self.value = tile, delay, fail_after, value
        self.tiles_done = 0
        self.first_tile = threading.Event()

    def describe(self) -> str:
        return "fake segmenter on cpu"

    def image_of(self, loaded):
        """What the app passes to ``segment`` (core.segment.inference.Segmenter.image_of): an RGB model's."""
        return loaded.rgb

    def segment(self, rgb, tile_size=None, progress=None, should_cancel=None, on_tile=None, warn=None,
                tta=None, refine=None):
        from core.segment.inference import Cancelled

        self.last_tta, self.last_refine = tta, refine
        h, w = rgb.shape[:2]
        out = np.zeros((h, w), np.uint8)
        boxes = [(y, x) for y in range(0, h, self.tile) for x in range(0, w, self.tile)]
        if progress:
            progress(0, len(boxes))
        for i, (y, x) in enumerate(boxes):
            if should_cancel is not None and should_cancel():
                raise Cancelled()
            if self.fail_after is not None and i >= self.fail_after:
                raise RuntimeError("the fake model broke on purpose")
            time.sleep(self.delay)
            block = out[y:y + self.tile, x:x + self.tile]
            block[...] = self.value
            self.tiles_done += 1
            if on_tile:
                on_tile(y, x, block)
            self.first_tile.set()
            if progress:
                progress(i + 1, len(boxes))
        return out


def run_until_autosaved(script: str, args: list[str], appdata: Path, settings: Path, timeout: float = 60):
    """Start the app in a subprocess running ``script`` (which prints AUTOSAVED once autosave
    wrote), wait for that line, and return the still-running process for the test to kill."""
    import os
    import queue
    import subprocess
    import sys
    import threading
    import time

    import pytest

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", UNETSEG_DATA_DIR=str(appdata),
               UNETSEG_SETTINGS=str(settings), PYTHONPATH=str(root))
    proc = subprocess.Popen([sys.executable, "-c", script, *args], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stdout], daemon=True).start()
    try:
        deadline = time.monotonic() + timeout
        while lines.get(timeout=max(0.1, deadline - time.monotonic())).strip() != "AUTOSAVED":
            pass
    except queue.Empty:
        proc.kill()
        pytest.fail(f"the app never autosaved: {proc.communicate(timeout=30)[1][-2000:]}")
    return proc
