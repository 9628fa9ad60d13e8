"""Loading and saving weights safely, whatever shape of checkpoint people actually have.

Only tensors are ever deserialised: ``.safetensors`` directly, ``.pt``/``.pth`` through
``torch.load(weights_only=True)``, which refuses pickles that would import or run code.
The architecture, input channels and class count are inferred from tensor names and shapes,
so a raw state_dict from DataParallel or Lightning loads with no flags.  Every failure is a
``CheckpointError`` whose message is one sentence naming the file and what is wrong.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from core.atomic import atomic_path, short_error
from core.classes import ClassInfo, classes_to_json, normalize_classes
from core.model.summary import NO_DESCRIPTION, description_of, summary_of  # noqa: F401 - re-exported
from core.model.networks import ARCHITECTURES, build_model
from core.model.normalize import (DEFAULT_PERCENTILES, FIXED, PERCENTILE, ChannelStats, channel_statistics,
                                  scale_by_percentiles)
from core.model.refine import Refinement

FORMAT = "unetseg-checkpoint"
META_KEY = "unetseg"
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "weights", "params")
PREFIXES = ("module.", "model.", "net.", "network.", "_orig_mod.")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; ``str()`` is a sentence fit for the user."""


@dataclass
class Normalization:
    """How pixels become network input: the one rule training and every inference path apply.

    ``mode == "fixed"`` (built-in models, every checkpoint made before raw channels, any model
    trained on 8-bit RGB): uint8 pixels, ``(x / value_range - mean) / std``.
    ``mode == "percentile"`` (models trained on raw channels): each channel of the raw pixels
    scaled by its own ``percentiles`` measured per image (core.model.normalize), then
    ``(x - mean) / std``.  ``channels``: the image channels the model reads, in order (None: all
    of them as they come); ``channel_names``: what they were called in the training images.
    """

    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    value_range: float = 255.0
    mode: str = FIXED
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES
    channels: tuple[int, ...] | None = None
    channel_names: tuple[str, ...] = ()

    @classmethod
    def for_raw_channels(cls, count: int, percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
                         channels: list[int] | None = None, names: list[str] | None = None) -> "Normalization":
        """Per-channel percentile scaling to about 0..1 (no further mean/std), as CSBDeep does."""
        return cls((0.0,) * count, (1.0,) * count, 1.0, PERCENTILE, tuple(float(p) for p in percentiles),
                   None if channels is None else tuple(int(c) for c in channels), tuple(names or ()))

    @property
    def reads_raw(self) -> bool:
        """True: the model reads the image's raw channels (not its 8-bit RGB view)."""
        return self.mode == PERCENTILE

    def recorded_picks(self, count: int) -> list[int] | None:
        """The file channels this model reads of an image with ``count`` channels, in order: the
        recorded ones whenever the image has them all (also when it has exactly as many as the
        model: a model trained with ``--channels 1,0`` reads 2-channel images swapped); None when
        nothing is recorded or the image lacks one (then its channels are read as they come)."""
        if self.channels is None or max(self.channels) >= count:
            return None
        return list(self.channels)

    def statistics(self, pixels: np.ndarray) -> ChannelStats | None:
        """The per-image statistics ``apply`` needs (None in fixed mode: nothing to measure)."""
        return channel_statistics(pixels, self.percentiles) if self.reads_raw else None

    def apply(self, pixels: np.ndarray, stats: ChannelStats) -> np.ndarray:
        """Raw H x W x C pixels -> float32 network input (percentile mode; elementwise)."""
        return scale_by_percentiles(pixels, stats, self.mean, self.std)

    def to_json(self) -> dict:
        out = {"mean": list(self.mean), "std": list(self.std), "value_range": self.value_range}
        if self.reads_raw:
            out.update(mode=self.mode, percentiles=list(self.percentiles))
        if self.channels is not None:
            out["channels"] = list(self.channels)
        if self.channel_names:
            out["channel_names"] = list(self.channel_names)
        return out

    @classmethod
    def from_json(cls, raw: Any, channels: int) -> "Normalization":
        default = cls()
        try:
            mean = tuple(float(v) for v in raw.get("mean", default.mean))
            std = tuple(float(v) for v in raw.get("std", default.std))
            value_range = float(raw.get("value_range", default.value_range))
        except (AttributeError, TypeError, ValueError):
            mean, std, value_range = default.mean, default.std, default.value_range
        if len(mean) != channels or len(std) != channels or min(std) <= 0 or value_range <= 0:
            mean, std, value_range = _default_norm(channels)
        extra = _raw_channel_fields(raw, channels)
        return cls(mean, std, value_range, **extra)


def _raw_channel_fields(raw: Any, channels: int) -> dict:
    """mode, percentiles, channels and channel_names from a checkpoint's JSON; absent -> fixed mode."""
    if not isinstance(raw, Mapping):
        return {}
    out: dict = {}
    try:
        if raw.get("mode") == PERCENTILE:
            lo, hi = (float(v) for v in raw.get("percentiles", DEFAULT_PERCENTILES))
            if 0 <= lo < hi <= 100:
                out.update(mode=PERCENTILE, percentiles=(lo, hi))
        picked = raw.get("channels")
        if isinstance(picked, list) and len(picked) == channels and all(int(c) >= 0 for c in picked):
            out["channels"] = tuple(int(c) for c in picked)
        names = raw.get("channel_names")
        if isinstance(names, list) and len(names) == channels:
            out["channel_names"] = tuple(str(n) for n in names)
    except (TypeError, ValueError):
        return out
    return out


def _default_norm(channels: int) -> tuple[tuple[float, ...], tuple[float, ...], float]:
    if channels == 3:
        return IMAGENET_MEAN, IMAGENET_STD, 255.0
    return (0.5,) * channels, (0.25,) * channels, 255.0


@dataclass
class Checkpoint:
    arch: str
    in_channels: int
    num_classes: int
    state_dict: dict[str, torch.Tensor]
    classes: list[ClassInfo]
    normalization: Normalization
    metadata: dict = field(default_factory=dict)  # everything else: training recipe, mIoU, ...
    path: Path | None = None
    tta: bool = False  # segment with 8-fold test-time augmentation by default
    refine: Refinement | None = None  # edge refinement fitted by core.segment.calibration (None: off)

    @property
    def description(self) -> str:
        """What the model recognises, what it was trained on and how well it does (people read
        this before trusting a mask); ``NO_DESCRIPTION`` for checkpoints that carry none."""
        return description_of(self.metadata)

    @property
    def summary(self) -> str:
        """A few words for a menu entry ("demo, synthetic shapes"); see core.model.summary."""
        return summary_of(self.metadata)

    def build(self) -> nn.Module:
        model = build_model(self.arch, self.in_channels, self.num_classes)
        model.load_state_dict(self.state_dict, strict=True)
        return model


# --------------------------------------------------------------------------- loading


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    path = Path(path)
    name = path.name
    if not path.exists():
        raise CheckpointError(f"{name}: file not found ({path}).")
    if path.is_dir():
        raise CheckpointError(f"{name}: is a folder, not a weights file.")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{name}: the file is empty (0 bytes).")
    suffix = path.suffix.lower()
    if suffix == ".safetensors" or (suffix not in (".pt", ".pth", ".ckpt", ".bin") and _looks_like_safetensors(path)):
        tensors, meta = read_safetensors(path)
    else:
        tensors, meta = _read_torch(path)
    sidecar = _read_sidecar(path)
    meta = {**meta, **sidecar}
    return checkpoint_from_state_dict(tensors, meta, path=path)


def checkpoint_from_state_dict(
    raw: Mapping[str, Any], meta: Mapping[str, Any] | None = None, path: Path | None = None
) -> Checkpoint:
    name = path.name if path else "checkpoint"
    state = _tensor_dict(_strip_prefixes(raw), name)
    arch, in_ch, n_cls = infer_architecture(state, name)
    meta = dict(meta or {})
    declared = meta.get("arch")
    if declared and declared != arch:
        raise CheckpointError(f"{name}: metadata says architecture {declared!r} but the tensors are UNet{arch.title()}.")
    state = _fit(state, arch, in_ch, n_cls, name)
    classes = normalize_classes(meta.get("classes"), n_cls)
    norm = Normalization.from_json(meta.get("normalization") or {}, in_ch)
    extra = {k: v for k, v in meta.items() if k not in ("arch", "classes", "normalization", "format")}
    inference = meta.get("inference") if isinstance(meta.get("inference"), Mapping) else {}
    return Checkpoint(arch, in_ch, n_cls, state, classes, norm, extra, path, bool(inference.get("tta", False)),
                      Refinement.from_json(inference.get("refine")))


def _looks_like_safetensors(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def read_safetensors(path: Path) -> tuple[dict, dict]:
    """The tensors as stored and the ``unetseg`` metadata (``{}`` when absent or not JSON)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            raw_meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # SafetensorError, OSError, ...: all mean "unreadable"
        raise CheckpointError(f"{path.name}: not a readable safetensors file (truncated or corrupt: {short_error(exc)}).") from None
    meta: dict = {}
    if META_KEY in raw_meta:
        try:
            meta = json.loads(raw_meta[META_KEY])
        except json.JSONDecodeError:
            meta = {}
    return tensors, meta if isinstance(meta, dict) else {}


def _read_torch(path: Path) -> tuple[dict, dict]:
    name = path.name
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Unsupported operand" in text and not _starts_like_pickle(path):  # text, random bytes
            raise CheckpointError(f"{name}: not a PyTorch checkpoint (the file is not tensor data).") from None
        if "Weights only load failed" in text or "Unsupported" in text or "global" in text.lower():
            raise CheckpointError(
                f"{name}: refused to load: the file contains pickled Python objects that could run code, "
                "not just tensors (save a plain state_dict, or convert it to .safetensors)."
            ) from None
        raise CheckpointError(f"{name}: not a PyTorch checkpoint ({short_error(exc)}).") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, AttributeError) as exc:
        text = str(exc)
        if "zip archive" in text or "central directory" in text or isinstance(exc, EOFError):
            why = "truncated or corrupt"
        else:
            why = f"unreadable: {short_error(exc)}"
        raise CheckpointError(f"{name}: not a usable PyTorch checkpoint ({why}).") from None
    except Exception as exc:  # anything torch.load raises for non-checkpoints
        raise CheckpointError(f"{name}: not a PyTorch checkpoint ({short_error(exc)}).") from None
    return _unwrap(obj, name)


def _starts_like_pickle(path: Path) -> bool:
    """Pickle protocol 2+ starts with the PROTO opcode; anything else is not a pickled checkpoint."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError:
        return False
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _unwrap(obj: Any, name: str) -> tuple[dict, dict]:
    """Find the state_dict inside the usual wrappers; collect metadata stored beside it."""
    meta: dict = {}
    for _ in range(3):
        if not isinstance(obj, Mapping):
            break
        if isinstance(obj.get(META_KEY), Mapping):
            meta = {**obj[META_KEY], **meta}
        if isinstance(obj.get("classes"), list) and "classes" not in meta:
            meta["classes"] = obj["classes"]
        if any(isinstance(v, torch.Tensor) for v in obj.values()):
            break  # already a state_dict
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{name}: holds no model weights (no tensors found in it).")
    return dict(obj), meta


def _read_sidecar(path: Path) -> dict:
    for candidate in (path.with_name(path.name + ".json"), path.with_suffix(".json")):
        if candidate.is_file():
            try:
                data = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                continue
            if isinstance(data, dict):
                return data
    return {}


def _strip_prefixes(state: Mapping[str, Any]) -> dict:
    state = {str(k): v for k, v in state.items()}
    changed = True
    while changed and state:
        changed = False
        for prefix in PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                changed = True
    return state


def _tensor_dict(state: Mapping[str, Any], name: str) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            continue
        if v.is_floating_point() and v.dtype != torch.float32:
            v = v.float()
        out[k] = v
    if not out:
        raise CheckpointError(f"{name}: holds no model weights (no tensors found in it).")
    return out


def infer_architecture(state: Mapping[str, torch.Tensor], name: str = "checkpoint") -> tuple[str, int, int]:
    if "prep0.0.weight" in state:
        arch, first = "large", "prep0.0.weight"
    elif "enc1.0.weight" in state:
        arch, first = "small", "enc1.0.weight"
    else:
        sample = ", ".join(list(state)[:3])
        raise CheckpointError(
            f"{name}: is not a UNetSmall or UNetLarge checkpoint (expected keys like 'enc1.0.weight' "
            f"or 'prep0.0.weight', found {sample}…)."
        )
    head = state.get("conv.weight")
    w = state[first]
    if head is None or head.ndim != 4 or w.ndim != 4:
        raise CheckpointError(f"{name}: is missing the classifier 'conv.weight' of UNet{arch.title()}.")
    return arch, int(w.shape[1]), int(head.shape[0])


def _fit(state: dict, arch: str, in_ch: int, n_cls: int, name: str) -> dict:
    """Check the tensors against the architecture; fill BatchNorm counters some exporters drop."""
    model = ARCHITECTURES[arch](in_channels=in_ch, num_classes=n_cls)
    expected = model.state_dict()
    for k, v in expected.items():
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = v.clone()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} is {tuple(state[k].shape)}, expected {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    label = f"UNet{arch.title()}({in_ch} in, {n_cls} classes)"
    if wrong:
        raise CheckpointError(f"{name}: does not fit {label}: {_list(wrong)}.")
    if missing:
        raise CheckpointError(f"{name}: does not fit {label}: missing {_list(missing)}.")
    if unexpected:
        raise CheckpointError(f"{name}: does not fit {label}: unexpected {_list(unexpected)}.")
    return {k: state[k] for k in expected}


def _list(items: list[str], n: int = 2) -> str:
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return "; ".join(items[:n]) + more



# --------------------------------------------------------------------------- saving


def checkpoint_metadata(
    arch: str,
    in_channels: int,
    classes: list[ClassInfo],
    normalization: Normalization,
    extra: Mapping[str, Any] | None = None,
) -> dict:
    return {
        "format": FORMAT,
        "version": 1,
        "arch": arch,
        "in_channels": in_channels,
        "num_classes": len(classes),
        "classes": classes_to_json(classes),
        "normalization": normalization.to_json(),
        **(extra or {}),
    }


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    classes: list[ClassInfo],
    normalization: Normalization | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``.safetensors`` with metadata inside (atomically: a failed write keeps the old file)."""
    from safetensors.torch import save_file

    path = Path(path)
    normalization = normalization or Normalization(*_default_norm(model.in_channels))
    meta = checkpoint_metadata(model.arch, model.in_channels, list(classes), normalization, extra)
    state = {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).contiguous()
             for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={META_KEY: json.dumps(meta)})
    return path
