"""Edge refinement (the guided filter) and its calibration on annotated images."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from core.segment.calibration import calibrate, write_calibrated
from core.model.checkpoints import load_checkpoint
from core.cli.main import main
from core.segment.inference import DEFAULT_REFINEMENT, Segmenter
from core.model.refine import GuidedFilter, Refinement, box_mean
from core.metrics import mean_iou
from core.training.synthetic import generate_scene, scene_seed, write_dataset


def reference_guided_filter(guide: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al.'s colour guided filter written out per pixel (windows clipped at the borders)."""
    g, h, w = guide.shape

    def window(y, x):
        return slice(max(0, y - r), y + r + 1), slice(max(0, x - r), x + r + 1)

    a = np.zeros((g, h, w))
    b = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            ys, xs = window(y, x)
            im = guide[:, ys, xs].reshape(g, -1)
            pm = p[ys, xs].ravel()
            cov = np.cov(im, bias=True).reshape(g, g) + eps * np.eye(g)
            cross = (im * pm).mean(1) - im.mean(1) * pm.mean()
            a[:, y, x] = np.linalg.solve(cov, cross)
            b[y, x] = pm.mean() - a[:, y, x] @ im.mean(1)
    out = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            ys, xs = window(y, x)
            out[y, x] = a[:, ys, xs].reshape(g, -1).mean(1) @ guide[:, y, x] + b[ys, xs].mean()
    return out


def two_colour_image(h=64, w=64, edge=32):
    """Red left of column ``edge``, blue from it on, with a little noise."""
    rng = np.random.default_rng(0)
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:, :edge] = (200, 40, 40)
    rgb[:, edge:] = (40, 60, 210)
    return np.clip(rgb + rng.normal(0, 4, rgb.shape), 0, 255).astype(np.uint8)


def test_the_filter_equals_the_textbook_definition():
    rng = np.random.default_rng(1)
    guide = rng.random((3, 14, 17)).astype(np.float32)
    p = rng.random((1, 14, 17)).astype(np.float32)
    setting = Refinement(2, 1e-3)  # radius < 4: no subsampling, so it is the exact filter
    assert setting.step == 1
    got = GuidedFilter(torch.from_numpy(guide), setting)(torch.from_numpy(p))[0].numpy()
    np.testing.assert_allclose(got, reference_guided_filter(guide, p[0], 2, 1e-3), atol=2e-4)


def test_box_mean_shrinks_its_window_at_the_borders():
    x = torch.arange(5.0)[None, None].repeat(1, 5, 1)
    np.testing.assert_allclose(box_mean(x, 1)[0, 2].numpy(), [0.5, 1, 2, 3, 3.5])


@pytest.mark.parametrize("radius, off_by", [(8, 3), (16, 5)])
def test_a_misplaced_boundary_snaps_to_the_colour_edge_and_probabilities_still_sum_to_one(radius, off_by):
    rgb = two_colour_image()
    p = torch.zeros(2, 64, 64)
    p[1, :, 32 - off_by :] = 0.9  # the network put the boundary too far left, and softly
    p[0] = 1 - p[1]
    guide = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255
    q = GuidedFilter(guide, Refinement(radius, 1e-3))(p)
    labels = q.argmax(0).numpy()
    assert (labels[:, :32] == 0).all() and (labels[:, 32:] == 1).all()
    torch.testing.assert_close(q.sum(0), torch.ones(64, 64), atol=1e-4, rtol=0)


def test_a_region_of_the_output_is_that_part_of_the_whole_output():
    rgb = generate_scene(4, 120, 150)[0]
    guide = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float() / 255
    p = torch.rand(5, 120, 150).softmax(0)
    gf = GuidedFilter(guide, Refinement(16, 1e-4))
    region = (slice(37, 101), slice(13, 150))
    torch.testing.assert_close(gf(p, region), gf(p)[:, region[0], region[1]], atol=1e-5, rtol=0)


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 70), w=st.integers(1, 70), radius=st.sampled_from([1, 2, 4, 8, 16, 32]),
       seed=st.integers(0, 2**16), data=st.data())
def test_any_region_of_any_size_matches_the_whole_and_sums_to_one(h, w, radius, seed, data):
    gen = torch.Generator().manual_seed(seed)
    guide = torch.rand(3, h, w, generator=gen)
    p = torch.rand(4, h, w, generator=gen).softmax(0)
    gf = GuidedFilter(guide, Refinement(radius, 1e-3))
    y0 = data.draw(st.integers(0, h - 1))
    x0 = data.draw(st.integers(0, w - 1))
    region = (slice(y0, data.draw(st.integers(y0 + 1, h))), slice(x0, data.draw(st.integers(x0 + 1, w))))
    whole = gf(p)
    torch.testing.assert_close(whole.sum(0), torch.ones(h, w), atol=1e-3, rtol=0)
    torch.testing.assert_close(gf(p, region), whole[:, region[0], region[1]], atol=1e-4, rtol=0)


@pytest.mark.parametrize("weights, tta", [("small_weights", False), ("small_weights", True), ("large_weights", False)])
def test_refined_tiles_equal_the_refined_whole_image(request, weights, tta):
    seg = Segmenter.load(request.getfixturevalue(weights), device="cpu")
    image = generate_scene(3, 203, 317)[0]
    setting = Refinement(16, 1e-4)
    whole = seg.segment(image, tile_size=0, refine=setting, tta=tta)
    assert (whole != seg.segment(image, tile_size=0, refine=False, tta=tta)).any()  # refinement did something
    tiled = seg.segment(image, tile_size=2 * (seg.halo + 40) + 32, refine=setting, tta=tta)
    assert (tiled == whole).mean() >= 0.9999


def test_refine_argument_none_uses_the_models_setting_false_turns_it_off(small_weights):
    seg = Segmenter.load(small_weights, device="cpu")
    assert seg.refine is None and seg.refinement() is None
    assert seg.refinement(True) == DEFAULT_REFINEMENT
    seg.refine = Refinement(4, 1e-3)
    assert seg.refinement() == seg.refinement(True) == Refinement(4, 1e-3)
    assert seg.refinement(False) is None
    assert seg.refinement(Refinement(8, 1e-2)) == Refinement(8, 1e-2)


def test_probabilities_are_what_segment_takes_the_argmax_of(small_weights):
    seg = Segmenter.load(small_weights, device="cpu")
    image = generate_scene(5, 150, 190)[0]
    for tta in (False, True):
        p = seg.probabilities(image, tta=tta, tile_size=96)
        torch.testing.assert_close(p.sum(0), torch.ones(150, 190), atol=1e-4, rtol=0)
        assert (p.argmax(0).numpy() == seg.segment(image, tta=tta)).mean() >= 0.9999


@pytest.mark.parametrize("raw", [None, "16", {"radius": 0, "eps": 1e-3}, {"radius": 4}, {"radius": "x", "eps": 1}])
def test_a_missing_or_malformed_stored_setting_means_off(raw):
    assert Refinement.from_json(raw) is None


@pytest.fixture(scope="module")
def scenes():
    return [generate_scene(scene_seed(11, i)) for i in range(6)]


def test_calibration_adopts_refinement_where_it_helps_and_keeps_the_weights(scenes, tmp_path):
    seg = Segmenter.load("small", device="cpu")
    settings = [Refinement(4, 1e-3), Refinement(16, 1e-4)]
    result = calibrate(seg, scenes, tta=False, settings=settings)
    assert result.refine in settings and result.best >= result.baseline + 0.005
    assert set(result.scores) == set(settings) and result.images == 6
    out = write_calibrated(seg.checkpoint, tmp_path / "small.safetensors", result, command="unetseg calibrate x")
    before, after = seg.checkpoint, load_checkpoint(out)
    assert after.refine == result.refine and after.tta == before.tta
    assert all(torch.equal(before.state_dict[k], after.state_dict[k]) for k in before.state_dict)
    assert after.metadata["calibration"]["command"] == "unetseg calibrate x"
    assert after.metadata["training"] == before.metadata["training"]  # provenance kept
    refined = Segmenter.load(out, device="cpu")
    preds = [refined.segment(rgb, tta=False) for rgb, _ in scenes]
    plain = [refined.segment(rgb, tta=False, refine=False) for rgb, _ in scenes]
    labels = [lab for _, lab in scenes]
    assert mean_iou(preds, labels)[0] > mean_iou(plain, labels)[0]


def test_calibration_leaves_refinement_off_where_it_cannot_help(scenes, small_weights):
    """Targets that are the model's own unrefined output: nothing can beat a perfect score."""
    seg = Segmenter.load(small_weights, device="cpu")
    own = [(rgb, seg.segment(rgb, refine=False)) for rgb, _ in scenes[:3]]
    result = calibrate(seg, own, settings=[Refinement(8, 1e-3)])
    assert result.refine is None and result.baseline == pytest.approx(1.0)
    assert "off" in result.summary()


def test_calibrate_command_writes_the_setting_info_shows_it_and_segment_can_turn_it_off(tmp_path, capsys):
    write_dataset(tmp_path / "cal", 4, seed=5)
    out = tmp_path / "cal.safetensors"
    args = ["calibrate", "small", "--images", str(tmp_path / "cal/images"), "--masks", str(tmp_path / "cal/masks"),
            "--no-tta", "-o", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "radius 16 px, eps 0.0001: mIoU" in text and f"saved {out}" in text
    meta = load_checkpoint(out).metadata
    assert meta["calibration"]["images"] == 4 and meta["calibration"]["tta"] is False
    assert json.dumps(meta["inference"]["refine"]) != "null"

    assert main(["info", str(out)]) == 0
    assert "edge refinement: guided filter" in capsys.readouterr().out

    image = tmp_path / "cal/images" / sorted(p.name for p in (tmp_path / "cal/images").iterdir())[0]
    runs = {}
    for flag in ("--refine", "--no-refine"):
        assert main(["segment", str(image), "-o", str(tmp_path / flag), "--model", str(out), "--no-tta", flag]) == 0
        runs[flag] = np.asarray(Image.open(next((tmp_path / flag).glob("*.png"))))
    assert (runs["--refine"] != runs["--no-refine"]).any()


def test_calibrate_refuses_an_output_that_is_not_safetensors(tmp_path, capsys):
    write_dataset(tmp_path / "cal", 1, seed=5)
    assert main(["calibrate", "small", "--images", str(tmp_path / "cal/images"), "--masks",
                 str(tmp_path / "cal/masks"), "-o", str(tmp_path / "x.pt")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "x.pt" in err and ".safetensors" in err


def makefile_commands(target: str) -> list[str]:
    """The unetseg commands of a Makefile target, with make's variables at their defaults."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "Makefile").read_text().replace("\\\n", " ")
    recipe = text.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    return [" ".join(line.replace("$(VENV)/bin/", "").replace("$(DATA)", "data/shapes").split())
            for line in recipe if "unetseg" in line]


def test_the_built_in_models_carry_a_calibrated_refinement_made_by_the_makefiles_commands():
    commands = makefile_commands("calibrate-models")
    assert any(c.startswith("unetseg generate -o data/shapes_calibration") for c in commands)
    for name in ("small", "large"):
        seg = Segmenter.load(name, device="cpu")
        record = seg.metadata["calibration"]
        assert seg.refine is not None and record["refine"] == seg.refine.to_json()
        assert record["command"] in commands
        assert record["miou"] > record["miou_unrefined"]


@pytest.mark.parametrize("shape", [(1, 1), (3, 2), (7, 300), (65, 9)])
def test_tiny_and_thin_images_are_refined_without_error(small_weights, shape):
    seg = Segmenter.load(small_weights, device="cpu")
    rgb = generate_scene(1, 80, 320)[0][: shape[0], : shape[1]]
    for setting in (Refinement(2, 1e-3), Refinement(32, 1e-4)):
        assert seg.segment(rgb, refine=setting).shape == shape


def test_a_grey_model_is_refined_with_a_grey_guide(tmp_path):
    from core.model.checkpoints import save_checkpoint
    from core.classes import default_classes
    from core.model.networks import build_model

    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "grey.safetensors", build_model("small", 1, 3).eval(), default_classes(3))
    seg = Segmenter.load(path, device="cpu")
    grey = generate_scene(2, 90, 130)[0].mean(axis=2).astype(np.uint8)
    setting = Refinement(8, 1e-3)
    whole = seg.segment(grey, refine=setting, tile_size=0)
    assert whole.shape == (90, 130)
    assert (seg.segment(grey, refine=setting, tile_size=2 * (seg.halo + 24) + 32) == whole).mean() >= 0.9999
