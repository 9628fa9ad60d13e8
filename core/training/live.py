"""Live training: a UNet learns from a user's strokes while they keep painting.

``LiveTrainer.run`` trains on a worker thread until told to stop (or a time budget runs out),
publishing a complete model every ``snapshot_every`` seconds, so a view can show what the newest
weights predict.  The user may add strokes (``set_data``), pause, or roll back to any earlier
snapshot while it runs.  Crops come from core.training.sparse.StrokeSampler (centred on strokes,
classes balanced) through the loop's own crop and normalisation path (core.training.loop), so
a change in how pixels become network input applies here too.

The recipe (LiveConfig's defaults, each chosen by bench/strokes.py on texture scenes with under
1 % of pixels annotated, against scikit-image's random-forest pixel classifier): fine-tune the
built-in UNetSmall (a fresh classifier for the user's classes) on 8 crops of 48x48 per step, each
centred near a stroke, AdamW at lr 1e-2, flips and rotations only (photometric augmentation
hurt: the classes may differ by colour and fine texture), and publish a running average of the
weights, which predicts more steadily than the jittery weights of the last step.

Held-out score: once every annotated class has a few strokes, some whole strokes are held out
of training and each snapshot is scored on them (mIoU over the annotated classes).  Running out
of memory rolls back to the last snapshot, halves the batch and goes on; at batch 1 it stops,
and the last good snapshot is what ``run`` returns.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from core.classes import ClassInfo, default_classes, normalize_classes
from core.metrics import IoUAccumulator
from core.model.checkpoints import Checkpoint, Normalization
from core.model.networks import HALO, build_model
from core.segment.inference import OOM_ERRORS as DEVICE_OOM_ERRORS, device_label, resolve_device
from core.training import raw_input
from core.training.loop import IGNORE, Normalizer, TrainingDataError, _resolve_checkpoint, class_weights
from core.training.sparse import StrokeSampler, StrokeSet, hold_out, stroke_set

OOM_ERRORS = DEVICE_OOM_ERRORS + (MemoryError,)  # the device's (as inference catches them) and the host's
SCORE_TILE = 256  # held-out strokes are scored tile by tile (with the receptive-field margin)


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
    threads: int = field(default_factory=default_threads)  # torch threads for training; a core stays free
    snapshot_every: float = 3.0  # seconds of training between published snapshots
    augment: bool = False  # random scale and photometric change per crop (core.training.augment): hurt here
    weight_decay: float = 1e-4
    average: float = 0.9  # >0: publish a moving average of the weights over about 1 / (1 - average) steps
    seed: int = 0
    device: str = "auto"


_UIDS = itertools.count(1)  # checkpoint identities, unique for the process (never reused across runs)
_RUNS = itertools.count(1)  # one number per LiveTrainer: a restart is a new run


@dataclass
class LiveSnapshot:
    index: int  # its place in its own run (0, 1, ...): shown to the user with the run
    seconds: float  # training time when taken (pauses not counted)
    steps: int
    annotated_pixels: int  # annotated pixels trained on (held-out strokes not counted)
    images: int
    loss: float  # mean training loss since the previous snapshot
    held_out_miou: float | None  # None when too few strokes to hold some out
    checkpoint: Checkpoint  # a complete model (weights copied), usable by core.segment.inference.Segmenter
    run: int = 0  # the LiveTrainer.run_id that made it
    uid: int = field(default_factory=lambda: next(_UIDS))  # unique for the session: what the app keys on
    held_out_set: int | None = None  # which held-out set the score was taken on (same number: comparable)


@dataclass
class _Data:
    strokes: StrokeSet
    train: list[tuple[np.ndarray, np.ndarray]]
    held: list[tuple[np.ndarray, np.ndarray]] | None  # (pixels, held-out mask) per image with held-out strokes


class LiveTrainer:
    """One model trained from strokes; ``run`` from a worker thread, the rest from any thread."""

    def __init__(self, config: LiveConfig | None = None, classes: list[ClassInfo] | None = None,
                 log: Callable[[str], None] | None = None):
        self.config = config or LiveConfig()
        if self.config.patch % 8 or self.config.patch < 16:
            raise ValueError(f"patch must be a multiple of 8 and at least 16, got {self.config.patch}")
        self.named = list(classes) if classes else None
        self.log = log or (lambda message: None)
        self.device = resolve_device(self.config.device)
        self.init = _resolve_checkpoint(self.config.init) if self.config.init else None
        if self.init is not None and self.init.arch != self.config.arch:
            raise TrainingDataError(f"{self.config.init}: is UNet{self.init.arch.title()}, "
                                    f"cannot initialise UNet{self.config.arch.title()}.")
        self.norm = self.init.normalization if self.init else Normalization()
        self.rng = np.random.default_rng(self.config.seed)
        self.run_id = next(_RUNS)
        self.snapshots: list[LiveSnapshot] = []
        self.skipped: list[str] = []  # images of the latest set_data without any stroke
        self.model: torch.nn.Module | None = None
        self.classes: list[ClassInfo] = []
        self.batch = self.config.batch
        self._lock = threading.Lock()
        self._pending: StrokeSet | None = None
        self._rollback: LiveSnapshot | None = None
        self._data: _Data | None = None
        self._steps, self._seconds = 0, 0.0
        self._average: dict[str, torch.Tensor] | None = None

    # ------------------------------------------------------------------ any thread
    def set_data(self, items: list[tuple[np.ndarray, np.ndarray]], names: list[str] | None = None) -> None:
        """New strokes: (pixels HxWxC, index mask HxW uint8 with 255 = not annotated) per image.

        Thread-safe; the worker picks them up before its next step.  It counts every mask's
        pixels, so for a whole slide pass the regions around the strokes, not the slide.  Raises
        TrainingDataError (one sentence) when fewer than two classes are annotated, or an id is
        beyond the class list given to the trainer (naming the image)."""
        strokes = stroke_set(items, names, len(self.named) if self.named else None)
        with self._lock:
            self._pending = strokes
            self.skipped = strokes.skipped

    def roll_back(self, snapshot: LiveSnapshot) -> None:
        """Continue training from ``snapshot``'s weights (applied before the next step)."""
        with self._lock:
            self._rollback = snapshot
        if not self._running:  # nobody else will: apply it now
            self._apply_pending()

    def best(self) -> LiveSnapshot | None:
        """The snapshot with the best held-out score, else the newest."""
        scored = [s for s in self.snapshots if s.held_out_miou is not None]
        if scored:
            return max(scored, key=lambda s: (s.held_out_miou, s.index))
        return self.snapshots[-1] if self.snapshots else None

    # ------------------------------------------------------------------ worker thread
    _running = False

    def run(self, on_snapshot: Callable[[LiveSnapshot], None], should_stop: Callable[[], bool],
            is_paused: Callable[[], bool] = lambda: False, time_budget: float | None = None) -> LiveSnapshot | None:
        """Train until ``should_stop()`` or ``time_budget`` seconds of training; returns ``best()``.

        Blocking: call it from a worker thread.  Pause is checked between steps (each well under
        a second), a snapshot is published every ``snapshot_every`` seconds and at the end."""
        torch.set_num_threads(max(1, self.config.threads))  # the process's intra-op pool: inference shares it
        self._running = True
        try:
            self._apply_pending()
            if self._data is None:
                raise TrainingDataError("no strokes to train on: call set_data first.")
            self._loop(on_snapshot, should_stop, is_paused, time_budget)
        finally:
            self._running = False
        return self.best()

    def _loop(self, on_snapshot, should_stop, is_paused, time_budget) -> None:
        cfg = self.config
        losses: list[float] = []
        last_snapshot = self._seconds
        while not should_stop():
            if time_budget is not None and self._seconds >= time_budget:
                break
            if is_paused():
                self._apply_pending()  # a roll-back shows at once, even while paused
                time.sleep(0.05)
                continue
            if self._apply_pending():
                losses = []
            t0 = time.perf_counter()
            try:
                losses.append(self._step())
            except OOM_ERRORS + (RuntimeError,) as exc:
                if not _is_oom(exc):
                    raise
                if not self._after_oom():
                    return  # the weights are the last snapshot's again: nothing new to publish
                continue
            self._seconds += time.perf_counter() - t0
            self._steps += 1
            if self._seconds - last_snapshot >= cfg.snapshot_every:
                on_snapshot(self._snapshot(losses))
                losses, last_snapshot = [], self._seconds
        if losses or not self.snapshots:
            on_snapshot(self._snapshot(losses))

    def _step(self) -> float:
        x, y = self.sampler.batch(self.batch)
        x = self.normalize(x.to(self.device)).contiguous()
        y = y.to(self.device).long()
        logits = self.model(x)
        loss = F.cross_entropy(logits.float(), y, weight=self.weights, ignore_index=IGNORE)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
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
        if self.snapshots:
            self._load(self.snapshots[-1].checkpoint.state_dict)
        if self.batch <= 1:
            self.log("out of memory even with one crop per step: training stopped, the last snapshot is kept")
            return False
        self.batch = max(1, self.batch // 2)
        self.log(f"out of memory: back to the last snapshot, going on with {self.batch} crops per step")
        return True

    # ------------------------------------------------------------------ data and model
    def _apply_pending(self) -> bool:
        """Take new strokes and a roll-back request; True when anything changed."""
        with self._lock:
            strokes, self._pending = self._pending, None
            rollback, self._rollback = self._rollback, None
        if strokes is not None:
            self._use(strokes)
        if rollback is not None:
            self._ensure_model(rollback.checkpoint.num_classes, rollback.checkpoint.in_channels)
            self._load(rollback.checkpoint.state_dict)
            self.classes = list(rollback.checkpoint.classes)
            self.log(f"rolled back to snapshot {rollback.index} ({rollback.seconds:.0f} s)")
        return strokes is not None or rollback is not None

    def _use(self, strokes: StrokeSet) -> None:
        items = self._network_inputs(strokes.items)
        split = hold_out([m for _, m in items], np.random.default_rng(self.config.seed))
        if split is None:
            train, held = items, None
        else:
            train = [(px, m) for (px, _), m in zip(items, split[0])]
            held = [(px, m) for (px, _), m in zip(items, split[1]) if (m != IGNORE).any()]
        self._ensure_model(strokes.needed_classes, items[0][0].shape[2])
        self._data = _Data(strokes, train, held)
        self.sampler = StrokeSampler(train, self.config.patch, self.rng, augment=self.config.augment)
        self.weights = class_weights(train, self.num_classes).to(self.device)

    def _network_inputs(self, items: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """The epoch trainer's rule (core.training.raw_input): 8-bit grey/RGB photos as they are, with
        the fixed normalisation; anything else (16-bit, float, 2 or 4+ channels, or a raw-channel
        start model) as its raw channels, each image scaled once by its own percentiles, the
        normalisation recorded in every snapshot so Segmenter scales new images the same way."""
        init_raw = self.init is not None and self.init.normalization.reads_raw
        if not init_raw and all(raw_input.is_photo(px) for px, _ in items):
            norm = self.init.normalization if self.init else Normalization()
        else:
            counts = {px.shape[2] for px, _ in items}
            if len(counts) > 1:
                raise TrainingDataError(f"the images with strokes have {' and '.join(map(str, sorted(counts)))} "
                                        "channels; live training needs images with the same channels.")
            count = counts.pop()
            picks = raw_input.start_picks(self.init, [count])  # a start model's recorded channel order
            norm = raw_input.raw_normalization([], picks, self.init, count if picks is None else len(picks))
            items = [(raw_input.scaled(px if picks is None else px[..., picks], norm), m) for px, m in items]
        if self.model is not None and (norm != self.norm or self.model.in_channels != items[0][0].shape[2]):
            self.log("the images' channels changed: training starts again on them")
            self.model = None
        self.norm = norm
        return items

    @property
    def num_classes(self) -> int:
        return self.model.num_classes if self.model is not None else 0

    def _ensure_model(self, needed: int, channels: int | None = None) -> None:
        """Build the model on first use; widen its classifier when strokes name a new class id."""
        if self.model is not None and needed <= self.model.num_classes:
            return
        channels = channels or (self.model.in_channels if self.model is not None else 3)
        old = self.model
        model = build_model(self.config.arch, channels, needed)
        if old is not None:
            state = old.state_dict()
            head = {k: v for k, v in state.items() if k.startswith("conv.")}
            model.load_state_dict({k: v for k, v in state.items() if not k.startswith("conv.")}, strict=False)
            with torch.no_grad():
                model.conv.weight[:old.num_classes] = head["conv.weight"]
                model.conv.bias[:old.num_classes] = head["conv.bias"]
        elif self.init is not None and self.init.in_channels == channels:
            state = dict(self.init.state_dict)
            if self.init.num_classes != needed:  # the user's classes: keep the features, fresh classifier
                state = {k: v for k, v in state.items() if not k.startswith("conv.")}
            model.load_state_dict(state, strict=False)
        self.model = model.to(self.device).train()
        self._average = None
        # the user's names, never the start model's: its classes are not the user's task
        self.classes = normalize_classes(self.named, needed) if self.named else default_classes(needed)
        self.normalize = Normalizer(self.norm, self.device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.config.lr,
                                           weight_decay=self.config.weight_decay)

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
    def _snapshot(self, losses: list[float]) -> LiveSnapshot:
        data = self._data
        weights = self._average if self._average is not None else self.model.state_dict()
        state = {k: v.detach().to("cpu", copy=True) for k, v in weights.items()}
        trained = int(sum(int((m != IGNORE).sum()) for _, m in data.train))
        record = {"training": {
            "live": True, "config": {k: v for k, v in vars(self.config).items()},
            "images": len(data.train), "image_names": data.strokes.names, "annotated_pixels": trained, "steps": self._steps,
            "seconds": round(self._seconds, 1), "device": device_label(self.device), "torch": torch.__version__}}
        checkpoint = Checkpoint(self.config.arch, self.model.in_channels, self.model.num_classes, state,
                                list(self.classes), self.norm, record)
        snap = LiveSnapshot(len(self.snapshots), self._seconds, self._steps, trained, len(data.train),
                            float(np.mean(losses)) if losses else math.nan, self._held_out_score(checkpoint),
                            checkpoint, run=self.run_id)
        self.snapshots.append(snap)
        return snap

    def _held_out_score(self, checkpoint: Checkpoint) -> float | None:
        """The snapshot's mIoU over the held-out strokes' classes, predicted around each image's held-out strokes."""
        held = self._data.held if self._data else None
        if not held:
            return None
        acc = IoUAccumulator(checkpoint.num_classes)
        margin = HALO[self.config.arch]
        model = checkpoint.build().to(self.device).eval()
        with torch.inference_mode():
            for pixels, mask in held:
                for ty, tx in _tiles_with_strokes(mask):
                    h, w = mask.shape
                    t0y, t0x = ty * SCORE_TILE, tx * SCORE_TILE
                    y0, y1 = max(0, t0y - margin), min(h, t0y + SCORE_TILE + margin)
                    x0, x1 = max(0, t0x - margin), min(w, t0x + SCORE_TILE + margin)
                    window = np.array(pixels[y0:y1, x0:x1])  # a writable copy for torch
                    x = self.normalize(torch.from_numpy(window)[None].to(self.device)).contiguous()
                    pred = model(x).argmax(1)[0].cpu().numpy()
                    inner = (slice(t0y - y0, t0y - y0 + SCORE_TILE), slice(t0x - x0, t0x - x0 + SCORE_TILE))
                    acc.update(pred[inner], mask[t0y:t0y + SCORE_TILE, t0x:t0x + SCORE_TILE])
        present = [int(c) for c in np.flatnonzero(acc.confusion.sum(1))]
        return acc.mean_iou(present)


def _tiles_with_strokes(mask: np.ndarray) -> list[tuple[int, int]]:
    """(row, column) of the SCORE_TILE tiles holding annotated pixels: strokes far apart on a
    slide are scored in their own tiles, never through the box around all of them."""
    h, w = mask.shape
    gh, gw = -(-h // SCORE_TILE), -(-w // SCORE_TILE)
    padded = np.full((gh * SCORE_TILE, gw * SCORE_TILE), IGNORE, np.uint8)
    padded[:h, :w] = mask
    cells = (padded.reshape(gh, SCORE_TILE, gw, SCORE_TILE) != IGNORE).any((1, 3))
    return [(int(y), int(x)) for y, x in zip(*np.nonzero(cells))]


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, OOM_ERRORS) or "out of memory" in str(exc).lower()
