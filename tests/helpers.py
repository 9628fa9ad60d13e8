"""Shared test helpers: models with varied (not collapsed) outputs, written to disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from core.model.checkpoints import save_checkpoint
from core.classes import default_classes
from core.model.networks import build_model


def calibrated_model(arch: str = "small", num_classes: int = 5, seed: int = 0, size: int = 96, in_channels: int = 3):
    """Random weights whose BatchNorm statistics come from real-looking input.

    A freshly initialised UNet predicts one class everywhere; recomputing BN statistics on
    smooth random images spreads the argmax over several classes, so equality tests between
    inference paths have something to compare.
    """
    from core.training.synthetic import generate_scene

    torch.manual_seed(seed)
    model = build_model(arch, in_channels, num_classes)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the calibration batches
    batch = np.stack([generate_scene(seed + i, size, size)[0] for i in range(4)])
    batch = batch[..., [c % 3 for c in range(in_channels)]]
    x = torch.from_numpy(batch).permute(0, 3, 1, 2).float().div(255).sub(0.45).div(0.25)
    model.train()
    with torch.no_grad():
        model(x)
        with torch.no_grad():
            model.conv.bias.normal_(0, 0.5)
    return model.eval()


def write_checkpoint(path: Path, arch: str = "small", num_classes: int = 5, seed: int = 0) -> Path:
    model = calibrated_model(arch, num_classes, seed)
    return save_checkpoint(path, model, default_classes(num_classes))


def write_raw_checkpoint(path: Path, channels: int = 2, num_classes: int = 4, seed: int = 0,
                         names: list[str] | None = None, picked: list[int] | None = None) -> Path:
    """A model that reads ``channels`` raw channels (per-channel percentile normalisation)."""
    from core.model.checkpoints import Normalization

    model = calibrated_model("small", num_classes, seed, in_channels=channels)
    norm = Normalization.for_raw_channels(channels, channels=picked, names=names)
    return save_checkpoint(path, model, default_classes(num_classes), norm)


def simulate_exhausted_gpu(monkeypatch, segmenter) -> None:
    """Put ``segmenter`` on a pretend CUDA device where every forward runs out of memory.

    Inference on the real CPU path is untouched, so the Segmenter's fallback can be checked
    on a machine without a GPU.
    """
    from core.segment.inference import OOM_ERRORS, Segmenter

    class ExhaustedGPU(torch.nn.Module):
        conv = None

        def features(self, x):
            raise OOM_ERRORS[0]("CUDA out of memory. Tried to allocate 2.00 GiB")

    real_net, real_batch = Segmenter._net, Segmenter._batch
    on_gpu = lambda seg: seg.device == "cuda:0"  # noqa: E731
    monkeypatch.setattr(Segmenter, "_net", lambda self: ExhaustedGPU() if on_gpu(self) else real_net(self))
    monkeypatch.setattr(Segmenter, "_batch", lambda self, w: None if on_gpu(self) else real_batch(self, w))
    segmenter._set_device(torch.device("cuda", 0))


def limit_window(monkeypatch, segmenter, max_side: int) -> None:
    """Make ``segmenter`` run out of memory on any window wider than ``max_side`` pixels."""
    from core.segment.inference import OOM_ERRORS

    net = segmenter._net()
    real = net.features

    def limited(x):
        if x.shape[-1] > max_side:
            raise OOM_ERRORS[0]("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(x)

    monkeypatch.setattr(net, "features", limited)
