"""The two UNets of the seed document, with the seed's module names so foreign state_dicts load.

UNetSmall is the printed struct (per-layer parameters equal the seed's summary table).
UNetLarge is the prose flow with UNetSmall's block pattern: every named conv block is
``[MaxPool2d(2),] Conv2d 3x3 pad 1 -> BatchNorm2d -> ReLU``, ``upconv*`` are stride-2 transposed
convs, ``conv`` is the 1x1 classifier.  Skip connections concatenate ``(upsampled, encoder)``
along channels, in that order.

Both accept any spatial size: the input is padded (reflect, bottom/right) to a multiple of 8
and the output cropped back, so a 37x53 image gives 37x53 logits.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

MULTIPLE = 8  # three 2x poolings
# Receptive-field radius in pixels, measured over all 8 sub-pixel phases by
# tests/core/test_inference.py::test_halo_covers_receptive_field, rounded up to a multiple of 8.
HALO = {"small": 32, "large": 40}


def conv_block(cin: int, cout: int, pool: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [nn.MaxPool2d(kernel_size=2, stride=2)] if pool else []
    layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def upconv(cin: int, cout: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1)


def pad_mode(pad: int, size: int) -> str:
    """Reflect padding needs pad < size; tiny images fall back to edge replication."""
    return "reflect" if pad < size else "replicate"


def pad_to_multiple(x: torch.Tensor, multiple: int = MULTIPLE) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not ph and not pw:
        return x
    if ph:
        x = F.pad(x, (0, 0, 0, ph), mode=pad_mode(ph, h))
    if pw:
        x = F.pad(x, (0, pw, 0, 0), mode=pad_mode(pw, w))
    return x


class _UNetBase(nn.Module):
    """Shared plumbing: padding/cropping and a features/head split for chunked argmax."""

    arch: str = ""
    in_channels: int
    num_classes: int

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        y = self.conv(self.features(pad_to_multiple(x)))
        return y[..., :h, :w]

    def features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _unet(self, e1: torch.Tensor) -> torch.Tensor:
        """The U both networks share: enc2 -> enc3 -> bneck, then up with (upsampled, skip) concat."""
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        b = self.bneck(e3)
        d3 = self.dec3(torch.cat((self.upconv3(b), e3), dim=1))
        d2 = self.dec2(torch.cat((self.upconv2(d3), e2), dim=1))
        return self.dec1(torch.cat((self.upconv1(d2), e1), dim=1))


class UNetSmall(_UNetBase):
    arch = "small"

    def __init__(self, in_channels: int = 3, num_classes: int = 32):
        super().__init__()
        self.in_channels, self.num_classes = in_channels, num_classes
        self.enc1 = conv_block(in_channels, 4)
        self.enc2 = conv_block(4, 8, pool=True)
        self.enc3 = conv_block(8, 32, pool=True)
        self.bneck = conv_block(32, 64, pool=True)
        self.upconv3 = upconv(64, 32)
        self.dec3 = conv_block(64, 32)
        self.upconv2 = upconv(32, 8)
        self.dec2 = conv_block(16, 8)
        self.upconv1 = upconv(8, 4)
        self.dec1 = conv_block(8, 16)
        self.conv = nn.Conv2d(16, num_classes, kernel_size=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self._unet(self.enc1(x))


class UNetLarge(_UNetBase):
    arch = "large"

    def __init__(self, in_channels: int = 3, num_classes: int = 256):
        super().__init__()
        self.in_channels, self.num_classes = in_channels, num_classes
        self.prep0 = conv_block(in_channels, 64)
        self.prep1 = conv_block(64, 64)
        self.prep2 = conv_block(64, 32)
        self.enc1 = conv_block(32, 8)
        self.enc2 = conv_block(8, 28, pool=True)
        self.enc3 = conv_block(28, 56, pool=True)
        self.bneck = conv_block(56, 112, pool=True)
        self.upconv3 = upconv(112, 56)
        self.dec3 = conv_block(112, 56)
        self.upconv2 = upconv(56, 28)
        self.dec2 = conv_block(56, 28)
        self.upconv1 = upconv(28, 8)
        self.dec1 = conv_block(16, 48)
        self.dec0 = conv_block(48, 64)
        self.conv_p1 = conv_block(64, 64)
        self.conv_p2 = conv_block(64, 64)
        self.conv_p3 = conv_block(64, 64)
        self.conv = nn.Conv2d(64, num_classes, kernel_size=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        d1 = self._unet(self.enc1(self.prep2(self.prep1(self.prep0(x)))))
        return self.conv_p3(self.conv_p2(self.conv_p1(self.dec0(d1))))


ARCHITECTURES: dict[str, type[_UNetBase]] = {"small": UNetSmall, "large": UNetLarge}


def build_model(arch: str, in_channels: int = 3, num_classes: int | None = None) -> _UNetBase:
    try:
        cls = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r} (known: {', '.join(ARCHITECTURES)})") from None
    if num_classes is None:
        return cls(in_channels=in_channels)
    return cls(in_channels=in_channels, num_classes=num_classes)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flops_per_pixel(model: _UNetBase) -> float:
    """Multiply-adds x2 per input pixel, from the conv shapes (pooled levels weigh 1/4 each)."""
    total = 0.0
    scale = 1.0  # spatial scale of the current level; modules are registered in data-flow order
    for mod in model.modules():
        if isinstance(mod, nn.MaxPool2d):
            scale /= 4
        elif isinstance(mod, nn.ConvTranspose2d):
            total += 2 * mod.in_channels * mod.out_channels * 9 * scale  # per *input* pixel
            scale *= 4
        elif isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            total += 2 * mod.in_channels * mod.out_channels * k * scale
    return total
