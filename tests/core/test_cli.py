"""The `unetseg` command line as a user runs it: outputs, one-line errors, exit status."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.cli.main import main
from core.io.masks import read_mask
from core.training.synthetic import generate_scene

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i, (h, w) in enumerate([(64, 80), (37, 53)]):
        Image.fromarray(generate_scene(i, h, w)[0]).save(folder / f"img{i}.png")
    return folder


def test_segment_writes_every_format_for_files_and_folders(images, tmp_path, small_weights, capsys):
    out = tmp_path / "out"
    extra = tmp_path / "extra.jpg"
    Image.fromarray(generate_scene(9, 48, 40)[0]).save(extra)
    rc = main(["segment", str(images), str(extra), "-o", str(out), "--model", str(small_weights),
               "--format", "index", "color", "overlay", "tiff", "npy", "coco", "--tile", "0", "--device", "cpu"])
    assert rc == 0, capsys.readouterr().err
    for stem, shape in [("img0", (64, 80)), ("img1", (37, 53)), ("extra", (48, 40))]:
        index = read_mask(out / f"{stem}.png")
        assert index.shape == shape and index.max() < 5
        assert (read_mask(out / f"{stem}.tif") == index).all()
        assert (np.load(out / f"{stem}.npy") == index).all()
        assert Image.open(out / f"{stem}_color.png").size == shape[::-1]
        assert Image.open(out / f"{stem}_overlay.png").mode == "RGB"
        assert (read_mask(out / "coco.json", image_name=f"{stem}.{'jpg' if stem == 'extra' else 'png'}") == index).all()
    coco = json.loads((out / "coco.json").read_text())
    assert len(coco["images"]) == 3 and {c["id"] for c in coco["categories"]} == {1, 2, 3, 4}


def test_one_bad_input_is_one_line_and_the_rest_still_run(images, tmp_path, small_weights, capsys):
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    (images / "notes.png").write_text("not an image")
    missing = tmp_path / "missing.png"
    rc = main(["segment", str(images), str(missing), "-o", str(tmp_path / "out"), "--model", str(small_weights)])
    err = capsys.readouterr().err
    assert rc == 1
    bad = [line for line in err.splitlines() if line.startswith(str(images)) or line.startswith(str(missing))]
    assert len(bad) == 3
    assert any("broken.png" in line for line in bad) and any("missing.png: file not found" in line for line in bad)
    assert "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img0.png", "img1.png"]
    assert "segmented 2 of 5 image(s)" in err


def test_a_bad_model_is_one_line_and_exit_1(images, tmp_path, capsys):
    junk = tmp_path / "junk.pt"
    junk.write_text("nope")
    assert main(["segment", str(images), "-o", str(tmp_path / "o"), "--model", str(junk)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: junk.pt:") and "\n" not in err


def test_tta_flag_changes_how_the_image_is_segmented(images, tmp_path, small_weights):
    from core.segment.inference import Segmenter

    seg = Segmenter.load(small_weights, device="cpu")
    image = np.asarray(Image.open(images / "img0.png"))
    assert main(["segment", str(images / "img0.png"), "-o", str(tmp_path / "t"), "--model", str(small_weights),
                 "--tta"]) == 0
    assert (read_mask(tmp_path / "t" / "img0.png") == seg.segment(image, tta=True)).all()
    assert not (seg.segment(image, tta=True) == seg.segment(image, tta=False)).all()


def test_repeated_stems_do_not_overwrite_each_other(tmp_path, small_weights):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        Image.fromarray(generate_scene(1, 32, 32)[0]).save(tmp_path / sub / "same.png")
    rc = main(["segment", str(tmp_path / "a" / "same.png"), str(tmp_path / "b" / "same.png"),
               "-o", str(tmp_path / "out"), "--model", str(small_weights)])
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["same-2.png", "same.png"]


def test_output_never_overwrites_an_input_image(images, small_weights, capsys):
    before = (images / "img0.png").read_bytes()
    rc = main(["segment", str(images / "img0.png"), "-o", str(images), "--model", str(small_weights)])
    assert rc == 1 and (images / "img0.png").read_bytes() == before
    assert "would overwrite the image itself" in capsys.readouterr().err


def test_info_describes_model_classes_and_devices(small_weights, capsys):
    assert main(["info", str(small_weights)]) == 0
    out = capsys.readouterr().out
    assert "UNetSmall" in out and "parameters: 63," in out and "background" in out
    assert "test-time augmentation" not in out and "edge refinement: off" in out  # neither for this model
    assert "model small5: UNetSmall (no description)" in out
    assert "cuda:" in out and "mps:" in out and "torch:" in out


def test_builtin_models_are_listed_readably(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "model small: UNetSmall (demo, synthetic shapes)" in out and "model large: UNetLarge" in out
    assert "Demo model: recognises ellipses" in out and "ellipse" in out
    assert "edge refinement: guided filter, radius 16 px" in out and "edge refinement: guided filter, radius 8 px" in out
    # the recipe as key = value lines, training time and device, calibration as a radius x eps table
    assert re.search(r"\n      patch +\= 192\n", out) and "    kept epoch = 20 of 25" in out
    assert "    time       = 2.5 min on cuda:0, torch 2.11.0+cu130" in out
    assert "    radius  eps 0.0001   eps 0.001    eps 0.01" in out
    assert "        16      0.8444      0.8355      0.7847" in out
    assert not any(len(line) > 300 for line in out.splitlines())  # no raw JSON blobs
    assert '{"' not in out


def test_info_json_is_the_full_metadata_for_scripts(small_weights, capsys):
    assert main(["info", "small", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (small,) = data["models"]
    assert small["name"] == "small" and small["summary"] == "demo, synthetic shapes"
    meta = small["metadata"]
    assert meta["calibration"]["candidates"][0] == {"radius": 2, "eps": 0.0001, "miou": 0.8054}
    assert meta["training"]["init"]["training"]["config"]["epochs"] == 60 and meta["classes"][4]["name"] == "star"
    assert "cuda" in data["devices"]
    assert main(["info", str(small_weights), "--json"]) == 0
    custom = json.loads(capsys.readouterr().out)["models"][0]
    assert custom["description"] == "no description" and custom["training"] is None


def test_train_records_relative_paths_and_the_data_set(tmp_path, monkeypatch):
    from core.model.checkpoints import load_checkpoint
    from core.training.synthetic import write_dataset

    write_dataset(tmp_path / "data", 4, seed=2, height=48, width=48)
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--images", str(tmp_path / "data/images"), "--masks", "data/masks", "--epochs", "1",
            "--steps-per-epoch", "2", "--batch", "2", "--patch", "32", "--device", "cpu", "--val-fraction", "0.25",
            "-o", str(tmp_path / "out.safetensors")]
    monkeypatch.setattr(sys, "argv", ["unetseg", *argv])
    assert main(argv) == 0
    ck = load_checkpoint(tmp_path / "out.safetensors")
    training = ck.metadata["training"]
    assert ck.summary == "trained on 4 images of images"
    assert ck.description.startswith("Recognises class 1, class 2, class 3. Trained on 4 annotated images "
                                      f"from {(tmp_path / 'data/images').as_posix()}. ")
    assert "mIoU 0." in ck.description  # on held-out images, or (this few) on its own training images
    assert training["command"].startswith("unetseg train --images data/images --masks data/masks --epochs 1")
    assert training["command"].endswith("-o out.safetensors")
    assert training["dataset"]["images"] == 4 and len(training["dataset"]["files_sha256"]) == 16


def test_no_command_or_an_image_path_opens_the_app(tmp_path):
    calls = []
    assert main([], launch_gui=lambda args: calls.append(args) or 0) == 0
    image = tmp_path / "x.png"
    Image.new("RGB", (4, 4)).save(image)
    main([str(image)], launch_gui=lambda args: calls.append(args) or 0)
    assert calls == [[], [str(image)]]


def test_python_dash_m_core_help_runs_without_qt():
    out = subprocess.run([sys.executable, "-m", "core", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for command in ("segment", "info", "train", "calibrate", "generate", "self-test", "open"):
        assert command in out.stdout


def test_self_test_passes_on_the_shipped_models(capsys):
    assert main(["self-test", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "self-test passed" in out and "format coco" in out and "model large" in out
