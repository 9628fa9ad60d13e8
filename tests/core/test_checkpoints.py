"""Checkpoints load whatever shape people have, refuse code, and explain what is wrong."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from core.model.checkpoints import CheckpointError, Normalization, load_checkpoint, save_checkpoint
from core.classes import ClassInfo, default_classes
from core.model.networks import UNetLarge, UNetSmall


@pytest.fixture
def small_state():
    torch.manual_seed(1)
    return UNetSmall(in_channels=3, num_classes=7).state_dict()


def _same_weights(ck, state):
    return all(torch.equal(ck.state_dict[k], v) for k, v in state.items())


def test_safetensors_round_trip_keeps_weights_and_metadata(tmp_path):
    model = UNetLarge(num_classes=5)
    classes = [ClassInfo(0, "background", (0, 0, 0)), ClassInfo(1, "cell", (255, 0, 0)),
               ClassInfo(2, "nucleus", (0, 255, 0)), ClassInfo(3, "debris", (0, 0, 255)), ClassInfo(4, "x", (9, 9, 9))]
    norm = Normalization((0.5, 0.5, 0.5), (0.2, 0.2, 0.2), 255.0)
    path = save_checkpoint(tmp_path / "m.safetensors", model, classes, norm, extra={"training": {"epochs": 3}})
    ck = load_checkpoint(path)
    assert (ck.arch, ck.in_channels, ck.num_classes) == ("large", 3, 5)
    assert ck.classes == classes
    assert ck.normalization == norm
    assert ck.metadata["training"] == {"epochs": 3}
    assert _same_weights(ck, model.state_dict())


@pytest.mark.parametrize("wrap", [
    lambda sd: sd,
    lambda sd: {"state_dict": sd},
    lambda sd: {"model": sd, "optimizer": {"lr": 0.1}},
    lambda sd: {"model_state_dict": sd, "epoch": 4},
    lambda sd: {f"module.{k}": v for k, v in sd.items()},
    lambda sd: {"state_dict": {f"model.{k}": v for k, v in sd.items()}, "epoch": 9, "hyper_parameters": {"lr": 1e-3}},
    lambda sd: {"model": {f"module.model.{k}": v for k, v in sd.items()}},
])
def test_pt_files_in_the_usual_wrappers_and_prefixes_load(tmp_path, small_state, wrap):
    path = tmp_path / "weights.pt"
    torch.save(wrap(small_state), path)
    ck = load_checkpoint(path)
    assert (ck.arch, ck.in_channels, ck.num_classes) == ("small", 3, 7)
    assert _same_weights(ck, small_state)
    assert ck.classes[0].name == "background" and ck.classes[3].name == "class 3"


def test_architecture_channels_and_classes_are_inferred_from_shapes(tmp_path):
    state = UNetLarge(in_channels=1, num_classes=12).state_dict()
    torch.save(state, tmp_path / "grey.pth")
    ck = load_checkpoint(tmp_path / "grey.pth")
    assert (ck.arch, ck.in_channels, ck.num_classes) == ("large", 1, 12)
    assert len(ck.normalization.mean) == 1
    assert ck.build().conv.out_channels == 12


def test_half_precision_weights_and_missing_bn_counters_are_accepted(tmp_path, small_state):
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in small_state.items()
             if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "fp16.pt")
    ck = load_checkpoint(tmp_path / "fp16.pt")
    assert ck.state_dict["enc1.0.weight"].dtype == torch.float32


def test_the_default_test_time_augmentation_travels_with_the_weights(tmp_path):
    model = UNetSmall(num_classes=5)
    on = save_checkpoint(tmp_path / "tta.safetensors", model, default_classes(5), extra={"inference": {"tta": True}})
    off = save_checkpoint(tmp_path / "plain.safetensors", model, default_classes(5))
    assert (load_checkpoint(on).tta, load_checkpoint(off).tta) == (True, False)


def test_json_sidecar_supplies_class_names(tmp_path, small_state):
    torch.save(small_state, tmp_path / "cells.pt")
    (tmp_path / "cells.json").write_text(json.dumps({"classes": ["bg", "cell", {"id": 2, "name": "nucleus", "color": "#00ff00"}]}))
    ck = load_checkpoint(tmp_path / "cells.pt")
    assert [c.name for c in ck.classes[:4]] == ["bg", "cell", "nucleus", "class 3"]
    assert ck.classes[2].color == (0, 255, 0)


def test_default_palette_is_distinct_and_background_black():
    classes = default_classes(256)
    assert classes[0].color == (0, 0, 0)
    assert len({c.color for c in classes}) == 256


class Payload:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_pickle_that_would_run_code_is_refused_not_executed(tmp_path):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": {"x": Payload(str(marker))}}, f)
    with pytest.raises(CheckpointError, match=r"evil\.pt: refused to load"):
        load_checkpoint(path)
    assert not marker.exists()


def test_a_whole_pickled_model_is_refused_with_advice(tmp_path):
    torch.save(UNetSmall(), tmp_path / "full.pt")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "full.pt")
    assert "full.pt" in str(err.value) and "state_dict" in str(err.value)


@pytest.mark.parametrize("make, expected", [
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_text("hello, this is not a checkpoint"), "not"),
    (lambda p: p.write_bytes(bytes(range(256)) * 40), "not"),
])
def test_non_checkpoints_get_one_clear_sentence(tmp_path, make, expected):
    for name in ("junk.pt", "junk.safetensors"):
        path = tmp_path / name
        make(path)
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(path)
        text = str(err.value)
        assert text.startswith(f"{name}:") and expected in text and "\n" not in text


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_truncated_checkpoints_are_reported_as_such(tmp_path, suffix):
    full = tmp_path / f"full{suffix}"
    if suffix == ".pt":
        torch.save(UNetSmall().state_dict(), full)
    else:
        save_checkpoint(full, UNetSmall(), default_classes(32))
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=rf"cut\{suffix}: .*(truncated|corrupt)"):
        load_checkpoint(cut)


def test_wrong_shapes_name_the_tensor(tmp_path, small_state):
    small_state["dec2.0.weight"] = torch.zeros(8, 12, 3, 3)
    torch.save(small_state, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match=r"odd\.pt: does not fit UNetSmall.*dec2\.0\.weight is \(8, 12, 3, 3\)"):
        load_checkpoint(tmp_path / "odd.pt")


def test_missing_and_foreign_keys_are_named(tmp_path, small_state):
    del small_state["dec3.1.running_var"]
    torch.save(small_state, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match=r"partial\.pt: does not fit .*missing dec3\.1\.running_var"):
        load_checkpoint(tmp_path / "partial.pt")
    torch.save({"fc.weight": torch.zeros(3, 3), "fc.bias": torch.zeros(3)}, tmp_path / "resnet.pt")
    with pytest.raises(CheckpointError, match=r"resnet\.pt: is not a UNetSmall or UNetLarge checkpoint"):
        load_checkpoint(tmp_path / "resnet.pt")


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(CheckpointError, match="file not found"):
        load_checkpoint(tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointError, match="is a folder"):
        load_checkpoint(tmp_path)


def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "keep.safetensors", UNetSmall(num_classes=3), default_classes(3))
    before = path.read_bytes()
    import safetensors.torch

    def boom(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", boom)
    with pytest.raises(OSError, match="keep.safetensors: the disk is full|disk is full"):
        save_checkpoint(path, UNetSmall(num_classes=3), default_classes(3))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.safetensors"]
