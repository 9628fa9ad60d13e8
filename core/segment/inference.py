"""Segmenting images of any size: the one API the GUI, the CLI and the tests all call.

    seg = Segmenter.load("small" | "large" | "/path/to/weights", device="auto")
    labels = seg.segment(rgb, tile_size=None, progress=None, should_cancel=None)
    result = seg.segment(rgb, instances=True)  # Segmentation(labels, instances): objects too

A model with an instance output (``seg.instances``, core.objects.instances) separates touching
objects: ``segment`` returns its class ids folded to the user's classes, and with
``instances=True`` also the object ids (uint32), made from the class map after tiling, so they
are the same whatever the tiles.

Tiling keeps memory bounded whatever the image size.  The image is treated as padded
(reflect, bottom/right) to a multiple of 8, exactly as a whole-image forward pads it; that
canvas is cut into square windows of ``tile_size`` pixels whose origins lie on multiples of 8
(so the three 2x poolings see the same grid as a whole-image pass) and which overlap by a halo
no smaller than the network's receptive-field radius.  Only each window's centre ("core") is
kept, and its argmax goes straight into the uint8 output; windows near the canvas edge are
shifted inwards rather than shrunk, so every window has the same shape (batchable on a GPU).
With halo >= receptive-field radius the result equals the whole-image result up to float
rounding (``tile_size=0`` runs the whole image in one pass).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from core.io.channels import as_hwc, check_channels
from core.model.checkpoints import Checkpoint, CheckpointError, load_checkpoint
from core.model.normalize import ChannelStats, source_statistics
from core.classes import ClassInfo
from core.model.networks import HALO, MULTIPLE, pad_mode
from core.model.optimize import add_probabilities, argmax_into, prepare_for_inference, reuse_freed_memory
from core.model.refine import GuidedFilter, Refinement, guide_from_pixels
from core.resources import BUILTIN_MODELS, builtin_model_path
from core.wording import counted

Progress = Callable[[int, int], None]
ShouldCancel = Callable[[], bool]
Warn = Callable[[str], None]
TileCallback = Callable[[int, int, np.ndarray], None]

DEFAULT_REFINEMENT = Refinement(radius=8, eps=1e-3)  # for models never calibrated (core.segment.calibration)
DEFAULT_WINDOW = {"cpu": 1024, "cuda": 1024, "mps": 768}
CUDA_BATCH = 4
MIN_WINDOW_CORE = 32
OOM_ERRORS: tuple[type[BaseException], ...] = tuple(
    {getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError), torch.cuda.OutOfMemoryError}
)


@dataclass
class Segmentation:
    """What ``segment(..., instances=True)`` returns: the class ids (uint8) and the object ids
    (uint32, 0 = background) of a model with an instance output, or None for a model without one
    (its objects are then the connected components of each class, core.io.objects)."""

    labels: np.ndarray
    instances: np.ndarray | None


class Cancelled(Exception):
    """Raised by ``segment`` when ``should_cancel()`` returned True between tiles."""


class DeviceError(RuntimeError):
    """A device that was asked for explicitly and is not usable; the message says why."""


# --------------------------------------------------------------------------- devices


def device_availability() -> dict[str, tuple[bool, str]]:
    """For each of cpu/cuda/mps: usable?, and the reason when not (for menus and reports)."""
    result = {"cpu": (True, "")}
    if torch.cuda.is_available():
        result["cuda"] = (True, torch.cuda.get_device_name(0))
    elif torch.version.cuda is None:
        result["cuda"] = (False, f"this PyTorch build ({torch.__version__}) has no CUDA support")
    else:
        result["cuda"] = (False, "no NVIDIA GPU or driver was found")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        result["mps"] = (True, "Apple Metal")
    elif platform.system() != "Darwin":
        result["mps"] = (False, "Apple Metal (MPS) exists only on macOS")
    elif mps is None or not mps.is_built():
        result["mps"] = (False, "this PyTorch build has no MPS support")
    else:
        result["mps"] = (False, "MPS needs macOS 12.3+ on Apple silicon or an AMD GPU")
    return result


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    name = str(name).lower()
    available = device_availability()
    if name == "auto":
        for kind in ("cuda", "mps"):
            if available[kind][0]:
                return torch.device(kind)
        return torch.device("cpu")
    kind = name.split(":")[0]
    if kind not in available:
        raise DeviceError(f"unknown device {name!r} (use auto, cpu, cuda or mps)")
    ok, why = available[kind]
    if not ok:
        raise DeviceError(f"device {name!r} is not available: {why}")
    return torch.device(name)


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{device.index if device.index is not None else torch.cuda.current_device()}"
    return device.type


def device_report() -> dict:
    info = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
    for kind, (ok, why) in device_availability().items():
        info[kind] = "available" + (f" ({why})" if why else "") if ok else f"unavailable: {why}"
    return info


# --------------------------------------------------------------------------- tiling


@dataclass(frozen=True)
class Tile:
    """A window fed to the network and the core of it whose labels are kept (canvas coords)."""

    wy0: int
    wx0: int
    wy1: int
    wx1: int
    cy0: int
    cx0: int
    cy1: int
    cx1: int


def _axis(size: int, window: int, halo: int) -> list[tuple[int, int, int, int]]:
    """(window start, window end, core start, core end) along one axis of ``size`` pixels."""
    canvas = size + (-size) % MULTIPLE
    if canvas <= window:
        return [(0, canvas, 0, size)]
    step = window - 2 * halo
    spans = []
    for c0 in range(0, size, step):
        c1 = min(c0 + step, size)
        w0 = min(max(c0 - halo, 0), canvas - window)
        spans.append((w0, w0 + window, c0, c1))
    return spans


def plan_tiles(height: int, width: int, window: int, halo: int) -> list[Tile]:
    return [
        Tile(wy0, wx0, wy1, wx1, cy0, cx0, cy1, cx1)
        for (wy0, wy1, cy0, cy1) in _axis(height, window, halo)
        for (wx0, wx1, cx0, cx1) in _axis(width, window, halo)
    ]


def _canvas_index(start: int, stop: int, size: int) -> np.ndarray | slice:
    """Source indices for canvas positions [start, stop): reflect beyond ``size`` like F.pad."""
    if stop <= size:
        return slice(start, stop)
    idx = np.arange(start, stop)
    beyond = idx >= size
    if pad_mode(stop - size, size) == "reflect":
        idx[beyond] = 2 * (size - 1) - idx[beyond]
    else:
        idx[beyond] = size - 1
    return idx


def window_rows_cols(t: Tile, h: int, w: int) -> tuple[np.ndarray | slice, np.ndarray | slice]:
    """Image rows and columns under tile ``t``'s window (reflected past the bottom/right edge)."""
    return _canvas_index(t.wy0, t.wy1, h), _canvas_index(t.wx0, t.wx1, w)


def _window_pixels(image: np.ndarray, t: Tile) -> np.ndarray:
    h, w = image.shape[:2]
    rows, cols = _canvas_index(t.wy0, t.wy1, h), _canvas_index(t.wx0, t.wx1, w)
    block = image[rows] if isinstance(rows, slice) else image[rows, :]
    return block[:, cols]


# --------------------------------------------------------------------------- segmenter


class Segmenter:
    """A loaded model bound to a device, ready to segment images of any size."""

    def __init__(self, checkpoint: Checkpoint, device: str | torch.device = "auto", name: str | None = None,
                 warn: Warn | None = None):
        self.checkpoint = checkpoint
        self.name = name or (checkpoint.path.stem if checkpoint.path else checkpoint.arch)
        self.arch = checkpoint.arch
        self.in_channels = checkpoint.in_channels
        self.num_classes = checkpoint.num_classes
        if self.num_classes > 256:
            raise CheckpointError(f"{self.name}: has {self.num_classes} classes; labels are 8-bit, at most 256.")
        self.classes: list[ClassInfo] = list(checkpoint.classes)
        self.metadata = dict(checkpoint.metadata)
        self.instances = _instance_spec(checkpoint, self.name)  # None: no instance output
        if self.instances is not None:  # its boundary class is the model's own: callers see the user's classes
            self.classes = [c for c in self.classes if c.id != self.instances.boundary_class]
        self.halo = HALO[self.arch]
        self.tta = checkpoint.tta
        self.refine: Refinement | None = checkpoint.refine
        self.warn = warn
        self._model = checkpoint.build().eval()  # float32 on the CPU: the source for every device
        self._prepared: dict[str, torch.nn.Module] = {}
        self._set_device(resolve_device(device))
        norm = self.normalization = checkpoint.normalization
        self.reads_raw = norm.reads_raw  # True: the raw channels, scaled per image (core.model.normalize)
        self._scale = torch.tensor([1.0 / (norm.value_range * s) for s in norm.std])
        self._shift = torch.tensor([-m / s for m, s in zip(norm.mean, norm.std)])

    @classmethod
    def load(cls, model: str | os.PathLike = "small", device: str | torch.device = "auto",
             warn: Warn | None = None) -> "Segmenter":
        key = str(model)
        if key.lower() in BUILTIN_MODELS:
            path = builtin_model_path(key.lower())
            if not path.is_file():
                raise CheckpointError(
                    f"built-in model {key!r} is not installed ({path} is missing); "
                    "run `make train-models` or load a weights file."
                )
            return cls(load_checkpoint(path), device, name=key.lower(), warn=warn)
        return cls(load_checkpoint(Path(model)), device, warn=warn)

    # -- device handling
    def _set_device(self, device: torch.device) -> None:
        self._device = device
        self.device = device_label(device)

    def _net(self) -> torch.nn.Module:
        key = self.device
        if key not in self._prepared:
            self._prepared[key] = prepare_for_inference(self._model, self._device)
        return self._prepared[key]

    def to(self, device: str | torch.device) -> "Segmenter":
        self._set_device(resolve_device(device))
        return self

    def default_tile_size(self) -> int:
        return DEFAULT_WINDOW.get(self._device.type, 1024)

    # -- inference
    def segment(self, image: np.ndarray, tile_size: int | None = None, progress: Progress | None = None,
                should_cancel: ShouldCancel | None = None, on_tile: TileCallback | None = None,
                warn: Warn | None = None, tta: bool | None = None,
                refine: Refinement | bool | None = None, stats: ChannelStats | None = None,
                channels: Sequence[int] | None = None, instances: bool = False) -> np.ndarray | Segmentation:
        """HxW uint8 class ids for an HxWx3 uint8 image (HxW grey and HxWx4 RGBA are converted),
        or, for a model trained on raw channels, for the image's raw H x W x C pixels.

        ``tile_size``: side of the square windows fed to the network (None: the device default,
        0: the whole image at once). ``progress(done, total)`` is called per tile,
        ``should_cancel()`` between tiles (True raises Cancelled), ``on_tile(y, x, labels)``
        with each finished block so a viewer can show partial results.  ``tta``: average
        over the 8 flips/rotations (8x the work; None: the model's own default, see ``tta``).
        ``refine``: edge refinement (core.model.refine) of the probabilities before the argmax; None:
        the model's fitted default (``refine``), False: off, True: the fitted or generic setting.
        ``stats``/``channels``: see ``as_input``.  ``instances``: return a ``Segmentation`` (class
        ids and object ids); a model with an instance output folds its boundary class either way.
        """
        pixels = self.as_input(image, stats, channels)
        if self.instances is not None and on_tile is not None:
            on_tile = _preview_tiles(on_tile, self.instances.boundary_class)
        h, w = pixels.shape[:2]
        warn = warn or self.warn or (lambda message: None)
        out = np.zeros((h, w), dtype=np.uint8)
        window, halo, tta, refine = self.tiling(h, w, tile_size, tta, refine)
        batch = self.batch_size()
        while True:
            try:
                with reuse_freed_memory():
                    self._run(pixels, out, window, halo, batch, progress, should_cancel, on_tile, tta, refine)
                return self._objects(out, instances)
            except OOM_ERRORS:
                if self._device.type == "cuda":
                    torch.cuda.empty_cache()
                window, batch = self._after_oom(h, w, window, halo, batch, warn)

    def _objects(self, labels: np.ndarray, instances: bool) -> np.ndarray | Segmentation:
        """The class map as ``segment`` returns it (see there)."""
        if self.instances is None:
            return Segmentation(labels, None) if instances else labels
        from core.objects.instances import separate

        ids, folded = separate(labels, self.instances)
        return Segmentation(folded, ids) if instances else folded

    def tiling(self, h: int, w: int, tile_size: int | None = None, tta: bool | None = None,
               refine: Refinement | bool | None = None) -> tuple[int, int, bool, Refinement | None]:
        """(window, halo, tta, refinement) that ``segment`` uses for an h x w image with these options.

        Streaming (core.segment.streaming) plans with the same numbers, so its tiles are the same tiles.
        """
        tta = self.tta if tta is None else bool(tta)
        refine = self.refinement(refine)
        halo = self.halo + (_round8(refine.reach) if refine else 0)
        window = self._window(h, w, tile_size, halo)
        if (tta or refine) and self.num_classes > 32 and tile_size is None:
            window = min(window, 512)  # bound the per-window probability sums
        return window, halo, tta, refine

    def batch_size(self) -> int:
        return CUDA_BATCH if self._device.type == "cuda" else 1

    def segment_source(self, source, store_path: str | os.PathLike, **options):
        """Segment a lazy source (core.io.sources) of any size into an OME-Zarr label store; returns the store.

        Streams window by window with the same tiles as ``segment`` (byte-identical labels);
        ``options`` are those of ``core.segment.streaming.segment_into_store`` (tile_size, tta, refine,
        resume, progress, should_cancel).
        """
        from core.segment.streaming import segment_into_store

        return segment_into_store(self, source, store_path, **options)

    def probabilities(self, image: np.ndarray, tta: bool | None = None, tile_size: int | None = None,
                      should_cancel: ShouldCancel | None = None, stats: ChannelStats | None = None) -> torch.Tensor:
        """K x H x W class probabilities (float32, CPU) before any refinement, tiled like ``segment``.

        For fitting inference settings (core.segment.calibration) and for anyone who wants soft output.
        """
        pixels = self.as_input(image, stats)
        h, w = pixels.shape[:2]
        tta = self.tta if tta is None else bool(tta)
        probs = torch.zeros(self.num_classes, h, w)
        window = self._window(h, w, tile_size, self.halo)
        self._run(pixels, np.zeros((h, w), np.uint8), window, self.halo, 1, None, should_cancel, None, tta,
                  None, probs)
        return probs

    def refinement(self, refine: Refinement | bool | None = None) -> Refinement | None:
        """The refinement a ``segment(refine=...)`` call applies (see there)."""
        if refine is None:
            return self.refine
        if isinstance(refine, Refinement):
            return refine
        return (self.refine or DEFAULT_REFINEMENT) if refine else None

    def _after_oom(self, h: int, w: int, window: int, halo: int, batch: int, warn: Warn) -> tuple[int, int]:
        if batch > 1:
            warn(f"Out of memory on {self.device}: retrying with {batch // 2} tiles at a time.")
            return window, batch // 2
        smaller = _round8(min(window, max(h, w) + MULTIPLE) // 2)
        if smaller - 2 * halo >= MIN_WINDOW_CORE:
            warn(f"Out of memory on {self.device}: retrying with {smaller}-pixel tiles.")
            return smaller, 1
        if self._device.type != "cpu":
            previous = self.device
            self._prepared.pop(previous, None)
            self._set_device(torch.device("cpu"))
            warn(f"Out of memory on {previous} even with small tiles: continuing on the CPU.")
            return self._window(h, w, None, halo), 1
        raise MemoryError(f"not enough memory to segment a {w}x{h} image, even with {window}-pixel tiles")

    def _window(self, h: int, w: int, tile_size: int | None, halo: int) -> int:
        whole = _round8(max(h, w))
        if tile_size == 0:
            return whole
        size = self.default_tile_size() if tile_size is None else int(tile_size)
        size = max(_round8(size), _round8(2 * halo + MIN_WINDOW_CORE))
        return min(size, whole)

    def _run(self, pixels: np.ndarray, out: np.ndarray, window: int, halo: int, batch: int,
             progress: Progress | None, should_cancel: ShouldCancel | None, on_tile: TileCallback | None,
             tta: bool = False, refine: Refinement | None = None, probs_out: torch.Tensor | None = None) -> None:
        h, w = out.shape
        tiles = plan_tiles(h, w, window, halo)
        total, done = len(tiles), 0
        if progress:
            progress(0, total)

        def after(group: Sequence[Tile], blocks: list[np.ndarray]) -> None:
            nonlocal done
            if on_tile:
                for t, block in zip(group, blocks):
                    on_tile(t.cy0, t.cx0, block)
            done += len(group)
            if progress:
                progress(done, total)

        self.run_tiles(tiles, (h, w), lambda t: _window_pixels(pixels, t), lambda t: out[t.cy0:t.cy1, t.cx0:t.cx1],
                       batch, should_cancel, after, tta, refine, probs_out)

    def run_tiles(self, tiles: Sequence[Tile], size: tuple[int, int], window_of: Callable[[Tile], np.ndarray],
                  block_of: Callable[[Tile], np.ndarray], batch: int, should_cancel: ShouldCancel | None,
                  after: Callable[[Sequence[Tile], list[np.ndarray]], None] | None, tta: bool = False,
                  refine: Refinement | None = None, probs_out: torch.Tensor | None = None) -> None:
        """Segment ``tiles`` of an image of ``size`` (h, w): the engine of ``segment`` and of streaming.

        ``window_of(tile)``: the tile's window pixels (canvas-padded, as ``_window_pixels``);
        ``block_of(tile)``: the uint8 array its core's labels go into; ``after(group, blocks)``
        runs after each batch.  ``should_cancel()`` is asked before each batch.
        """
        h, w = size
        net = self._net()
        for group in _chunks(tiles, batch):
            if should_cancel is not None and should_cancel():
                raise Cancelled()
            windows = [window_of(t) for t in group]
            blocks = [block_of(t) for t in group]
            cores = [(slice(t.cy0 - t.wy0, t.cy1 - t.wy0), slice(t.cx0 - t.wx0, t.cx1 - t.wx0)) for t in group]
            with torch.inference_mode():
                with self._autocast():
                    x = self._batch(windows)
                    if tta or refine or probs_out is not None:
                        # refinement needs every image pixel of the window, not only the core
                        regions = [(slice(0, min(t.wy1, h) - t.wy0), slice(0, min(t.wx1, w) - t.wx0))
                                   for t in group] if refine else cores
                        transforms = 8 if tta else 1
                        sums = self._probability_sums(net, x, regions, transforms)
                    else:
                        sums = []
                        features = net.features(x)
                        for i, ((ys, xs), block) in enumerate(zip(cores, blocks)):
                            argmax_into(features[i : i + 1, :, ys, xs], net.conv, block)
                        del features
                del x
                for probs, t, core, block, win in zip(sums, group, cores, blocks, windows):
                    if probs_out is not None:
                        probs_out[:, t.cy0:t.cy1, t.cx0:t.cx1] = probs.cpu() / transforms
                    else:
                        _labels_into(probs, block, refine and _window_guide(win, probs), refine, core)
                del sums
            del windows
            if after:
                after(group, blocks)

    @staticmethod
    def _probability_sums(net, x: torch.Tensor, regions, transforms: int) -> list[torch.Tensor]:
        """Class probabilities (K x h x w) over each window's region, summed over 1 or 8 transforms.

        With 8 (test-time augmentation), each flip/rotation's features are mapped back to the
        original orientation before the classifier, so regions and halos are those of one pass.
        """
        sums = [None] * len(regions)
        for k in range(4 if transforms == 8 else 1):
            for flip in ((False, True) if transforms == 8 else (False,)):
                if k == 0 and not flip:
                    f = net.features(x)
                else:
                    xt = torch.rot90(x, k, (2, 3))
                    xt = (xt.flip(3) if flip else xt).contiguous(memory_format=torch.channels_last)
                    f = net.features(xt)
                    f = torch.rot90(f.flip(3) if flip else f, -k, (2, 3))
                for i, (ys, xs) in enumerate(regions):
                    sums[i] = add_probabilities(f[i : i + 1, :, ys, xs], net.conv, sums[i])
                del f
        return sums

    def _batch(self, windows: Sequence[np.ndarray]) -> torch.Tensor:
        parts = [self._tensor(win) for win in windows]
        x = parts[0][None] if len(parts) == 1 else torch.stack(parts)
        return x.to(self._device).contiguous(memory_format=torch.channels_last)

    def _autocast(self):
        if self._device.type == "cuda":
            dtype = torch.bfloat16 if os.environ.get("UNETSEG_BF16") else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        return torch.autocast("cpu", enabled=False)

    def _tensor(self, hwc: np.ndarray) -> torch.Tensor:
        """uint8 HxWxC -> normalised float CxHxW (a channels_last view of the HWC buffer);
        a raw-channel model's windows come already scaled (``as_input``)."""
        t = torch.from_numpy(hwc.astype(np.float32))  # a fresh, writable copy
        if not self.reads_raw:
            t = t.mul_(self._scale).add_(self._shift)
        return t.permute(2, 0, 1)

    def as_input(self, image: np.ndarray, stats: ChannelStats | None = None,
                 channels: Sequence[int] | None = None) -> np.ndarray:
        """``image`` as the H x W x C pixels this model reads.

        8-bit RGB models: uint8 (grey, RGBA, 16-bit... converted to 8-bit RGB as core.io.images
        shows them).  Raw-channel models: the channels they read (``channels``, else those the
        checkpoint recorded, in their order, whenever the image has them), scaled by ``stats``
        (default: measured on this image; pass the whole image's or slide's for a part of it) into
        float32.
        """
        from core.io.images import to_rgb8

        image = np.asarray(image)
        if self.reads_raw:
            raw = self.input_channels(image, channels)
            return self.normalization.apply(raw, stats or self.normalization.statistics(raw))
        if image.ndim == 3 and image.shape[2] == self.in_channels and image.dtype == np.uint8:
            return image
        if channels is not None:
            image = self.input_channels(image, channels)
        rgb = to_rgb8(image)
        if self.in_channels == 3:
            return rgb
        if self.in_channels == 1:
            grey = (rgb.astype(np.uint16) @ np.array([77, 150, 29], np.uint16)) >> 8
            return grey.astype(np.uint8)[..., None]
        count = image.shape[2] if image.ndim == 3 else 1
        raise ValueError(f"the model reads {self.in_channels} channels but the image has {count}")

    def image_of(self, loaded) -> np.ndarray:
        """What to pass to ``segment`` for a core.io.images.LoadedImage: its raw pixels for a
        raw-channel model, its 8-bit RGB view for any other."""
        return loaded.pixels if self.reads_raw else loaded.rgb

    def input_channels(self, image: np.ndarray, channels: Sequence[int] | None = None) -> np.ndarray:
        """The image's channels this model reads, in order: ``channels`` if given, else the ones its
        training images were cut to (``--channels``, whenever the image has them), else all of them
        when the count matches."""
        image = as_hwc(image)
        count = image.shape[2]
        picks = self.channel_picks(count, channels)
        return image if picks is None else image[..., picks]

    def channel_picks(self, count: int, channels: Sequence[int] | None = None) -> list[int] | None:
        """Which of an image's ``count`` channels the model reads (None: all, as they are); one
        sentence naming both counts when they cannot fit."""
        if channels is not None:
            check_channels(channels, count)
            if len(channels) != self.in_channels:
                raise ValueError(f"the model reads {self.in_channels} channels but {len(channels)} were picked "
                                 f"({', '.join(str(c) for c in channels)})")
            return list(channels)
        recorded = self.normalization.recorded_picks(count)
        if recorded is not None:
            return recorded
        if count == self.in_channels:
            return None
        names = f" ({', '.join(self.normalization.channel_names)})" if self.normalization.channel_names else ""
        example = ",".join(str(i) for i in range(self.in_channels))
        raise ValueError(f"the model reads {counted(self.in_channels, 'channel')}{names} but the image has {count}, and the model does not "
                         f"record which to read; segment it with `unetseg segment` and --channels (e.g. "
                         f"--channels {example}), or use a model trained on {count}-channel images")

    def source_statistics(self, source, channels: Sequence[int] | None = None) -> ChannelStats | None:
        """The statistics every window of ``source`` is scaled by (None for 8-bit RGB models):
        measured once per source on one bounded sample (core.model.normalize), so tiles have no seams."""
        if not self.reads_raw:
            return None
        picks = self.channel_picks(source.channels, channels)
        stats = source_statistics(source, self.normalization.percentiles)
        return stats if picks is None else stats.pick(picks)

    def describe(self) -> str:
        return f"{self.name} (UNet{self.arch.title()}, {self.num_classes} classes) on {self.device}"


def _instance_spec(checkpoint: Checkpoint, name: str):
    """The checkpoint's instance output (core.objects.instances.InstanceSpec), None without one."""
    if not checkpoint.metadata.get("instances"):
        return None
    from core.objects.instances import InstanceSpec

    try:
        return InstanceSpec.from_metadata(checkpoint.metadata, checkpoint.num_classes)
    except ValueError as exc:
        raise CheckpointError(f"{name}: {exc}.") from None


def _preview_tiles(on_tile: TileCallback, boundary: int) -> TileCallback:
    """Finished tiles as a viewer may show them before the objects are made: boundary as background."""

    def shown(y: int, x: int, block: np.ndarray) -> None:
        on_tile(y, x, np.where(block == boundary, 0, block).astype(np.uint8))

    return shown


def _window_guide(window: np.ndarray, probs: torch.Tensor) -> torch.Tensor:
    """The image under a window's probabilities (K x h x w; image pixels only), as the guided filter's guide."""
    return guide_from_pixels(window[: probs.shape[1], : probs.shape[2]], probs.device)


def _labels_into(probs: torch.Tensor, block: np.ndarray, guide: torch.Tensor | None, refine: Refinement | None,
                 core: tuple[slice, slice]) -> None:
    """Class ids of ``probs`` (K x h x w; refined over the whole window, then cut to ``core``).

    Refinement runs in float32 outside autocast: its eps is far below float16 precision.
    """
    if refine:
        probs = GuidedFilter(guide, refine)(probs, core)
    # max(), not argmax(): many times faster on the CPU along the class axis
    block[...] = probs.max(0).indices.to(torch.uint8).cpu().numpy()


def _round8(n: int) -> int:
    return max(MULTIPLE, -(-int(n) // MULTIPLE) * MULTIPLE)


def _chunks(items: Sequence[Tile], n: int) -> Iterator[Sequence[Tile]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]
