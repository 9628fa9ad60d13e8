"""Segmenter: tiling equals whole-image inference, callbacks, cancellation, OOM recovery."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.model.networks import HALO
from core.segment.inference import Cancelled, Segmenter, device_availability, plan_tiles, resolve_device
from core.model.networks import build_model
from core.training.synthetic import generate_scene
from tests.helpers import limit_window, simulate_exhausted_gpu


def measured_rf_radius(arch: str) -> int:
    """Largest distance at which an input pixel still influences an output pixel, over the 8 phases."""
    model = build_model(arch, 3, 2).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                m.weight.fill_(0.01)  # positive weights: every ReLU passes, every path shows up
                m.bias.fill_(0.01)
    radius, size = 0, 192
    for phase in range(8):
        x = torch.ones(1, 3, size, size, requires_grad=True)
        c = size // 2 + phase
        model(x)[0, 0, c, c].backward()
        hit = (x.grad[0].abs().sum(0) > 0).nonzero()
        radius = max(radius, int((hit - c).abs().max()))
    return radius


@pytest.mark.parametrize("arch", ["small", "large"])
def test_halo_covers_receptive_field(arch):
    rf = measured_rf_radius(arch)
    assert HALO[arch] >= rf and HALO[arch] % 8 == 0
    assert HALO[arch] - rf < 8  # and not wastefully larger


def test_tile_plan_covers_every_pixel_exactly_once_with_aligned_windows():
    h, w, window, halo = 301, 517, 128, 24
    tiles = plan_tiles(h, w, window, halo)
    cover = np.zeros((h, w), np.int32)
    for t in tiles:
        cover[t.cy0:t.cy1, t.cx0:t.cx1] += 1
        assert t.wy0 % 8 == 0 and t.wx0 % 8 == 0
        assert (t.wy1 - t.wy0, t.wx1 - t.wx0) == (window, window)  # fixed shape: batchable
        assert t.wy0 <= max(0, t.cy0 - halo) and t.wx0 <= max(0, t.cx0 - halo)
        assert t.wy1 >= min(t.cy1 + halo, 304) and t.wx1 >= min(t.cx1 + halo, 520)
    assert (cover == 1).all()


@pytest.mark.parametrize("weights", ["small_weights", "large_weights"])
def test_tiled_output_equals_whole_image_output_on_an_odd_sized_image(request, weights):
    seg = Segmenter.load(request.getfixturevalue(weights), device="cpu")
    image = generate_scene(3, 203, 317)[0]
    whole = seg.segment(image, tile_size=0)
    assert len(np.unique(whole)) >= 3  # the comparison means something
    tiled = seg.segment(image, tile_size=2 * seg.halo + 64)
    assert (tiled == whole).mean() >= 0.9999


def test_prepared_network_matches_the_plain_pytorch_model(small_weights):
    seg = Segmenter.load(small_weights, device="cpu")
    image = generate_scene(5, 120, 200)[0]
    norm = seg.checkpoint.normalization
    x = (torch.from_numpy(image.copy()).float() / norm.value_range - torch.tensor(norm.mean)) / torch.tensor(norm.std)
    with torch.no_grad():
        expected = seg.checkpoint.build().eval()(x.permute(2, 0, 1)[None]).argmax(1)[0].numpy()
    got = seg.segment(image)
    assert got.dtype == np.uint8 and got.shape == (120, 200)
    assert (got == expected).mean() >= 0.9999


def test_grey_rgba_and_tiny_images_are_accepted(small_weights):
    seg = Segmenter.load(small_weights, device="cpu")
    rgb = generate_scene(1, 64, 80)[0]
    grey = rgb.mean(axis=2).astype(np.uint8)
    assert (seg.segment(grey) == seg.segment(np.stack([grey] * 3, axis=2))).all()
    rgba = np.concatenate([rgb, np.full((64, 80, 1), 7, np.uint8)], axis=2)
    assert (seg.segment(rgba) == seg.segment(rgb)).all()
    assert seg.segment(rgb[:1, :1]).shape == (1, 1)
    assert seg.segment(rgb[:3, :2]).shape == (3, 2)


def test_progress_on_tile_and_metadata(small_weights):
    seg = Segmenter.load(small_weights, device="cpu")
    assert seg.device == "cpu" and seg.classes[0] == (0, "background", (0, 0, 0))
    image = generate_scene(2, 200, 260)[0]
    calls, blocks = [], np.zeros((200, 260), np.int32)

    def on_tile(y, x, block):
        blocks[y:y + block.shape[0], x:x + block.shape[1]] += 1

    labels = seg.segment(image, tile_size=96, progress=lambda d, t: calls.append((d, t)), on_tile=on_tile)
    total = calls[-1][1]
    assert total > 4 and calls == [(i, total) for i in range(total + 1)]
    assert (blocks == 1).all()
    assert labels.max() < seg.num_classes


def test_cancel_stops_between_tiles(small_weights):
    seg = Segmenter.load(small_weights, device="cpu")
    image = generate_scene(2, 200, 260)[0]
    seen = []
    with pytest.raises(Cancelled):
        seg.segment(image, tile_size=96, progress=lambda d, t: seen.append(d), should_cancel=lambda: len(seen) > 2)
    assert seen == [0, 1, 2]




def test_out_of_memory_halves_the_tile_and_retries(small_weights, monkeypatch):
    seg = Segmenter.load(small_weights, device="cpu")
    image = generate_scene(4, 300, 300)[0]
    expected = seg.segment(image, tile_size=0)
    limit_window(monkeypatch, seg, max_side=160)
    warnings = []
    got = seg.segment(image, tile_size=304, warn=warnings.append)
    assert (got == expected).mean() >= 0.9999
    assert warnings and "152-pixel tiles" in warnings[0]


@pytest.mark.filterwarnings("ignore:CUDA is not available")
def test_out_of_memory_on_a_gpu_falls_back_to_the_cpu(small_weights, monkeypatch):
    seg = Segmenter.load(small_weights, device="cpu")
    image = generate_scene(4, 200, 200)[0]
    expected = seg.segment(image)

    simulate_exhausted_gpu(monkeypatch, seg)
    warnings = []
    got = seg.segment(image, warn=warnings.append)
    assert seg.device == "cpu"
    assert (got == expected).all()
    assert any("continuing on the CPU" in w for w in warnings)



def test_devices_are_reported_with_reasons():
    avail = device_availability()
    assert avail["cpu"] == (True, "")
    for kind in ("cuda", "mps"):
        ok, why = avail[kind]
        assert ok or why  # unavailable devices say why
    if not avail["cuda"][0]:
        with pytest.raises(RuntimeError, match="cuda.*not available"):
            resolve_device("cuda")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
