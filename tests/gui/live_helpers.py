"""Live Training test helpers: images, strokes, and checkpoints as the trainer publishes them.

``publish`` hands the window a checkpoint through the trainer's own signal, as a running
LiveTrainer does every few seconds, so the history, the marker and the list can be tested on
scores and timings chosen by the test; the flows that train for real are in test_live_training.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import torch
from PIL import Image
from PySide6.QtCore import Qt

from core.classes import default_classes
from core.model.checkpoints import Checkpoint, Normalization
from core.model.networks import build_model
from tests.gui.helpers import drag

FAST = dict(snapshot_every=0.4, patch=32, batch=4, threads=1, augment=False)
_RUN_IDS = itertools.count(10_000)  # run ids of published checkpoints (the window numbers runs 1, 2, ...)


def two_halves(path, h=64, w=64, seed=0):
    """Dark textured left half, bright right half: a task a few strokes teach in seconds."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(20, 70, (h, w, 3), dtype=np.uint8)
    rgb[:, w // 2:] = rng.integers(170, 230, (h, w - w // 2, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def stroke(qtbot, window, class_id, points):
    window.select_class(class_id)
    window.commands.stroke.trigger()
    drag(qtbot, window, points)


def new_run() -> int:
    return next(_RUN_IDS)


def checkpoint(seed: int, classes: int = 2, channels: int = 3, norm: Normalization | None = None) -> Checkpoint:
    """A UNetSmall with weights of its own (``seed``), whose BatchNorm statistics vary its output."""
    return Checkpoint("small", channels, classes, _weights(seed, classes, channels), default_classes(classes),
                      norm or Normalization(), {})


@functools.lru_cache(maxsize=64)
def _weights(seed: int, classes: int, channels: int) -> dict:
    """One set per seed (the tests never change a checkpoint's weights)."""
    torch.manual_seed(seed)
    model = build_model("small", channels, classes).train()
    with torch.no_grad():
        model(torch.randn(2, channels, 32, 32) * 2)
    return {k: v.detach().clone() for k, v in model.eval().state_dict().items()}


def snapshot(run: int, index: int, score: float | None = None, held: int | None = None, seed: int | None = None,
             **kw):
    """A LiveSnapshot as core publishes it (its own uid), scored ``score`` on held-out set ``held``."""
    from core.training.live import LiveSnapshot

    ckpt = checkpoint(run * 1000 + index if seed is None else seed, **kw)
    return LiveSnapshot(index, 3.0 * (index + 1), 20 * (index + 1), 500, 1, 0.5, score, ckpt, run=run,
                        held_out_set=held if score is not None else None)


def publish(window, snap):
    """The trainer publishes ``snap`` (its signal, as LiveRunner emits it)."""
    window.live.trainer.snapshot.emit(snap)
    return snap


def weights_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


def segmented(ckpt: Checkpoint, loaded) -> np.ndarray:
    """What Apply to Image writes with ``ckpt`` on an image in memory."""
    from core.segment.inference import Segmenter

    seg = Segmenter(ckpt, device="cpu")
    return seg.segment(seg.image_of(loaded), tta=False, refine=False)


def expected_view(window, snap):
    """The labels the view should show from ``snap``: the preview's own reading and prediction."""
    from core.segment.inference import Segmenter
    from gui.jobs.live_preview import predict, read_view

    seg = Segmenter(snap.checkpoint, device="cpu")
    entry = window.store.current
    box = window.canvas.visible_box()
    labels, _ = predict(seg, read_view(seg.image_of(entry.image), box, 1))
    return labels


def dclick(qtbot, viewport, pos):
    """A double-click as the system delivers it: a click, then the double-click."""
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=pos)
    qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=pos)
