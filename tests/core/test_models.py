"""The two UNets match the seed document: module names, per-layer parameters, any input size."""

from __future__ import annotations

import pytest
import torch

from core.model.networks import UNetLarge, UNetSmall, count_parameters, flops_per_pixel

# The seed's torchsummary table for UNetSmall on a 3x128x128 input: (layer type, output shape, params).
SEED_TABLE = [
    ("Conv2d", (4, 128, 128), 112), ("BatchNorm2d", (4, 128, 128), 8), ("ReLU", (4, 128, 128), 0),
    ("MaxPool2d", (4, 64, 64), 0), ("Conv2d", (8, 64, 64), 296), ("BatchNorm2d", (8, 64, 64), 16),
    ("ReLU", (8, 64, 64), 0), ("MaxPool2d", (8, 32, 32), 0), ("Conv2d", (32, 32, 32), 2336),
    ("BatchNorm2d", (32, 32, 32), 64), ("ReLU", (32, 32, 32), 0), ("MaxPool2d", (32, 16, 16), 0),
    ("Conv2d", (64, 16, 16), 18496), ("BatchNorm2d", (64, 16, 16), 128), ("ReLU", (64, 16, 16), 0),
    ("ConvTranspose2d", (32, 32, 32), 18464), ("Conv2d", (32, 32, 32), 18464),
    ("BatchNorm2d", (32, 32, 32), 64), ("ReLU", (32, 32, 32), 0), ("ConvTranspose2d", (8, 64, 64), 2312),
    ("Conv2d", (8, 64, 64), 1160), ("BatchNorm2d", (8, 64, 64), 16), ("ReLU", (8, 64, 64), 0),
    ("ConvTranspose2d", (4, 128, 128), 292), ("Conv2d", (16, 128, 128), 1168),
    ("BatchNorm2d", (16, 128, 128), 32), ("ReLU", (16, 128, 128), 0), ("Conv2d", (32, 128, 128), 544),
]


def summary_rows(model: torch.nn.Module, size: int = 128) -> list[tuple[str, tuple, int]]:
    """What torchsummary prints: one row per leaf module call, in execution order."""
    rows, hooks = [], []
    for module in model.modules():
        if not list(module.children()):
            hooks.append(module.register_forward_hook(
                lambda m, i, o: rows.append((type(m).__name__, tuple(o.shape[1:]),
                                             sum(p.numel() for p in m.parameters())))))
    model.eval()(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()
    return rows


def test_unet_small_matches_the_seed_table_row_for_row():
    rows = summary_rows(UNetSmall())
    assert rows == SEED_TABLE
    assert count_parameters(UNetSmall()) == 63_972


def test_unet_small_module_names_follow_the_printed_struct():
    names = [n for n, _ in UNetSmall().named_children()]
    assert names == ["enc1", "enc2", "enc3", "bneck", "upconv3", "dec3", "upconv2", "dec2", "upconv1", "dec1", "conv"]
    keys = set(UNetSmall().state_dict())
    assert {"enc1.0.weight", "enc2.1.weight", "bneck.2.running_var", "dec1.1.num_batches_tracked",
            "upconv3.weight", "conv.bias"} <= keys


def test_unet_large_follows_the_prose_and_has_439180_parameters():
    model = UNetLarge()
    assert count_parameters(model) == 439_180
    expect = {  # block: (in, out, pooled)
        "prep0": (3, 64, False), "prep1": (64, 64, False), "prep2": (64, 32, False), "enc1": (32, 8, False),
        "enc2": (8, 28, True), "enc3": (28, 56, True), "bneck": (56, 112, True), "dec3": (112, 56, False),
        "dec2": (56, 28, False), "dec1": (16, 48, False), "dec0": (48, 64, False),
        "conv_p1": (64, 64, False), "conv_p2": (64, 64, False), "conv_p3": (64, 64, False),
    }
    for name, (cin, cout, pooled) in expect.items():
        block = getattr(model, name)
        kinds = [type(m).__name__ for m in block]
        assert kinds == (["MaxPool2d"] if pooled else []) + ["Conv2d", "BatchNorm2d", "ReLU"], name
        conv = block[1 if pooled else 0]
        assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.padding) == (cin, cout, (3, 3), (1, 1))
    for name, (cin, cout) in {"upconv3": (112, 56), "upconv2": (56, 28), "upconv1": (28, 8)}.items():
        up = getattr(model, name)
        assert (up.in_channels, up.out_channels, up.stride, up.output_padding) == (cin, cout, (2, 2), (1, 1))
    assert (model.conv.in_channels, model.conv.out_channels, model.conv.kernel_size) == (64, 256, (1, 1))


def test_flop_count_matches_the_documented_465_kflop_per_pixel():
    assert flops_per_pixel(UNetLarge()) == pytest.approx(464_912)
    assert flops_per_pixel(UNetSmall()) == pytest.approx(8_440)


@pytest.mark.parametrize("cls", [UNetSmall, UNetLarge])
@pytest.mark.parametrize("size", [(1, 1), (37, 53), (64, 64), (130, 7)])
def test_any_image_size_gives_logits_of_the_same_size(cls, size):
    model = cls(num_classes=6).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, *size))
    assert out.shape == (2, 6, *size)


def test_padding_is_reflection_so_content_near_the_border_is_not_diluted():
    model = UNetSmall(num_classes=3).eval()
    x = torch.rand(1, 3, 37, 53)
    from core.model.networks import pad_to_multiple

    padded = pad_to_multiple(x)
    assert padded.shape[-2:] == (40, 56)
    assert torch.equal(padded[..., 37, :53], x[..., 35, :])  # reflect, not zeros or edge copies
    with torch.no_grad():
        assert torch.equal(model(x), model.conv(model.features(padded))[..., :37, :53])
