"""Training a UNet on annotated images: the pipeline that produced the built-in weights.

Data: every image in ``images`` with a mask of the same stem in ``masks`` (any mask format the
core reads).  Each step draws random crops (images weighted by area), applies one of the 8
flips/rotations (and, with ``augment``, a random scale and photometric change: core.training.augment),
and minimises class-weighted cross-entropy (optionally + soft Dice) with
AdamW and a warm-up + cosine learning-rate schedule.  After every epoch the mean IoU over the
foreground classes is measured on whole images, and core.training.checkpoint_choice decides whether
that epoch's weights are kept: with fewer than 20 images nothing is held out and the last
epoch is kept; otherwise a smoothed, pixel-pooled validation mIoU picks the epoch.  A kept
checkpoint is written at once (atomically, metadata inside), so Ctrl+C or a cancel keeps it.
Everything random flows from ``seed``: the same command on the same device gives the same
weights.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
import torch.nn.functional as F

from core.training.annotation import IGNORE, TrainingDataError, annotated_images  # noqa: F401 (re-exported)
from core.training import raw_input
from core.training.augment import photometric, random_scale, scaled_crop
from core.training.raw_input import TrainingImage
from core.training.checkpoint_choice import EpochChooser, split_images
from core.model.checkpoints import Checkpoint, Normalization, load_checkpoint, save_checkpoint
from core.classes import ClassInfo, default_classes, normalize_classes
from core.segment.inference import device_label, resolve_device
from core.model.networks import build_model
from core.model.optimize import reuse_freed_memory
from core.metrics import IoUAccumulator

if TYPE_CHECKING:
    from core.segment.calibration import Calibration


@dataclass
class TrainConfig:
    images: Path
    masks: Path
    out: Path
    arch: str = "small"
    init: str | None = None  # "small", "large" or a weights file to fine-tune from
    epochs: int = 30
    patch: int = 128
    batch: int = 16
    lr: float = 3e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.1
    seed: int = 0
    dice: bool = False
    lovasz: bool = False  # add the Lovasz-softmax loss, a convex surrogate of the IoU itself
    augment: bool = False  # random scale and photometric change per crop (core.training.augment)
    teacher: str | None = None  # distil from this model's soft predictions ("large", or a path)
    kd_weight: float = 1.0
    kd_temperature: float = 2.0
    tta: bool | None = None  # segment with 8-fold test-time augmentation by default (None: as init, else no)
    calibrate: bool = True  # afterwards, fit edge refinement on the validation images (core.segment.calibration)
    device: str = "auto"
    steps_per_epoch: int | None = None  # default: enough crops to cover the training pixels once
    classes_file: Path | None = None
    command: str = ""
    channels: list[int] | None = None  # image channels the model reads, in order (--channels 0,2; None: all)


@dataclass
class EpochReport:
    epoch: int
    epochs: int
    train_loss: float
    val_miou: float
    per_class_iou: dict[int, float]
    best_miou: float
    improved: bool
    seconds: float
    held_out: bool = True  # False: val_miou was measured on the training images (nothing held out)


@dataclass
class TrainResult:
    path: Path | None
    best_miou: float
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    history: list[EpochReport] = field(default_factory=list)
    calibration: Calibration | None = None  # the saved model's fitted edge refinement, if fitted
    selection: str = ""  # the checkpoint rule used: "last-epoch" or "held-out" (core.training.checkpoint_choice)
    note: str = ""  # what was kept and why, in plain words, for the training dialog and the CLI


# --------------------------------------------------------------------------- data


def find_pairs(images_dir: Path, masks_dir: Path) -> list[tuple[Path, Path]]:
    """Each image with its mask, found by the app's naming rule (core.io.mask_naming.find_mask)."""
    from core.io.mask_naming import find_mask, image_stem

    pairs, missing = annotated_images(images_dir, masks_dir, find_mask)
    if missing:
        raise TrainingDataError(f"{missing[0]}: has no mask named {image_stem(Path(missing[0]))}.* in {masks_dir}.")
    return pairs


def load_pairs(pairs: list[tuple[Path, Path]], num_classes: int | None,
               classes: list[ClassInfo] | None = None,
               raw: bool = False) -> tuple[list[tuple[np.ndarray, np.ndarray]], int]:
    """Decode and validate every pair; returns the arrays and the class count they need.

    ``raw``: each image's raw pixels (every channel, its dtype) instead of its 8-bit RGB view.
    """
    images, labels, needed = read_pairs(pairs, num_classes, classes)
    return [(im.pixels if raw else im.rgb, lab) for im, lab in zip(images, labels)], needed


def read_pairs(pairs: list[tuple[Path, Path]], num_classes: int | None,
               classes: list[ClassInfo] | None = None) -> tuple[list[TrainingImage], list[np.ndarray], int]:
    """Decode and validate every pair: the images (both views), their labels, the class count needed.

    A stack (core.io.sources: planes) with its mask stack (core.io.label_stacks, the image's
    planes; 255 = not annotated) becomes one item per plane that has an annotated voxel, read
    plane by plane: its other planes are never decoded, so crops come only from annotated planes.
    """
    from core.io.images import ImageReadError
    from core.io.masks import MaskError

    def read(pair: tuple[Path, Path]) -> list[tuple[TrainingImage, np.ndarray]]:
        from core.training.stack_items import read_items

        return read_items(pair[0], pair[1], classes)

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:  # decoding releases the GIL
        futures = [pool.submit(read, pair) for pair in pairs]
    images, masks, highest = [], [], 0
    for (image_path, mask_path), future in zip(pairs, futures):
        try:
            items = future.result()
        except (ImageReadError, MaskError) as exc:
            raise TrainingDataError(str(exc)) from None
        for image, labels in items:
            top = highest_annotated(labels)
            if num_classes is not None and top >= num_classes:
                raise TrainingDataError(f"{mask_path.name}: contains class id {top} but the model has {num_classes} "
                                        f"classes (0-{num_classes - 1}).")
            highest = max(highest, top)
            images.append(image)
            masks.append(labels)
    return images, masks, max(highest + 1, 2)


def highest_annotated(labels: np.ndarray) -> int:
    """The largest class id in a mask, not counting IGNORE (255 = not annotated); 0 if none."""
    present = np.flatnonzero(np.bincount(labels.ravel(), minlength=256)[:IGNORE])
    return int(present[-1]) if present.size else 0


class CropSampler:
    """Random patch x patch crops with a random dihedral transform, as one uint8 batch.

    Normalisation happens on the training device (``Normalizer``) so the CPU only slices;
    raw-channel images arrive already scaled (core.training.raw_input) and stay float32.
    """

    def __init__(self, data: list[tuple[np.ndarray, np.ndarray]], patch: int, rng: np.random.Generator,
                 augment: bool = False):
        self.data, self.patch, self.rng, self.augment = data, patch, rng, augment
        areas = np.array([lab.size for _, lab in data], dtype=np.float64)
        self.cumulative = np.cumsum(areas / areas.sum())

    def positions(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Which image each crop comes from and its relative offset (fy, fx) in [0, 1)."""
        picks = np.minimum(np.searchsorted(self.cumulative, self.rng.random(size)), len(self.data) - 1)
        return picks, self.rng.random((size, 2))

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        p, rng = self.patch, self.rng
        picks, offsets = self.positions(size)
        turns = rng.integers(0, 8, size)
        first = self.data[0][0]
        x = np.empty((size, p, p, first.shape[2]), first.dtype)  # uint8 RGB, or scaled raw channels (float32)
        y = np.empty((size, p, p), np.uint8)
        for i, (index, (fy, fx), k) in enumerate(zip(picks, offsets, turns)):
            rgb, lab = self.data[index]
            # core.training.augment: a random scale, then a random photometric change, when asked
            img, tgt = scaled_crop(rgb, lab, p, fy, fx, random_scale(rng) if self.augment else 1.0, IGNORE)
            if self.augment:
                img = photometric(rng, img)
            img, tgt = np.rot90(img, k % 4), np.rot90(tgt, k % 4)
            if k >= 4:
                img, tgt = img[:, ::-1], tgt[:, ::-1]
            x[i], y[i] = img, tgt  # scaled_crop pads what lies beyond the image (pixels 0, labels ignored)
        return torch.from_numpy(x), torch.from_numpy(y)


class Normalizer:
    """uint8 NHWC batch -> normalised float NCHW (channels_last memory, which is free from NHWC).

    A raw-channel model's batches are scaled already (per image, core.training.raw_input): only
    the layout changes.
    """

    def __init__(self, norm: Normalization, device: torch.device):
        self.raw = norm.reads_raw
        self.mean = torch.tensor(norm.mean, device=device) * norm.value_range
        self.inv_std = 1.0 / (torch.tensor(norm.std, device=device) * norm.value_range)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.raw:
            return x.float().permute(0, 3, 1, 2)
        return ((x.float() - self.mean) * self.inv_std).permute(0, 3, 1, 2)


def class_weights(data: list[tuple[np.ndarray, np.ndarray]], num_classes: int) -> torch.Tensor:
    """Inverse square-root frequency, mean 1 over present classes, clipped to [0.1, 10]."""
    counts = np.zeros(num_classes, np.float64)
    for _, lab in data:
        counts += np.bincount(lab.ravel(), minlength=256)[:num_classes]
    return weights_of_counts(counts)


def weights_of_counts(counts: np.ndarray) -> torch.Tensor:
    """``class_weights`` from pixel counts per class (a caller that kept its counts)."""
    counts = np.asarray(counts, np.float64)
    num_classes = counts.size
    present = counts > 0
    weights = np.ones(num_classes)
    weights[present] = (counts[present] / counts.sum()) ** -0.5
    weights[present] /= weights[present].mean()
    return torch.tensor(np.clip(weights, 0.1, 10.0), dtype=torch.float32)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    valid = (target != IGNORE).unsqueeze(1)
    probs = logits.float().softmax(1) * valid
    onehot = F.one_hot(target.clamp_max(num_classes - 1), num_classes).permute(0, 3, 1, 2) * valid
    inter = (probs * onehot).sum((0, 2, 3))
    denom = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    return 1 - ((2 * inter + 1) / (denom + 1))[1:].mean()


def lovasz_softmax(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Lovasz-softmax over the batch's pixels, mean over the foreground classes present.

    Cross-entropy is minimised by calibrated probabilities, not by the decisions that maximise
    IoU; this loss is the tight convex extension of 1 - IoU (Berman et al., CVPR 2018), so it
    moves boundary pixels to the side that the score counts.
    """
    c = logits.shape[1]
    probs = logits.float().softmax(1).permute(0, 2, 3, 1).reshape(-1, c)
    labels = target.reshape(-1)
    valid = labels != IGNORE
    probs, labels = probs[valid], labels[valid]
    losses = []
    for k in range(1, c):
        fg = (labels == k).float()
        if not fg.any():
            continue
        errors, order = torch.sort((fg - probs[:, k]).abs(), descending=True)
        fg = fg[order]
        total = fg.sum()
        jaccard = 1 - (total - fg.cumsum(0)) / (total + (1 - fg).cumsum(0))
        jaccard = torch.cat((jaccard[:1], jaccard[1:] - jaccard[:-1]))
        losses.append(torch.dot(errors, jaccard))
    return torch.stack(losses).mean() if losses else logits.sum() * 0


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, target: torch.Tensor, t: float) -> torch.Tensor:
    """KL(teacher || student) at temperature t over labelled pixels (Hinton et al.), scaled by t^2."""
    valid = (target != IGNORE).float()
    log_p = F.log_softmax(student.float() / t, dim=1)
    q = F.softmax(teacher.float() / t, dim=1)
    kl = (q * (q.clamp_min(1e-8).log() - log_p)).sum(1)
    return (kl * valid).sum() / valid.sum().clamp_min(1) * t * t


# --------------------------------------------------------------------------- model


def evaluate(model: torch.nn.Module, data: list[tuple[np.ndarray, np.ndarray]], norm: Normalization,
             device: torch.device, num_classes: int) -> IoUAccumulator:
    acc = IoUAccumulator(num_classes)
    normalize = Normalizer(norm, device)
    model.eval()
    benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False  # validation images differ in size: no per-shape autotuning
    with torch.inference_mode():
        for rgb, lab in data:
            x = normalize(torch.from_numpy(rgb.copy())[None].to(device))
            pred = model(x).argmax(1)[0].cpu().numpy()
            acc.update(pred, lab)
    torch.backends.cudnn.benchmark = benchmark
    model.train()
    return acc


def _autocast(device: torch.device):
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype), dtype == torch.float16
    return torch.autocast(device.type, enabled=False), False


# --------------------------------------------------------------------------- loop


def train(config: TrainConfig, progress: Callable[[int, int], None] | None = None,
          on_epoch: Callable[[EpochReport], None] | None = None,
          should_cancel: Callable[[], bool] | None = None,
          log: Callable[[str], None] = print) -> TrainResult:
    """Run the whole recipe; returns where the best checkpoint went and how good it was."""
    return _Run(config, log).fit(progress, on_epoch, should_cancel)


class _Run:
    """State of one training run (data, model, optimiser, best so far)."""

    def __init__(self, config: TrainConfig, log: Callable[[str], None]):
        torch.manual_seed(config.seed)
        self.config, self.log = config, log
        self.rng = np.random.default_rng(config.seed)
        self.device = resolve_device(config.device)
        self.started = time.time()
        init = _load_init(config)
        # provenance of fine-tuned weights: what they started from and how that was made
        self.init_record = None if init is None else {
            "model": str(config.init), "training": init.metadata.get("training")}
        named = classes_for(config.masks, config.classes_file)
        classes = named or (init.classes if init else None)
        images, labels, needed = read_pairs(find_pairs(config.images, config.masks), len(named) if named else None,
                                            classes)
        if classes is None or needed > len(classes):
            classes = normalize_classes(classes or [], needed) if classes else default_classes(needed)
        self.classes, self.num_classes = list(classes), len(classes)
        data, raw, self.norm = self.network_inputs(images, labels, init)
        # a stack's planes are held out together: neighbouring planes would leak into validation
        files = list(dict.fromkeys(im.path for im in images))
        train_files, val_files = split_images(len(files), config.val_fraction, self.rng)
        held = {files[i] for i in val_files}
        train_idx = [i for i, im in enumerate(images) if im.path not in held]
        val_idx = [i for i, im in enumerate(images) if im.path in held]
        self.train_data = [data[i] for i in train_idx]
        self.val_data = [data[i] for i in val_idx]
        self.val_raw = [raw[i] for i in val_idx]  # what Segmenter is given when calibrating
        self.chooser = EpochChooser(len(self.train_data), len(self.val_data))
        # until refinement is fitted on held-out images, a fine-tuned model keeps its starting one's
        self.refine = init.refine.to_json() if init is not None and init.refine else None
        self.model = build_model(config.arch, data[0][0].shape[2], self.num_classes)
        if init is not None:
            own = self.model.state_dict()
            state = dict(init.state_dict)
            if init.num_classes != self.num_classes:  # new class list: keep features, fresh classifier
                state = {k: v for k, v in state.items() if not k.startswith("conv.")}
            # other input channels: keep every layer but the first
            state = {k: v for k, v in state.items() if k not in own or own[k].shape == v.shape}
            self.model.load_state_dict(state, strict=False)
        self.channels_last = self.device.type == "cuda"
        if self.channels_last:
            torch.backends.cudnn.benchmark = True
            self.model.to(memory_format=torch.channels_last)
        self.model.to(self.device)
        self.tta = bool(init.tta if config.tta is None and init else config.tta)
        self.result = TrainResult(None, -1.0, 0, 0, False, selection=self.chooser.rule)

    def network_inputs(self, images: list[TrainingImage], labels: list[np.ndarray], init: Checkpoint | None):
        """(scaled image, labels) pairs the crops come from, the images as Segmenter takes them,
        and the normalisation: 8-bit RGB as always, or the raw channels (core.training.raw_input)."""
        channels = self.config.channels
        if not raw_input.wants_raw(images, channels, init):
            rgb = [(im.rgb, lab) for im, lab in zip(images, labels)]
            return rgb, rgb, init.normalization if init else Normalization()
        for message in raw_input.nan_messages(images):
            self.log(message)
        if channels is None:
            channels = raw_input.start_picks(init, [im.pixels.shape[2] for im in images])
        pixels = raw_input.picked_pixels(images, channels, TrainingDataError)
        norm = raw_input.raw_normalization(images, channels, init, pixels[0].shape[2])
        self.log(f"training on raw channels: {', '.join(norm.channel_names) or pixels[0].shape[2]} "
                 f"({images[0].pixels.dtype}), each scaled by its {norm.percentiles[0]:g}-"
                 f"{norm.percentiles[1]:g} percentiles per image")
        scaled = [(raw_input.scaled(px, norm), lab) for px, lab in zip(pixels, labels)]
        # Segmenter picks the recorded channels itself: it gets the images as the files hold them
        return scaled, [(im.pixels, lab) for im, lab in zip(images, labels)], norm

    def fit(self, progress, on_epoch, should_cancel) -> TrainResult:
        config, device, model = self.config, self.device, self.model
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        pixels = sum(lab.size for _, lab in self.train_data)
        steps = config.steps_per_epoch or max(20, math.ceil(pixels / (config.patch**2 * config.batch)))
        total = steps * config.epochs
        warmup = max(1, min(200, total // 10))

        def lr_factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
        weights = class_weights(self.train_data, self.num_classes).to(device)
        sampler = CropSampler(self.train_data, config.patch, self.rng, augment=config.augment)
        normalize = Normalizer(self.norm, device)
        teacher = self.load_teacher()
        autocast, use_scaler = _autocast(device)
        scaler = torch.amp.GradScaler("cuda") if use_scaler else None
        self.log(f"training UNet{config.arch.title()} ({self.num_classes} classes) on {device_label(device)}: "
                 f"{len(self.train_data)} training / {len(self.val_data)} validation images, "
                 f"{config.epochs} epochs x {steps} steps")
        done = 0
        batches = _prefetch(lambda: sampler.batch(config.batch), depth=4 if device.type == "cuda" else 0)
        # glibc would hand each freed activation back to the kernel and fault it in again next
        # step (about 1.3 million page faults per UNetLarge step of 16 crops of 128x128); keep them
        with reuse_freed_memory():
            try:
                for epoch in range(1, config.epochs + 1):
                    t0, losses = time.time(), []
                    model.train()
                    for _ in range(steps):
                        if should_cancel is not None and should_cancel():
                            raise KeyboardInterrupt
                        x, y = next(batches)
                        x = normalize(x.to(device, non_blocking=True))
                        y = y.to(device, non_blocking=True).long()
                        if not self.channels_last:
                            x = x.contiguous()
                        with autocast:
                            logits = model(x)
                            if teacher is not None:
                                with torch.no_grad():
                                    taught = teacher(x)
                        loss = F.cross_entropy(logits.float(), y, weight=weights, ignore_index=IGNORE)
                        if teacher is not None:
                            loss = loss + config.kd_weight * distillation_loss(logits, taught, y, config.kd_temperature)
                        if config.dice:
                            loss = loss + dice_loss(logits, y, self.num_classes)
                        if config.lovasz:
                            loss = loss + lovasz_softmax(logits, y)
                        optimizer.zero_grad(set_to_none=True)
                        if scaler is not None:
                            scaler.scale(loss).backward()
                            scaler.step(optimizer)
                            scaler.update()
                        else:
                            loss.backward()
                            optimizer.step()
                        schedule.step()
                        losses.append(float(loss.detach()))
                        done += 1
                        if progress:
                            progress(done, total)
                    report = self.end_epoch(epoch, float(np.mean(losses)), time.time() - t0)
                    if on_epoch:
                        on_epoch(report)
            except KeyboardInterrupt:
                self.result.stopped_early = True
                if self.result.path is None and done:
                    self.end_epoch(self.result.epochs_run, float("nan"), 0.0)
                self.log(f"stopped early; checkpoint kept: {self.result.path} (mIoU {self.result.best_miou:.3f})")
            finally:
                batches.close()  # joins the batch thread: one left running at exit can abort the process
        result = self.result
        result.note = self.chooser.note(result.best_epoch, self.config.epochs, result.stopped_early)
        self.log(result.note)
        if config.calibrate and self.val_data and self.result.path is not None and not self.result.stopped_early:
            self.calibrate(should_cancel)
        return self.result

    def calibrate(self, should_cancel) -> None:
        """Fit edge refinement on the validation images and store it in the saved checkpoint."""
        from core.segment.calibration import calibrate, write_calibrated
        from core.segment.inference import Cancelled, Segmenter

        self.log(f"fitting edge refinement on {len(self.val_data)} validation images")
        seg = Segmenter.load(self.result.path, device=self.device)
        try:
            found = calibrate(seg, self.val_raw, should_cancel=should_cancel)
        except Cancelled:
            self.log("edge refinement not fitted (cancelled); the trained model is kept as it is")
            return
        write_calibrated(seg.checkpoint, self.result.path, found, command=self.config.command)
        self.result.calibration = found
        self.log(found.summary())

    def load_teacher(self) -> torch.nn.Module | None:
        if not self.config.teacher:
            return None
        ck = resolve_checkpoint(self.config.teacher)
        if ck.num_classes != self.num_classes or ck.normalization != self.norm:
            raise TrainingDataError(f"{self.config.teacher}: the teacher must have the same {self.num_classes} classes "
                                    "and input normalisation as the model being trained.")
        teacher = ck.build().eval().to(self.device)
        if self.channels_last:
            teacher.to(memory_format=torch.channels_last)
        for p in teacher.parameters():
            p.requires_grad_(False)
        return teacher

    def end_epoch(self, epoch: int, loss: float, seconds: float) -> EpochReport:
        """Score the epoch on whole images (held-out ones, else the training images) and save
        the weights when core.training.checkpoint_choice keeps them."""
        result = self.result
        acc = evaluate(self.model, self.val_data or self.train_data[:20], self.norm, self.device, self.num_classes)
        miou = acc.mean_iou(range(1, self.num_classes))
        miou = 0.0 if math.isnan(miou) else miou
        improved = self.chooser.keep(miou)
        result.epochs_run = max(result.epochs_run, epoch)
        if improved:
            result.best_miou, result.best_epoch = miou, epoch
            result.path = save_checkpoint(self.config.out, self.model, self.classes, self.norm,
                                          extra={"training": self.recipe(epoch, miou, acc),
                                                 "inference": {"tta": self.tta, "refine": self.refine}})
        report = EpochReport(epoch, self.config.epochs, loss, miou, acc.per_class_iou(), result.best_miou,
                             improved, seconds, held_out=bool(self.val_data))
        result.history.append(report)
        return report

    def recipe(self, epoch: int, miou: float, acc: IoUAccumulator) -> dict:
        config = self.config
        return {
            "command": config.command,
            "init": self.init_record,
            "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
            "train_images": len(self.train_data),
            "val_images": len(self.val_data),
            "train_pixels": int(sum(lab.size for _, lab in self.train_data)),
            "epochs": epoch,
            "epochs_planned": config.epochs,
            "val_miou" if self.val_data else "train_miou": round(miou, 4),
            "val_iou_per_class" if self.val_data else "train_iou_per_class":
                {self.classes[c].name: round(v, 4) for c, v in acc.per_class_iou().items()},
            "selection": self.chooser.to_json(epoch, self.config.epochs),
            "device": device_label(self.device),
            "torch": torch.__version__,
            "seconds": round(time.time() - self.started, 1),
        }


def _prefetch(make: Callable[[], tuple], depth: int):
    """Batches from ``make`` built ahead on one background thread (order, hence seed, preserved)."""
    if depth <= 0:
        while True:
            yield make()
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        while not stop.is_set():
            item = make()
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue

    worker = threading.Thread(target=produce, daemon=True, name="unetseg-batches")
    worker.start()
    try:
        while True:
            yield q.get()
    finally:
        stop.set()
        worker.join()


def resolve_checkpoint(name: str) -> Checkpoint:
    from core.resources import BUILTIN_MODELS, builtin_model_path

    return load_checkpoint(builtin_model_path(name) if name in BUILTIN_MODELS else Path(name))


def _load_init(config: TrainConfig) -> Checkpoint | None:
    if not config.init:
        return None
    ck = resolve_checkpoint(config.init)
    if ck.arch != config.arch:
        raise TrainingDataError(f"{config.init}: is UNet{ck.arch.title()}, cannot initialise UNet{config.arch.title()}.")
    return ck


def read_class_list(path: Path) -> list[ClassInfo]:
    """The user's classes from a JSON list (or ``{"classes": [...]}``); one sentence naming the file if unusable."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TrainingDataError(f"{Path(path).name}: is not a readable class list ({exc}).") from None
    raw = raw.get("classes", raw) if isinstance(raw, dict) else raw
    if not isinstance(raw, list) or not raw:
        raise TrainingDataError(f"{Path(path).name}: must hold a list of classes.")
    return normalize_classes(raw, len(raw))


def classes_for(masks: Path, classes_file: Path | None = None) -> list[ClassInfo] | None:
    """``classes_file`` (--classes), else a ``classes.json`` in the masks folder or beside it, else None."""
    candidates = [classes_file] if classes_file else [Path(masks) / "classes.json", Path(masks).parent / "classes.json"]
    for path in candidates:
        if path and Path(path).is_file():
            return read_class_list(path)
    return None
