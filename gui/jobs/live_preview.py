"""Predicting the region in view from Live Training's newest snapshot, on a worker thread.

The view comes first: a request names the region in view and the scale it is shown at; the
pixels are read at that scale (a slide's pyramid level, or an in-memory image reduced), so a
1920x1080 view costs about 2 Mpx whatever the zoom.  Only the newest request counts: one
still waiting is replaced, and one running for a region that has left the view is cancelled
(the trainer's new weights for the same region wait for it to finish instead).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from core.document.editing import Box
from gui.infra.workers import Reporter, Task, TaskCancelled, start_task
from gui.state.live import Prediction


# A view up to this size (a 1920x1080 view at 100%) is predicted in one pass: no overlapping
# windows, 2.3x faster on one CPU thread (0.8 s against 1.9 s) for about 130 MB more memory;
# larger ones (a zoomed-out view samples up to 1.4x per screen pixel) go in 1024 px windows.
WHOLE_PASS_PIXELS = 2_200_000


@dataclass(frozen=True, eq=False)
class PreviewRequest:
    image: Path
    box: Box  # image pixels, aligned to ``factor``
    factor: int  # image pixels per predicted pixel (a power of two)
    pixels: Any  # a LoadedImage (Segmenter.image_of picks its view), an H x W x C array, or an ImageSource (a slide)
    snapshot: Any  # core.training.live.LiveSnapshot
    asked: float = 0.0  # time.perf_counter() when asked (latency figures)


def view_request(image: Path, pixels: Any, snapshot: Any, visible: Box, scale: float, size: tuple[int, int],
                 factor: int | None = None) -> PreviewRequest | None:
    """The request for ``visible`` (clipped to ``size`` = (h, w)) shown at ``scale`` screen
    pixels per image pixel: predicted every ``factor`` pixels (a power of two), a sample covering
    0.7 to 1.4 screen pixels when zoomed out.

    A given ``factor`` (a slide trained at a pyramid level: the scale the model learnt) is kept at
    every zoom; zoomed out beyond it, the middle of the view is predicted, at most WHOLE_PASS_PIXELS
    predicted pixels, so a preview costs what it costs at 100%."""
    h, w = size
    if factor is not None:
        factor = max(1, int(factor))
        visible = Box(max(0, visible.y0), max(0, visible.x0), min(h, visible.y1), min(w, visible.x1))
        room = WHOLE_PASS_PIXELS * factor * factor
        if visible.area > room:
            shrink = math.sqrt(room / visible.area)
            dh, dw = int(visible.height * (1 - shrink) / 2), int(visible.width * (1 - shrink) / 2)
            visible = Box(visible.y0 + dh, visible.x0 + dw, visible.y1 - dh, visible.x1 - dw)
    else:
        factor = 1 << max(0, int(math.floor(math.log2(1.0 / scale) + 0.5))) if 0 < scale < 1 else 1
    box = Box(visible.y0 - visible.y0 % factor, visible.x0 - visible.x0 % factor,
              min(h, visible.y1), min(w, visible.x1))
    if box.is_empty:
        return None
    return PreviewRequest(image, box, factor, pixels, snapshot, time.perf_counter())


def read_view(pixels: Any, box: Box, factor: int, raw: bool = False) -> np.ndarray:
    """The pixels of ``box`` reduced ``factor`` times: from the slide's coarsest level that is not
    coarser than ``factor`` (then box-filtered the rest of the way), or from the array."""
    from PIL import Image

    if isinstance(pixels, np.ndarray):
        crop, have = pixels[box.slices], 1
    else:
        source = pixels
        w0 = source.levels[0][0]
        levels = [(round(w0 / lw), i) for i, (lw, _lh) in enumerate(source.levels)]
        have, level = max((f, i) for f, i in levels if f <= factor)
        lw, lh = source.levels[level]
        y0, x0 = box.y0 // have, box.x0 // have
        y1, x1 = min(lh, max(y0 + 1, -(-box.y1 // have))), min(lw, max(x0 + 1, -(-box.x1 // have)))
        crop = (source.read_raw if raw else source.read)(y0, y1, x0, x1, level)  # raw: every channel, its dtype
    rest = max(1, factor // have)
    if rest > 1 and crop.dtype == np.uint8 and crop.ndim == 3 and crop.shape[2] == 3:
        crop = np.asarray(Image.fromarray(np.ascontiguousarray(crop)).reduce(rest))
    elif rest > 1 and crop.dtype == np.uint8:  # 1, 2, 4+ channels, none of them alpha: a plane at a time
        crop = np.dstack([np.asarray(Image.fromarray(np.ascontiguousarray(crop[..., c])).reduce(rest))
                          for c in range(crop.shape[2])])
    elif rest > 1:
        crop = crop[::rest, ::rest]
    # one sample per ``factor`` pixels, a partial one at the far edges too (reduce drops those)
    ny, nx = -(-box.height // factor), -(-box.width // factor)
    crop = crop[:ny, :nx]
    if crop.shape[0] < ny or crop.shape[1] < nx:
        pad = [(0, ny - crop.shape[0]), (0, nx - crop.shape[1])] + [(0, 0)] * (crop.ndim - 2)
        crop = np.pad(crop, pad, mode="edge")
    return np.ascontiguousarray(crop)


def whole_image_statistics(segmenter: Any, pixels: Any) -> Any:
    """What a raw-channel model scales every view by: the whole image's (or slide's) statistics,
    as training and ``segment`` measure them, so the preview of a region matches Apply (None for
    8-bit RGB models).  Measured once per image: the next checkpoint reuses them."""
    from core.model.normalize import array_sample, kept_statistics

    if not segmenter.reads_raw:
        return None
    if hasattr(pixels, "rgb"):  # an image in memory (core.io.images.LoadedImage)
        raw = segmenter.image_of(pixels)
        stats = kept_statistics(pixels, segmenter.normalization.percentiles, lambda: array_sample(raw))
        picks = segmenter.channel_picks(raw.shape[2])
        return stats if picks is None else stats.pick(picks)
    return segmenter.source_statistics(pixels) if not isinstance(pixels, np.ndarray) else None


def predict(segmenter: Any, pixels: np.ndarray, should_cancel=None, stats: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """(class ids, uncertainty as uint8 normalised entropy: 255 = all classes equally likely)."""
    whole = pixels.shape[0] * pixels.shape[1] <= WHOLE_PASS_PIXELS
    probs = segmenter.probabilities(pixels, tta=False, tile_size=0 if whole else None,
                                    should_cancel=should_cancel, stats=stats).numpy()
    k = probs.shape[0]
    index = probs.argmax(axis=0)
    ids = np.array([c.id for c in segmenter.classes], np.uint8)
    labels = ids[index] if len(ids) == k else index.astype(np.uint8)
    p = np.clip(probs, 1e-7, 1.0)
    entropy = -(p * np.log(p)).sum(axis=0) / math.log(max(2, k))
    return labels, np.clip(entropy * 255 + 0.5, 0, 255).astype(np.uint8)


def separated(segmenter: Any, labels: np.ndarray, factor: int = 1) -> tuple[np.ndarray, np.ndarray | None]:
    """(class ids, object ids or None): a model with an instance output (Live Training of painted
    objects) shows its objects, made from the view's class map as Apply makes them from the
    image's, and the boundary folded into their classes."""
    spec = getattr(segmenter, "instances", None)
    if spec is None:
        return labels, None
    from core.objects.instances import separate
    from core.training.live_objects import preview_spec

    ids, folded = separate(labels, preview_spec(spec, factor))
    return folded, ids


def channel_count(pixels: Any) -> int:
    """The channels of a LoadedImage or ImageSource (``.channels``) or of an array."""
    if hasattr(pixels, "channels"):
        return int(pixels.channels)
    return int(pixels.shape[2]) if pixels.ndim == 3 else 1


@dataclass(frozen=True)
class Unreadable:
    """The checkpoint cannot read the image: it learned from images with other channels."""

    image: Path
    uid: int
    model_channels: int
    image_channels: int


class PreviewRunner(QObject):
    ready = Signal(object, float)  # Prediction, seconds from request to result
    failed = Signal(object, int, str)  # image, checkpoint uid, one sentence
    unreadable = Signal(object, int, int, int)  # image, checkpoint uid, the model's and the image's channels

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._task: Task | None = None
        self._running: PreviewRequest | None = None
        self._pending: PreviewRequest | None = None
        self._segmenter: tuple[Any, Any, Any] | None = None  # ((snapshot uid, image), Segmenter, statistics)
        self.dropped = 0  # requests replaced or cancelled before they showed (tests, benches)

    @property
    def busy(self) -> bool:
        return self._task is not None

    def request(self, req: PreviewRequest) -> None:
        if self._pending is not None:
            self.dropped += 1
        self._pending = req
        running = self._running
        if running is not None and (running.box != req.box or running.image != req.image):
            self._task.cancel()  # its region has left the view
        if self._task is None:
            self._next()

    def _next(self) -> None:
        req, self._pending = self._pending, None
        if req is None:
            return
        cached = self._segmenter

        def run(rep: Reporter):
            from core.model.optimize import release_heap
            from core.segment.inference import Cancelled, Segmenter

            key = (req.snapshot.uid, req.image)
            seg, stats = cached[1:] if cached is not None and cached[0] == key else (None, None)
            if seg is None:
                seg = Segmenter(req.snapshot.checkpoint, device="cpu")
                if seg.reads_raw:  # the model's channel rule (Segmenter.channel_picks) decides
                    count = channel_count(req.pixels)
                    try:
                        seg.channel_picks(count)
                    except ValueError:
                        return Unreadable(req.image, int(req.snapshot.uid), seg.in_channels, count)
                stats = whole_image_statistics(seg, req.pixels)
                rep.item((key, seg, stats))
            pixels = read_view(seg.image_of(req.pixels) if hasattr(req.pixels, "rgb") else req.pixels,
                               req.box, req.factor, raw=seg.reads_raw)
            rep.check()
            try:
                labels, uncertainty = predict(seg, pixels, rep.cancelled, stats)
            except Cancelled:
                raise TaskCancelled() from None
            finally:
                # previews come every few seconds, each on a new thread: a heap kept warm for
                # 30 s (core.model.optimize) in each thread's arena would add up to gigabytes
                release_heap()
            labels, ids = separated(seg, labels, req.factor)
            return Prediction(req.image, req.box, req.factor, labels, uncertainty, int(req.snapshot.uid), ids)

        self._running = req
        task = self._task = start_task(run, "live-preview")
        task.item.connect(lambda made: setattr(self, "_segmenter", made))
        task.finished.connect(lambda result: self._done(task, result))
        task.failed.connect(lambda message: self._done(task, None, message))
        task.cancelled.connect(lambda: self._done(task, None))

    def _done(self, task: Task, result: Prediction | None, message: str | None = None) -> None:
        if task is not self._task:
            return
        req, self._task, self._running = self._running, None, None
        if isinstance(result, Unreadable):
            self.unreadable.emit(result.image, result.uid, result.model_channels, result.image_channels)
        elif result is not None:
            self.ready.emit(result, time.perf_counter() - req.asked)
        elif message:
            self.failed.emit(req.image, int(req.snapshot.uid), message)
        else:
            self.dropped += 1
        self._next()

    def forget(self) -> None:
        """Drop what waits and cancel what runs (Live Training off, another image shown)."""
        self._pending = None
        if self._task is not None:
            self._task.cancel()
        self._segmenter = None

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        task = self._task
        self.forget()
        if task is not None:
            task.wait(timeout_ms)
            self._done(task, None)
