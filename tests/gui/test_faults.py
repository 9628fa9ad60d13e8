"""Faults while the app works: cancel at every tile, a worker that raises, out of GPU memory,
and closing the window while jobs run."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.segment.inference import OOM_ERRORS, Segmenter
from core.training.synthetic import generate_scene
from tests.gui.helpers import FakeSegmenter, drag, label_images, write_image
from tests.helpers import limit_window, simulate_exhausted_gpu

ROOT = Path(__file__).resolve().parents[2]
SIDE, TILE = 48, 16
TILES = (SIDE // TILE) ** 2
OOM = OOM_ERRORS[0]


class GatedSegmenter(FakeSegmenter):
    """Holds before tile ``gate`` (``gate == TILES``: after the last one) until ``resume``."""

    def __init__(self, gate: int, **kwargs):
        super().__init__(**kwargs)
        self.gate = gate
        self.reached, self.resume = threading.Event(), threading.Event()

    def _hold(self) -> None:
        self.reached.set()
        self.resume.wait(10)

    def segment(self, rgb, tile_size=None, progress=None, should_cancel=None, on_tile=None, warn=None, tta=None,
                refine=None):
        checks = iter(range(10**6))

        def gated() -> bool:
            if next(checks) == self.gate:
                self._hold()
            return should_cancel()

        labels = super().segment(rgb, tile_size, progress, gated, on_tile, warn)
        if self.gate == TILES:
            self._hold()
        return labels


def edited_image(qtbot, window, tmp_path, side=SIDE):
    """An image whose mask has two undo steps and unsaved edits."""
    window.open_images([write_image(tmp_path / "cells.png", side, side)])
    pattern = np.zeros((side, side), np.uint8)
    pattern[4:20, 6:30] = 1
    window.document.apply_labels(pattern)
    drag(qtbot, window, [(30, 30), (40, 42)])
    assert len(window.document.history) == 2 and window.document.dirty
    return window.document


@pytest.mark.parametrize("gate", range(TILES + 1))
def test_cancel_at_any_tile_leaves_the_previous_mask(qtbot, window, tmp_path, gate):
    doc = edited_image(qtbot, window, tmp_path)
    before, position = doc.labels.copy(), doc.history.position
    fake = GatedSegmenter(gate, tile=TILE, value=3)
    window.models.set_segmenter(fake)
    window.commands.segment.trigger()
    qtbot.waitUntil(fake.reached.is_set, timeout=5000)
    if gate:
        qtbot.waitUntil(lambda: fake.tiles_done == gate and (window.mask[:TILE, :TILE] == 3).all(), timeout=5000)
        assert doc.preview_active  # the tiles so far are on screen
    with qtbot.waitSignal(window.segmentation_cancelled, timeout=10_000):
        window.cancel_job()
        fake.resume.set()
    assert np.array_equal(doc.labels, before)
    assert doc.history.position == position and len(doc.history) == 2 and doc.dirty
    assert not doc.preview_active and window.canvas.editing_enabled
    window.autosave.flush()
    [copy] = window.autosave.store.own()  # the recovery copy never holds a preview either
    assert np.array_equal(window.autosave.store.load(copy), before)
    window.commands.undo.trigger()
    assert doc.history.position != position  # undo still works, from the same place


def test_a_bug_in_the_worker_is_one_message_and_the_app_stays_usable(qtbot, window, dialogs, tmp_path):
    class Buggy(FakeSegmenter):
        def segment(self, *args, **kwargs):
            return {}["no such key"]

    doc = edited_image(qtbot, window, tmp_path)
    before = doc.labels.copy()
    window.models.set_segmenter(Buggy())
    with qtbot.waitSignal(window.segmentation_failed, timeout=10_000):
        window.commands.segment.trigger()
    assert dialogs.errors() == ["KeyError: 'no such key'"]
    assert np.array_equal(doc.labels, before) and doc.dirty and not window.segmentation.running
    window.models.set_segmenter(FakeSegmenter(tile=TILE))
    with qtbot.waitSignal(window.segmentation_finished, timeout=10_000):
        window.commands.segment.trigger()
    assert (window.mask == 2).all()


def test_a_bug_during_segment_all_keeps_what_was_saved(qtbot, window, dialogs, folder):
    class BreaksOnTheThird(FakeSegmenter):
        def segment(self, rgb, *args, **kwargs):
            self.calls = getattr(self, "calls", 0) + 1
            if self.calls == 3:
                raise TypeError("unsupported operand for the third image")
            return super().segment(rgb, *args, **kwargs)

    window.open_folder(folder)
    window.models.set_segmenter(BreaksOnTheThird(tile=32))
    with qtbot.waitSignal(window.segmentation_failed, timeout=20_000):
        window.commands.segment_all.trigger()
    assert dialogs.errors() == ["TypeError: unsupported operand for the third image"]
    saved = sorted(p.name for p in folder.glob("*_mask.png"))
    assert saved == ["img0_mask.png", "img1_mask.png"]
    assert not window.segmentation.running and window.commands.segment_all.isEnabled()


def test_out_of_memory_through_the_worker_retries_and_says_so(qtbot, window, small_weights, tmp_path,
                                                            monkeypatch):
    seg = Segmenter.load(small_weights, device="cpu")
    image = tmp_path / "scene.png"
    Image.fromarray(generate_scene(4, 300, 300)[0]).save(image)
    window.open_images([image])
    expected = seg.segment(window.current.image.rgb, tile_size=0)
    limit_window(monkeypatch, seg, max_side=160)
    messages = []
    window.state.message.connect(lambda text, ms: messages.append(text))
    window.models.set_segmenter(seg)
    window.segmentation.tile_size = 304
    with qtbot.waitSignal(window.segmentation_finished, timeout=60_000):
        window.commands.segment.trigger()
    assert "Out of memory on cpu: retrying with 152-pixel tiles." in messages
    assert (window.mask == expected).mean() >= 0.9999


@pytest.mark.filterwarnings("ignore:CUDA is not available")
def test_out_of_memory_on_a_gpu_falls_back_to_the_cpu_in_the_app(qtbot, window, small_weights, tmp_path,
                                                                monkeypatch):
    seg = Segmenter.load(small_weights, device="cpu")
    window.open_images([write_image(tmp_path / "cells.png", 120, 120)])
    expected = seg.segment(window.current.image.rgb)

    simulate_exhausted_gpu(monkeypatch, seg)
    messages = []
    window.segmentation.warning.connect(messages.append)
    window.models.set_segmenter(seg)
    with qtbot.waitSignal(window.segmentation_finished, timeout=60_000) as blocker:
        window.commands.segment.trigger()
    assert any("continuing on the CPU" in m for m in messages)
    assert blocker.args[1] == "cpu" and (window.mask == expected).all()
    assert "on cpu" in window.statusBar().currentMessage()


def test_out_of_memory_everywhere_is_a_message_not_a_crash(qtbot, window, dialogs, small_weights, tmp_path,
                                                          monkeypatch):
    seg = Segmenter.load(small_weights, device="cpu")
    doc = edited_image(qtbot, window, tmp_path, side=96)
    before = doc.labels.copy()

    def exhausted(x):
        raise OOM("out of memory")

    monkeypatch.setattr(seg._net(), "features", exhausted)
    window.models.set_segmenter(seg)
    with qtbot.waitSignal(window.segmentation_failed, timeout=60_000):
        window.commands.segment.trigger()
    [message] = dialogs.errors()
    assert message.startswith("not enough memory to segment a 96x96 image")
    assert np.array_equal(doc.labels, before) and window.commands.segment.isEnabled()


# -- closing while jobs run ----------------------------------------------------------------
def test_closing_during_segmentation_asks_then_cancels_cleanly(qtbot, window, dialogs, tmp_path):
    doc = edited_image(qtbot, window, tmp_path)
    before = doc.labels.copy()
    fake = FakeSegmenter(tile=8, delay=0.05)
    window.models.set_segmenter(fake)
    window.commands.segment.trigger()
    qtbot.waitUntil(lambda: fake.tiles_done >= 1, timeout=5000)
    dialogs.answers["ask_save_discard_cancel"] = "cancel"
    started = time.monotonic()
    assert not window.close()  # the user keeps the window: the job was stopped, the edits kept
    assert time.monotonic() - started < 5
    assert dialogs.of("ask_save_discard_cancel")[0][1] == "cells.png"
    qtbot.waitUntil(lambda: not window.segmentation.running, timeout=5000)
    assert np.array_equal(doc.labels, before) and doc.dirty and window.isVisible()
    assert fake.tiles_done < (SIDE // 8) ** 2
    window.commands.segment.trigger()  # and the app still works
    qtbot.waitUntil(lambda: fake.tiles_done >= 1 and window.segmentation.running, timeout=5000)
    dialogs.answers["ask_save_discard_cancel"] = "discard"
    assert window.close()
    assert not window.segmentation.running


def test_closing_during_export_all_cancels_it(qtbot, window, dialogs, folder, tmp_path, monkeypatch):
    import core.io.masks

    real = core.io.masks.write_mask_files  # what Export All's batch writer calls for each file

    def slow(*args, **kwargs):
        time.sleep(0.1)
        return real(*args, **kwargs)

    monkeypatch.setattr(core.io.masks, "write_mask_files", slow)
    window.open_folder(folder)
    label_images(window, folder, 4)
    out = tmp_path / "out"
    out.mkdir()
    dialogs.answers.update(ask_export_folder=out, ask_export_formats=["index", "color", "tiff"],
                           ask_save_discard_cancel="discard")
    window.commands.export_all.trigger()
    qtbot.waitUntil(lambda: any(out.iterdir()), timeout=5000)
    started = time.monotonic()
    assert window.close()
    assert time.monotonic() - started < 5
    assert len(list(out.iterdir())) < 12 and not list(out.glob(".*"))  # stopped; no temp files


CLOSE_WHILE_SEGMENTING = r"""
import sys
from PySide6.QtCore import QTimer
import gui.dialogs
from gui.main_window import MainWindow
from tests.gui.helpers import FakeSegmenter
MainWindow.start_background_loading = lambda self: None
gui.dialogs.ask_save_discard_cancel = lambda parent, name, *what: print("asked about", name, flush=True) or "discard"
from gui.app import start_app

app, window, _ = start_app([sys.argv[1]])
fake = FakeSegmenter(tile=8, delay=0.2)

def start():
    window.document.apply_labels(window.document.labels + 1)  # unsaved edits
    window.models.set_segmenter(fake)
    window.commands.segment.trigger()
    QTimer.singleShot(400, quit_now)

def quit_now():
    print("tiles before close", fake.tiles_done, flush=True)
    window.close()
    app.quit()

QTimer.singleShot(0, start)
sys.exit(app.exec())
"""


def test_the_app_exits_cleanly_when_closed_during_a_segmentation(tmp_path):
    image = write_image(tmp_path / "cells.png", 64, 64)
    appdata = tmp_path / "appdata"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", UNETSEG_DATA_DIR=str(appdata),
               UNETSEG_SETTINGS=str(tmp_path / "s.ini"), PYTHONPATH=str(ROOT))
    env.pop("UNETSEG_FORBID_DIALOGS", None)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", CLOSE_WHILE_SEGMENTING, str(image)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert time.monotonic() - started < 30
    assert "asked about cells.png" in proc.stdout and "tiles before close" in proc.stdout
    assert "Traceback" not in proc.stderr and "QThread" not in proc.stderr, proc.stderr[-3000:]
    assert list((appdata / "sessions").iterdir()) == []  # a clean exit leaves no lock
    assert not list((appdata / "recovery").glob("*.json"))


def test_stop_tasks_cancels_and_waits_for_every_worker(qtbot):
    from gui.infra.workers import live_threads, start_task, stop_tasks

    started = threading.Barrier(3)

    def endless(rep):
        started.wait(5)
        while True:
            rep.check()
            time.sleep(0.01)

    tasks = [start_task(endless, f"endless-{i}") for i in range(2)]
    started.wait(5)
    assert stop_tasks(5000)
    assert not any(t.running for t in tasks) and live_threads() == []
