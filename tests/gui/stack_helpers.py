"""Stacks for the app's tests: a 2-channel 16-bit Z stack a few strokes teach, and a segmenter that
segments planes the way core.segment.stack calls it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.gui.helpers import FakeSegmenter
from tests.stack_images import write_ome_tiff

Z, H, W = 6, 48, 64


def halves_stack(path: Path, z: int = Z, h: int = H, w: int = W, seed: int = 0) -> tuple[Path, np.ndarray]:
    """ZCYX uint16 (channels DAPI, GFP): every plane dim on the left half, bright on the right, and a
    plane's own brightness step, so a wrong plane shows."""
    rng = np.random.default_rng(seed)
    data = rng.integers(200, 900, (z, 2, h, w)).astype(np.uint16)
    data[:, :, :, w // 2:] += 2500
    data += (np.arange(z, dtype=np.uint16) * 10)[:, None, None, None]
    return write_ome_tiff(path, data, "ZCYX"), data


def halves_truth(shape) -> np.ndarray:
    truth = np.zeros(shape, np.uint8)
    truth[:, shape[1] // 2:] = 1
    return truth


def agreement(labels: np.ndarray) -> float:
    return float((np.asarray(labels) == halves_truth(labels.shape)).mean())


class PlaneSegmenter(FakeSegmenter):
    """FakeSegmenter as core.segment.stack.segment_stack calls a Segmenter: it labels every pixel
    brighter than the plane's mean with ``value`` (so planes differ), ``delay`` seconds per tile."""

    reads_raw = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.niceness: list[int | None] = []  # the scheduling niceness of each call's thread (Linux)

    def source_statistics(self, source, channels=None):
        return None

    def segment(self, rgb, tile_size=None, progress=None, should_cancel=None, on_tile=None, warn=None,
                tta=None, refine=None, stats=None, channels=None):
        self.niceness.append(thread_niceness())
        base = super().segment(rgb, tile_size, progress, should_cancel, on_tile, warn, tta, refine)
        grey = np.asarray(rgb, np.float32).mean(axis=2)
        return np.where(grey > grey.mean(), base, 0).astype(np.uint8)


def thread_niceness() -> int | None:
    """The calling thread's scheduling niceness (Linux, where it is per thread), else None."""
    import os
    import sys
    import threading

    if not sys.platform.startswith("linux"):
        return None
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


class SplittingPlaneSegmenter(PlaneSegmenter):
    """PlaneSegmenter with an instance output (``instances`` set, as a model that separates objects):
    asked ``instances=True`` it returns a Segmentation whose class region (the plane's bright half) is
    two touching objects, cut at column ``W * 3 // 4``, with ids 1 and 2 of that plane alone."""

    instances = "boundary"

    def segment(self, rgb, tile_size=None, progress=None, should_cancel=None, on_tile=None, warn=None,
                tta=None, refine=None, stats=None, channels=None, instances=False):
        from core.segment.inference import Segmentation

        labels = super().segment(rgb, tile_size, progress, should_cancel, on_tile, warn, tta, refine, stats, channels)
        if not instances:
            return labels
        ids = np.zeros(labels.shape, np.uint32)
        cut = labels.shape[1] * 3 // 4
        ids[:, :cut][labels[:, :cut] > 0] = 1
        ids[:, cut:][labels[:, cut:] > 0] = 2
        return Segmentation(labels, ids)
