"""Live training: a UNet learns from a user's strokes while they keep painting.

``LiveTrainer.run`` trains until told to stop (or a time budget runs out), publishing a complete
model every ``snapshot_every`` seconds, so a view can show what the newest weights predict.  The
user may add strokes and classes (``set_data``), pause, or roll back to an earlier snapshot while
it runs.  Crops come from core.training.sparse.StrokeSampler (centred on strokes, classes
balanced) through the loop's own crop and normalisation path (core.training.loop), so a change in
how pixels become network input applies here too.

The recipe is LiveConfig's defaults, each chosen by bench/strokes.py (bench/RESULTS.md) on four
kinds of made-up scenes with a few strokes per class, against scikit-image's random-forest pixel
classifier.

Held-out score: a stroke is held out of training or not when it is first seen, for good
(core.training.sparse.StrokeRoles); once two classes or more have held-out strokes, each snapshot
is scored on them (mIoU over their classes), and ``held_out_set`` says which set of held-out
strokes a score was taken on: it changes only when the held-out strokes do.  ``best()`` compares
only scores on the same set: when the set changes, the best so far and the newest are scored
again on the new one.

Threads: ``run`` trains on a thread of its own (core.training.threads), with ``threads`` torch
threads and a lower priority, so the caller's thread and every thread started later (the app's
preview and segmentation) keep their normal thread count, and the window comes first.

Running out of memory rolls back to the last snapshot, halves the batch and goes on; at batch 1
it stops, and the last good snapshot is what ``run`` returns.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from core.classes import ClassInfo, default_classes, normalize_classes
from core.metrics import IoUAccumulator
from core.model.checkpoints import Checkpoint, Normalization
from core.model.networks import HALO, build_model
from core.model.normalize import source_statistics
from core.segment.inference import OOM_ERRORS as DEVICE_OOM_ERRORS, device_label, resolve_device
from core.training import raw_input
from core.training.loop import (IGNORE, Normalizer, TrainingDataError, resolve_checkpoint, dice_loss,
                                lovasz_softmax, weights_of_counts)
from core.training.sparse import (StrokeRoles, StrokeSampler, StrokeSet, annotated_counts, crop_centres,
                                  stroke_set)
from core.training.threads import run_in_own_thread

OOM_ERRORS = DEVICE_OOM_ERRORS + (MemoryError,)  # the device's (as inference catches them) and the host's
SCORE_TILE = 64  # held-out strokes are scored tile by tile (with the receptive-field margin), ...
SCORE_TILES = 32  # ... at most this many tiles (evenly spread over them: the same ones for the same strokes)
SCORE_BATCH = 16  # tiles of one size predicted together
SCRATCH = "scratch"  # LiveTrainer.started_from when no weights were loaded


def default_threads() -> int:
    """Every core but one, left to the user interface (and to the machine's other work: on a
    busy 2-core machine, 2 threads made 5-10x fewer steps than 1 in bench/strokes.py, the
    threads of so small a network waiting on each other)."""
    return max(1, (os.cpu_count() or 2) - 1)


@dataclass
class LiveConfig:
    """Defaults chosen by measurement in bench/strokes.py (see bench/RESULTS.md, "Learning from strokes")."""

    arch: str = "small"
    init: str | None = "small"  # None: from scratch; "small", "large" or a weights file: fine-tune it
    patch: int = 48
    batch: int = 8
    lr: float = 1e-2
    threads: int = field(default_factory=default_threads)  # torch threads of the training thread only
    nice: int = 5  # the training thread runs this much less urgently (Linux), so the window comes first
    snapshot_every: float = 3.0  # seconds of training between published snapshots
    augment: bool = False  # random scale and photometric change per crop (core.training.augment): hurt here
    weight_decay: float = 1e-4
    average: float = 0.9  # >0: publish a moving average of the weights over about 1 / (1 - average) steps
    average_growth: float = 0.2  # >0: ... over about this share of the steps since the strokes last changed
    # (at least the above; bench/strokes.py: steadier with time, and no dips of the newest snapshot)
    lr_decay: float = 0.0  # >0: the learning rate falls as 1 / sqrt(1 + steps / lr_decay)
    anchor: float = 0.0  # >0: pull the weights towards the start model's (L2-SP), this strength per step
    seed: int = 0
    device: str = "auto"
    held_out_share: float = 0.2  # about this share of each class's strokes is held out for the score ...
    held_out_min: int = 5  # ... from a class's 5th stroke on (core.training.sparse.StrokeRoles)
    held_out_fold: tuple[int, int] | None = None  # (j, n): hold out fold j of n of each class's strokes instead
    keep: int = 10  # snapshots the trainer keeps (the best one is kept besides); the app keeps its own
    channels: tuple[int, ...] | None = None  # image channels the model reads, in order (--channels; None: as
    channel_names: tuple[str, ...] = ()  # they come); what the image calls each of its channels
    dice: bool = False  # add a soft Dice term over the annotated pixels (unetseg train --dice)
    lovasz: bool = False  # add the Lovasz-softmax loss over the annotated pixels (--lovasz)


AVERAGE_RESTART = 80  # steps of averaging kept when the strokes change (the short memory is full, 0.9, from here)
_UIDS = itertools.count(1)  # checkpoint identities, unique for the process (never reused across runs)
_RUNS = itertools.count(1)  # one number per LiveTrainer: a restart is a new run
_HELD_SETS: dict[str, int] = {}  # fingerprint of held-out strokes -> its number, for the process
_HELD_LOCK = threading.Lock()


def _held_set_number(fingerprint: str) -> int:
    with _HELD_LOCK:
        return _HELD_SETS.setdefault(fingerprint, len(_HELD_SETS) + 1)


@dataclass
class LiveSnapshot:
    index: int  # its place in its own run (0, 1, ...): shown to the user with the run
    seconds: float  # training time when taken (pauses not counted)
    steps: int
    annotated_pixels: int  # annotated pixels trained on (held-out strokes not counted)
    images: int
    loss: float  # mean training loss since the previous snapshot
    held_out_miou: float | None  # None until held-out strokes of two classes or more
    checkpoint: Checkpoint  # a complete model (weights copied), usable by core.segment.inference.Segmenter
    run: int = 0  # the LiveTrainer.run_id that made it
    uid: int = field(default_factory=lambda: next(_UIDS))  # unique for the process: what the app keys on
    held_out_set: int | None = None  # which held-out strokes the score was taken on (same number: comparable)
    held_out_pixels: int = 0  # annotated pixels held out for the score (not trained on)
    branch: int = 0  # roll backs asked of its trainer before it was taken (see LiveTrainer.roll_back)
    best_uid: int | None = None  # the trainer's best snapshot when this one was published (LiveTrainer.best)


@dataclass
class _Image:
    """One image as training sees it; rebuilt only when its strokes or pixels change."""

    name: str
    source: np.ndarray  # the pixels given (kept to notice the same array next time)
    pixels: np.ndarray  # network input: uint8 RGB, or the raw channels scaled once (float32)
    mask: np.ndarray  # the strokes given
    train: np.ndarray  # the strokes trained on (held-out ones removed; ``mask`` itself when none is)
    held: list[tuple[int, int, np.ndarray]]  # (y0, x0, SCORE_TILE mask) of each tile with held-out strokes
    held_pixels: int
    held_digest: bytes
    centres: dict[int, np.ndarray]  # flat indices of each class's trained pixels (crop centres)
    counts: np.ndarray  # trained pixels per class id (256)


@dataclass
class _Pending:
    strokes: StrokeSet
    raw: bool  # the images are read as raw channels (else 8-bit RGB, fixed normalisation)
    channels: int
    classes: list[ClassInfo] | None
    scale_by: dict = field(default_factory=dict)  # item name -> the image (an ImageSource) it was cut from


class LiveTrainer:
    """One model trained from strokes.  ``run`` blocks (call it from a worker thread; it trains
    on a thread of its own); every other method may be called from any thread at any time."""

    def __init__(self, config: LiveConfig | None = None, classes: list[ClassInfo] | None = None,
                 log: Callable[[str], None] | None = None):
        self.config = config or LiveConfig()
        if self.config.patch % 8 or self.config.patch < 16:
            raise ValueError(f"patch must be a multiple of 8 and at least 16, got {self.config.patch}")
        self.named = list(classes) if classes else None
        self.log = log or (lambda message: None)
        self.device = resolve_device(self.config.device)
        self.init = resolve_checkpoint(self.config.init) if self.config.init else None
        if self.init is not None and self.init.arch != self.config.arch:
            raise TrainingDataError(f"{self.config.init}: is UNet{self.init.arch.title()}, "
                                    f"cannot initialise UNet{self.config.arch.title()}.")
        recorded = self.init.normalization if self.init is not None and self.init.normalization.reads_raw else None
        if self.config.channels is None and recorded is not None and recorded.channels:
            # a raw-channel start model reads its recorded channels in their order (as fine-tuning
            # it does, core.training.raw_input.start_picks), and records that order again
            named = dict(zip(recorded.channels, recorded.channel_names))
            self.config = replace(self.config, channels=tuple(recorded.channels), channel_names=tuple(
                named.get(c, f"channel {c}") for c in range(max(recorded.channels) + 1)))
        self.norm = self.init.normalization if self.init else Normalization()
        self.rng = np.random.default_rng(self.config.seed)
        self.run_id = next(_RUNS)
        self.snapshots: list[LiveSnapshot] = []  # the newest ``keep``, and the best
        self.skipped: list[str] = []  # images of the latest set_data without any stroke
        self.left_out: list[str] = []  # one sentence per image of the latest set_data that cannot be used
        self.started_from: str | None = None  # SCRATCH, or what the weights came from (set by the first set_data)
        self.model: torch.nn.Module | None = None
        self.classes: list[ClassInfo] = []
        self.batch = self.config.batch
        self.roles = StrokeRoles(self.config.held_out_share, self.config.held_out_min, self.config.held_out_fold)
        self._lock = threading.RLock()  # pending data, roll back, branch, running, publishing
        self._work = threading.Lock()  # held by whoever changes the weights
        self._pending: _Pending | None = None
        self._rollback: LiveSnapshot | None = None
        self._branch = 0
        self._running = False
        self._kind: tuple[bool, int] | None = None  # (raw, channels) of the model's input, once chosen
        self._images: dict[str, _Image] = {}
        self._held: list[tuple[int, int, int, np.ndarray]] = []  # (image, y0, x0, tile mask) to score
        self._held_set: int | None = None
        self._held_pixels = 0
        self._scores: dict[int, float] = {}  # uid -> held-out mIoU on the current held-out set
        self._made = 0  # snapshots published (the next index)
        self._position: LiveSnapshot | None = None  # the snapshot the weights were last equal to
        self._steps, self._seconds = 0, 0.0
        self._clock = 0  # steps of the learning-rate schedule
        self._data_seconds, self._data_cost = 0.0, 0.0  # training time when strokes were last taken; how long that took
        self._anchor: dict[str, torch.Tensor] = {}
        self._average: dict[str, torch.Tensor] | None = None
        self._annotated = 0
        self._train_images = 0
        self._names: list[str] = []

    # ------------------------------------------------------------------ any thread
    def set_data(self, items: list[tuple[np.ndarray, np.ndarray]], names: list[str] | None = None,
                 classes: list[ClassInfo] | None = None, scale_by: dict | None = None) -> None:
        """New strokes: (pixels HxWxC, index mask HxW uint8 with 255 = not annotated) per image.

        ``classes``: the user's class list now (it may have grown since the trainer started: a
        class painted for the first time joins the running training, its classifier row added
        to the weights learnt so far).  Thread-safe; the training thread picks the strokes up
        before its next step.  An image whose channels differ from the model's is left out
        with a sentence in ``left_out`` (and the log); ``skipped`` names images without a
        stroke.  Raises TrainingDataError (one sentence) when fewer than two classes are
        annotated, or an id is beyond the class list (naming the image): the trainer then goes
        on with the strokes it had.  It counts every mask's pixels, so for a whole slide pass
        the regions around the strokes, not the slide (core.training.slide_strokes).

        ``scale_by``: {item name: the image it was cut from (an ImageSource: a slide's tiles)}.
        Raw channels are scaled by their image's statistics, and an item cut from a larger image
        must be scaled by that image's (core.model.normalize.source_statistics, as segmenting it
        scales every tile), not by its own, or the model learns one scaling and meets another."""
        names = list(names) if names is not None else [f"image {i + 1}" for i in range(len(items))]
        named = list(classes) if classes else self.named
        with self._lock:
            kind = self._kind
        items, names, left_out, kind = self._fitting(items, names, kind)
        try:
            strokes = stroke_set(items, names, len(named) if named else None)
        except TrainingDataError as exc:
            raise TrainingDataError(f"{exc} {' '.join(left_out)}".strip()) from None
        for message in left_out:
            self.log(message)
        with self._lock:
            if classes:
                self.named = named
            if self._kind is None:
                self._kind = kind
                self.started_from = self._start_description(kind)
                if self.init is not None and self.started_from == SCRATCH:
                    self.log(f"{self.config.init} reads {self.init.in_channels} "
                             f"{'raw' if self.init.normalization.reads_raw else '8-bit'} channels, these images "
                             f"give {kind[1]} {'raw' if kind[0] else '8-bit'}: training starts from scratch")
            self._pending = _Pending(strokes, kind[0], kind[1], named, dict(scale_by or {}))
            self.skipped, self.left_out = strokes.skipped, left_out

    def roll_back(self, snapshot: LiveSnapshot) -> int:
        """Continue training from ``snapshot``'s weights; returns the new ``branch``.

        Applied before the next step, or at once when nothing is training.  Snapshots taken
        before the roll back are never published after it returns; one the caller received
        just before (a queued signal still on its way) has a smaller ``branch`` than the one
        returned, so the app can tell it from the snapshots that follow the roll back.  A stop
        right after it still rolls back."""
        ck = snapshot.checkpoint
        with self._lock:
            kind = self._kind
            if kind is not None and (ck.normalization.reads_raw != kind[0] or ck.in_channels != kind[1]):
                raise TrainingDataError(f"checkpoint #{snapshot.index} of run {snapshot.run} reads other image "
                                        "channels than this training: it cannot continue from it.")
            self._branch += 1
            self._rollback = snapshot
            branch = self._branch
            idle = not self._running
        if idle:  # nobody else will apply it (a run starting now would, first: either is fine)
            with self._work:
                self._apply_pending(strokes=False)
        return branch

    def prepare(self) -> None:
        """Take the strokes given and build the model now, on the caller's thread (the command line
        does, so the time that takes is counted before its budget for training is set)."""
        with self._lock:
            if self._running:
                return
        with self._work:
            self._apply_pending()

    @property
    def branch(self) -> int:
        with self._lock:
            return self._branch

    def best(self) -> LiveSnapshot | None:
        """The kept snapshot with the best held-out score on the current held-out set (the newer
        of equal ones); the newest when no snapshot has one.  Never a snapshot that scores worse
        on the same strokes than another kept one."""
        with self._lock:
            kept = list(self.snapshots)
            scores = dict(self._scores)
        scored = [s for s in kept if s.uid in scores]
        if scored:
            return max(scored, key=lambda s: (scores[s.uid], s.index))
        return kept[-1] if kept else None

    def score(self, snapshot: LiveSnapshot) -> float | None:
        """``snapshot``'s held-out mIoU on the current held-out set, if the trainer scored it."""
        with self._lock:
            return self._scores.get(snapshot.uid)

    @property
    def steps(self) -> int:
        return self._steps

    @property
    def held_out_set(self) -> int | None:
        return self._held_set

    # ------------------------------------------------------------------ training
    def run(self, on_snapshot: Callable[[LiveSnapshot], None], should_stop: Callable[[], bool],
            is_paused: Callable[[], bool] = lambda: False, time_budget: float | None = None) -> LiveSnapshot | None:
        """Train until ``should_stop()`` or ``time_budget`` seconds of training; returns ``best()``.

        Blocking; training runs on a thread of its own (see the module's docstring), which also
        calls ``on_snapshot``, ``should_stop`` and ``is_paused``: keep them quick and thread-safe.
        Pause is checked between steps (each well under a second), a snapshot is published
        every ``snapshot_every`` seconds and at the end.  May be called again to go on."""
        with self._lock:
            if self._running:
                raise RuntimeError("this trainer is already running")
            self._running = True
        try:
            def work(interrupted: threading.Event) -> None:
                stop = lambda: interrupted.is_set() or should_stop()  # noqa: E731
                with self._work:
                    self._apply_pending()
                if self._data_missing():
                    raise TrainingDataError("no strokes to train on: call set_data first.")
                self._loop(on_snapshot, stop, is_paused, time_budget)

            run_in_own_thread(work, self.config.threads, self.config.nice)
        finally:
            self._finish()
        return self.best()

    def _finish(self) -> None:
        """Leave ``run``: a roll back asked for at the last moment still happens."""
        with self._lock:
            self._running = False
        with self._work:
            self._apply_pending(strokes=False)

    def _data_missing(self) -> bool:
        return self.model is None or not self._images

    def _loop(self, on_snapshot, should_stop, is_paused, time_budget) -> None:
        cfg = self.config
        losses: list[float] = []
        last_snapshot = self._seconds
        while not should_stop():
            if time_budget is not None and self._seconds >= time_budget:
                break
            if is_paused():
                with self._work:
                    if self._apply_pending():  # a roll back shows at once, even while paused
                        losses = []
                time.sleep(0.05)
                continue
            with self._work:
                # new strokes cost a moment to take (more on big images): while training, take them
                # only once training has had at least as long since, so painting never starves it
                if self._apply_pending(strokes=self._seconds - self._data_seconds >= self._data_cost):
                    losses = []
                t0 = time.perf_counter()
                try:
                    losses.append(self._step())
                except OOM_ERRORS + (RuntimeError,) as exc:
                    if not _is_oom(exc):
                        raise
                    if not self._after_oom():
                        return  # the weights are the last snapshot's again: nothing new to publish
                    losses = []
                    continue
                self._seconds += time.perf_counter() - t0
                self._steps += 1
                if self._seconds - last_snapshot >= cfg.snapshot_every:
                    self._publish(losses, on_snapshot)
                    losses, last_snapshot = [], self._seconds
        with self._work:
            if self._apply_pending(strokes=False):
                return  # rolled back at the last moment: the weights are that snapshot's
            if losses or self._position is None:
                self._publish(losses, on_snapshot)

    def _step(self) -> float:
        x, y = self.sampler.batch(self.batch)
        x = self.normalize(x.to(self.device)).contiguous()
        y = y.to(self.device).long()
        logits = self.model(x)
        loss = F.cross_entropy(logits.float(), y, weight=self.weights, ignore_index=IGNORE)
        if self.config.dice:
            loss = loss + dice_loss(logits, y, self.model.num_classes)
        if self.config.lovasz:
            loss = loss + lovasz_softmax(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        lr = self.config.lr
        if self.config.lr_decay > 0:
            lr = lr / math.sqrt(1 + self._clock / self.config.lr_decay)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        self._clock += 1
        if self.config.anchor > 0 and self._anchor:
            with torch.no_grad():
                for name, p in self.model.named_parameters():
                    start = self._anchor.get(name)
                    if start is not None:
                        p.sub_(p - start, alpha=lr * self.config.anchor)
        if self.config.average > 0:
            self._update_average()
        return float(loss.detach())

    def _update_average(self) -> None:
        """Polyak averaging: high-lr steps jitter the weights, their average predicts more steadily."""
        state = self.model.state_dict()
        if self._average is None:
            self._average = {k: v.detach().clone() for k, v in state.items()}
            self._averaged = 0
            return
        self._averaged += 1
        decay = min(self.config.average, (1 + self._averaged) / (10 + self._averaged))  # short memory at first
        if self.config.average_growth > 0:
            decay = max(decay, 1 - 1 / (1 + self.config.average_growth * self._averaged))
        with torch.no_grad():
            for key, value in state.items():
                if value.is_floating_point():
                    self._average[key].mul_(decay).add_(value, alpha=1 - decay)
                else:
                    self._average[key].copy_(value)

    def _after_oom(self) -> bool:
        """Back to the last good weights with half the batch; False when nothing smaller is left."""
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        if self._position is not None:
            self._load(self._position.checkpoint.state_dict)
        if self.batch <= 1:
            self.log("out of memory even with one crop per step: training stopped, the last snapshot is kept")
            return False
        self.batch = max(1, self.batch // 2)
        self.log(f"out of memory: back to the last snapshot, going on with {self.batch} crops per step")
        return True

    # ------------------------------------------------------------------ data and model
    def _fitting(self, items, names, kind):
        """The images the model can read, one sentence per image left out, and the input kind
        (raw channels or not, how many): the model's once it exists, else the first image's."""
        picked = self.config.channels
        if kind is None:
            init_raw = self.init is not None and self.init.normalization.reads_raw
            raw = picked is not None or init_raw or not all(raw_input.is_photo(px) for px, _ in items)
            first = next((px for px, m in items if (np.asarray(m) != IGNORE).any()), items[0][0] if items else None)
            channels = (3 if not raw else len(picked) if picked is not None
                        else first.shape[2] if first is not None else 3)
            kind = (raw, channels)
        raw, channels = kind
        kept, kept_names, left_out = [], [], []
        for (px, mask), name in zip(items, names):
            if not raw and raw_input.is_photo(px) and px.shape[2] == 1:
                px = np.repeat(px, 3, axis=2)  # an 8-bit grey picture: its RGB view, as the app shows it
            have = px.shape[2]
            if not raw and not raw_input.is_photo(px):
                left_out.append(f"{name}: a {px.dtype} image with {have} channel{'s' if have != 1 else ''}, but the "
                                "model reads 8-bit RGB pictures: left out of training.")
            elif picked is not None and max(picked) >= have:
                left_out.append(f"{name}: has {have} channel{'s' if have != 1 else ''}, no channel {max(picked)} "
                                "for --channels: left out of training.")
            elif picked is None and have != channels:
                left_out.append(f"{name}: has {have} channel{'s' if have != 1 else ''} but the model reads "
                                f"{channels}: left out of training.")
            else:
                kept.append((px, mask))
                kept_names.append(name)
        return kept, kept_names, left_out, kind

    def _start_description(self, kind: tuple[bool, int]) -> str:
        """What the weights start from, in words the app and the saved record use."""
        if not self._init_fits(kind):
            return SCRATCH
        from core.resources import BUILTIN_MODELS

        name = self.config.init
        return f"the built-in model {name}" if name in BUILTIN_MODELS else os.path.basename(str(name))

    def _init_fits(self, kind: tuple[bool, int]) -> bool:
        """The start model reads what the images give: the same channels, raw or 8-bit alike.
        A model for 8-bit RGB gives a raw-channel one nothing to build on (its first layer does
        not fit, and the layers after it expect what that layer made of 8-bit colour): from
        scratch, one 16-bit fluorescence scene learnt better (bench/strokes.py, nuclei)."""
        raw, channels = kind
        init = self.init
        return init is not None and init.in_channels == channels and init.normalization.reads_raw == raw

    def _apply_pending(self, strokes: bool = True) -> bool:
        """Take new strokes (unless ``strokes`` is False) and a roll-back request (the caller
        holds ``_work``); True when anything changed."""
        with self._lock:
            pending = self._pending if strokes else None
            if strokes:
                self._pending = None
            rollback, self._rollback = self._rollback, None
        if pending is not None:
            t0, first = time.perf_counter(), self.model is None
            self._use(pending)
            if self._average is not None:  # new strokes: the average's window shrinks to its short memory,
                self._averaged = min(self._averaged, AVERAGE_RESTART)  # so they show within seconds
            # (building the model the first time is not what taking strokes costs)
            self._data_cost = 0.0 if first else min(1.0, time.perf_counter() - t0)
            self._data_seconds = self._seconds
        if rollback is not None:
            self._ensure_model(rollback.checkpoint.num_classes, rollback.checkpoint.in_channels)
            self._load(rollback.checkpoint.state_dict)
            self._position = rollback
            self.log(f"rolled back to snapshot {rollback.index} ({rollback.seconds:.0f} s)")
        return pending is not None or rollback is not None

    def _use(self, pending: _Pending) -> None:
        strokes = pending.strokes
        if pending.raw:
            self.norm = self._raw_normalization(pending.channels)
        else:
            self.norm = self.init.normalization if self.init and not self.init.normalization.reads_raw \
                else Normalization()
        images = []
        for (px, mask), name in zip(strokes.items, strokes.names):
            images.append(self._image(name, px, mask, pending.raw, pending.scale_by.get(name)))
        self._images = {im.name: im for im in images}  # images no longer given are dropped
        self._names = [im.name for im in images]
        held = [(i, y0, x0, tile) for i, im in enumerate(images) for y0, x0, tile in im.held]
        trained = [im for im in images if im.counts.any()]
        if np.count_nonzero(sum(im.counts for im in trained)) < 2:  # held-out strokes would leave one class:
            trained = [_unheld(im, self.rng) for im in images]  # train on them all this time
            held = []
        self._ensure_model(strokes.needed_classes, pending.channels)
        named = pending.classes
        self.classes = normalize_classes(named, self.model.num_classes) if named \
            else default_classes(self.model.num_classes)
        data = [(im.pixels, im.train) for im in trained]
        self.sampler = StrokeSampler(data, self.config.patch, self.rng, augment=self.config.augment,
                                     centres=[im.centres for im in trained])
        counts = sum(im.counts for im in trained)[:self.model.num_classes]
        self.weights = weights_of_counts(counts).to(self.device)
        self._annotated = int(sum(int(im.counts.sum()) for im in trained))
        self._train_images = len(data)
        self._set_held(held, images, strokes)

    def _raw_normalization(self, count: int) -> Normalization:
        cfg = self.config
        if cfg.channels is None:
            return raw_input.raw_normalization([], None, self.init, count)
        names = list(cfg.channel_names) or [f"channel {c}" for c in range(max(cfg.channels) + 1)]
        norm = Normalization.for_raw_channels(count, channels=list(cfg.channels),
                                              names=[names[c] if c < len(names) else f"channel {c}"
                                                     for c in cfg.channels])
        if self.init is not None and self.init.normalization.reads_raw:
            norm.percentiles = self.init.normalization.percentiles
        return norm

    def _image(self, name: str, px: np.ndarray, mask: np.ndarray, raw: bool, whole=None) -> _Image:
        """The image's training form, reusing what the last call made when nothing changed; raw
        channels scaled by the statistics of ``whole`` (the image the item was cut from) when given."""
        old = self._images.get(name)
        if raw:
            if old is not None and old.source is px:
                pixels = old.pixels  # scaled once per image, not at every pause in the painting
            else:
                picked = px if self.config.channels is None else px[..., list(self.config.channels)]
                stats = None
                if whole is not None:  # measured once per source and kept (core.model.normalize)
                    stats = source_statistics(whole, self.norm.percentiles)
                    stats = stats if self.config.channels is None else stats.pick(self.config.channels)
                pixels = raw_input.scaled(picked, self.norm, stats)
        else:
            pixels = px
        if old is not None and old.mask.shape == mask.shape and np.array_equal(old.mask, mask):
            return _Image(name, px, pixels, old.mask, old.train, old.held, old.held_pixels, old.held_digest,
                          old.centres, old.counts)
        where, classes = self.roles.held_pixels(name, mask)
        if where.size == 0:
            return _Image(name, px, pixels, mask, mask, [], 0, b"", crop_centres(mask, self.rng), _counts(mask))
        train = np.array(mask, np.uint8, copy=True)
        train.reshape(-1)[where] = IGNORE
        w = mask.shape[1]
        ys, xs = np.divmod(where, w)
        tiles: dict[tuple[int, int], np.ndarray] = {}
        for y, x, c in zip(ys, xs, classes):
            key = (int(y) // SCORE_TILE * SCORE_TILE, int(x) // SCORE_TILE * SCORE_TILE)
            tile = tiles.get(key)
            if tile is None:
                tile = tiles[key] = np.full((SCORE_TILE, SCORE_TILE), IGNORE, np.uint8)
            tile[int(y) - key[0], int(x) - key[1]] = c
        digest = hashlib.blake2b(where.astype(np.int64).tobytes() + classes.astype(np.uint8).tobytes(),
                                 digest_size=16).digest()
        return _Image(name, px, pixels, mask, train, [(y0, x0, t) for (y0, x0), t in sorted(tiles.items())],
                      int(where.size), digest, crop_centres(train, self.rng), _counts(train))

    def _set_held(self, held, images: list[_Image], strokes: StrokeSet) -> None:
        """The tiles to score on, and their set's number; snapshots kept are scored again when it changes."""
        held_classes = {int(c) for _, _, _, tile in held for c in _present(tile)}
        if len(held_classes) < 2:
            held, number = [], None  # held-out strokes of one class or none: no score yet
        else:
            fingerprint = hashlib.blake2b(b"".join(im.name.encode() + b"\0" + im.held_digest
                                                   for im in images if im.held), digest_size=16).hexdigest()
            number = _held_set_number(fingerprint)
        self._held = held
        self._held_pixels = sum(im.held_pixels for im in images) if number is not None else 0
        if number != self._held_set:
            # the best so far and the newest are scored again on the new set (the others are no
            # longer compared: a score on other strokes says nothing against these)
            self._held_set = number
            with self._lock:
                best, kept = self.best(), list(self.snapshots)
            again = {s.uid: s for s in ([best] if best is not None else []) + kept[-1:]}
            scores = {uid: self._held_out_score(s.checkpoint) for uid, s in again.items()} if number is not None else {}
            with self._lock:
                self._scores = {uid: v for uid, v in scores.items() if v is not None}

    def _ensure_model(self, needed: int, channels: int) -> None:
        """Build the model on first use; widen its classifier when strokes name a new class id."""
        if self.model is not None:
            if needed > self.model.num_classes:
                self._widen(needed)
            return
        with torch.random.fork_rng(devices=[]):  # fresh layers from the seed, the process's generator untouched
            torch.manual_seed(self.config.seed)
            model = build_model(self.config.arch, channels, needed)
        if self.started_from != SCRATCH and self.init is not None:
            state = dict(self.init.state_dict)
            if self.init.num_classes != needed:  # the user's classes: keep the features, fresh classifier
                state = {k: v for k, v in state.items() if not k.startswith("conv.")}
            model.load_state_dict(state, strict=False)
        self.model = model.to(self.device).train()
        self._average = None
        if self.started_from != SCRATCH and self.init is not None:  # what the anchor pulls towards
            self._anchor = {k: v.detach().clone() for k, v in self.model.named_parameters()
                            if not k.startswith("conv.") and k in self.init.state_dict
                            and self.init.state_dict[k].shape == v.shape}
        self.normalize = Normalizer(self.norm, self.device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.config.lr,
                                           weight_decay=self.config.weight_decay)

    def _widen(self, needed: int) -> None:
        """A new class joins the running training: the classifier gets rows for it, every weight
        learnt so far (and the optimiser's moments, and the running average) is kept."""
        old = self.model.conv
        new = torch.nn.Conv2d(old.in_channels, needed, kernel_size=1).to(self.device)
        with torch.no_grad():
            new.weight[:old.out_channels] = old.weight
            new.bias[:old.out_channels] = old.bias
        for group in self.optimizer.param_groups:
            group["params"] = [new.weight if p is old.weight else new.bias if p is old.bias else p
                               for p in group["params"]]
        for before, after in ((old.weight, new.weight), (old.bias, new.bias)):
            state = self.optimizer.state.pop(before, None)
            if state:
                for key in ("exp_avg", "exp_avg_sq"):
                    grown = torch.zeros_like(after)
                    grown[:before.shape[0]] = state[key]
                    state[key] = grown
                self.optimizer.state[after] = state
        if self._average is not None:
            for key, value in (("conv.weight", new.weight), ("conv.bias", new.bias)):
                grown = value.detach().clone()
                grown[:old.out_channels] = self._average[key]
                self._average[key] = grown
        self.model.conv = new
        self.model.num_classes = needed
        self.log(f"class {needed - 1} joined the training ({needed} classes now)")

    def _load(self, state: dict[str, torch.Tensor]) -> None:
        """Weights of an earlier snapshot; classes added since keep their current classifier rows."""
        current, state = self.model.state_dict(), dict(state)
        for key in ("conv.weight", "conv.bias"):
            if state[key].shape[0] < current[key].shape[0]:
                merged = current[key].detach().clone()
                merged[:state[key].shape[0]] = state[key]
                state[key] = merged
        self.model.load_state_dict(state, strict=True)
        self._average = None
        for group_state in self.optimizer.state.values():  # fresh moments: the old ones belong elsewhere
            group_state.clear()

    # ------------------------------------------------------------------ snapshots
    def _publish(self, losses: list[float], on_snapshot: Callable[[LiveSnapshot], None]) -> None:
        """Take a snapshot and hand it out, unless a roll back was asked for since its weights were
        taken (then it would undo the roll back)."""
        with self._lock:
            branch = self._branch
        snap = self._snapshot(losses, branch)
        with self._lock:
            if branch != self._branch or self._rollback is not None:
                return
            snap.index = self._made
            self._made += 1
            if snap.held_out_miou is not None:
                self._scores[snap.uid] = snap.held_out_miou
            self.snapshots.append(snap)
            self._trim()
            best = self.best()
            snap.best_uid = best.uid if best is not None and best.uid in self._scores else None
            self._position = snap
            on_snapshot(snap)

    def _trim(self) -> None:
        """The newest ``keep`` snapshots and the best one (the caller holds ``_lock``)."""
        if len(self.snapshots) <= self.config.keep:
            return
        best = self.best()
        self.snapshots = [s for i, s in enumerate(self.snapshots)
                          if i >= len(self.snapshots) - self.config.keep or s is best]
        kept = {s.uid for s in self.snapshots}
        self._scores = {uid: v for uid, v in self._scores.items() if uid in kept}

    def _snapshot(self, losses: list[float], branch: int) -> LiveSnapshot:
        weights = self._average if self._average is not None else self.model.state_dict()
        state = {k: v.detach().to("cpu", copy=True) for k, v in weights.items()}
        record = {"training": {
            "live": True, "config": {k: v for k, v in vars(self.config).items()},
            "init": None if self.started_from == SCRATCH else self.config.init,
            "started_from": self.started_from,
            "images": self._train_images, "image_names": list(self._names), "annotated_pixels": self._annotated,
            "held_out_pixels": self._held_pixels, "steps": self._steps, "seconds": round(self._seconds, 1),
            "device": device_label(self.device), "torch": torch.__version__}}
        checkpoint = Checkpoint(self.config.arch, self.model.in_channels, self.model.num_classes, state,
                                list(self.classes), self.norm, record)
        return LiveSnapshot(-1, self._seconds, self._steps, self._annotated, self._train_images,
                            float(np.mean(losses)) if losses else math.nan, self._held_out_score(checkpoint),
                            checkpoint, run=self.run_id, held_out_set=self._held_set,
                            held_out_pixels=self._held_pixels, branch=branch)

    def _held_out_score(self, checkpoint: Checkpoint) -> float | None:
        """The snapshot's mIoU over the held-out strokes' classes, predicted in the tiles that hold
        them, each with the receptive-field margin around it (so as a whole image would be)."""
        if not self._held:
            return None
        acc = IoUAccumulator(checkpoint.num_classes)
        margin = HALO[self.config.arch]
        model = checkpoint.build().to(self.device).eval()
        images = list(self._images.values())
        tiles = self._held[::max(1, -(-len(self._held) // SCORE_TILES))]
        by_shape: dict[tuple, list] = {}
        for index, t0y, t0x, tile in tiles:
            h, w = images[index].pixels.shape[:2]
            y0, y1 = max(0, t0y - margin), min(h, t0y + SCORE_TILE + margin)
            x0, x1 = max(0, t0x - margin), min(w, t0x + SCORE_TILE + margin)
            by_shape.setdefault((y1 - y0, x1 - x0), []).append((index, y0, x0, t0y, t0x, tile))
        with torch.inference_mode():
            for (wh, ww), group in by_shape.items():
                for k in range(0, len(group), SCORE_BATCH):
                    part = group[k:k + SCORE_BATCH]
                    windows = np.stack([images[i].pixels[y0:y0 + wh, x0:x0 + ww] for i, y0, x0, *_ in part])
                    x = self.normalize(torch.from_numpy(windows).to(self.device)).contiguous()
                    preds = model(x).argmax(1).cpu().numpy()
                    for pred, (_, y0, x0, t0y, t0x, tile) in zip(preds, part):
                        inner = pred[t0y - y0:t0y - y0 + SCORE_TILE, t0x - x0:t0x - x0 + SCORE_TILE]
                        acc.update(inner, tile[:inner.shape[0], :inner.shape[1]])
        present = [int(c) for c in np.flatnonzero(acc.confusion.sum(1))]
        return acc.mean_iou(present)


def _counts(mask: np.ndarray) -> np.ndarray:
    return annotated_counts(mask)


def _present(mask: np.ndarray) -> list[int]:
    return [int(c) for c in np.flatnonzero(_counts(mask))]


def _unheld(im: _Image, rng: np.random.Generator) -> _Image:
    """``im`` with its held-out strokes trained on (for the moment)."""
    return _Image(im.name, im.source, im.pixels, im.mask, im.mask, [], 0, b"", crop_centres(im.mask, rng),
                  _counts(im.mask))


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, OOM_ERRORS) or "out of memory" in str(exc).lower()
