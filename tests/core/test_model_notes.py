"""Models say what they are: descriptions in the metadata, written without touching the weights."""

from __future__ import annotations

import json

import pytest
from safetensors import safe_open

from core.segment.calibration import Calibration, write_calibrated
from core.model.checkpoints import NO_DESCRIPTION, CheckpointError, load_checkpoint
from core.model.metadata_edit import read_metadata, update_metadata
from core.resources import BUILTIN_MODELS, builtin_model_path


def raw_tensors(path):
    with safe_open(str(path), framework="pt", device="cpu") as f:
        return {k: (str(f.get_tensor(k).dtype), f.get_tensor(k).numpy().tobytes()) for k in f.keys()}


def test_a_checkpoint_without_a_description_says_so(small_weights):
    ck = load_checkpoint(small_weights)
    assert ck.description == NO_DESCRIPTION and ck.summary == NO_DESCRIPTION


def test_update_metadata_keeps_every_tensor_bit_for_bit(small_weights, tmp_path):
    out = update_metadata(small_weights, {"description": "Finds cells. Trained on 12 slides.", "note": None},
                          dst=tmp_path / "described.safetensors")
    assert raw_tensors(out) == raw_tensors(small_weights)
    before, after = read_metadata(small_weights), read_metadata(out)
    assert after == {**before, "description": "Finds cells. Trained on 12 slides."}
    ck = load_checkpoint(out)
    assert ck.description == "Finds cells. Trained on 12 slides." and ck.summary == "Finds cells"
    assert update_metadata(out, {"description": None}) == out and "description" not in read_metadata(out)


def test_calibration_keeps_the_description(small_weights, tmp_path):
    described = update_metadata(small_weights, {"description": "d", "summary": "s"}, dst=tmp_path / "d.safetensors")
    out = write_calibrated(load_checkpoint(described), tmp_path / "c.safetensors", Calibration(None, 0.5, {}, 3))
    ck = load_checkpoint(out)
    assert (ck.description, ck.summary) == ("d", "s") and ck.metadata["calibration"]["images"] == 3


def test_metadata_edit_refuses_other_files_naming_them(tmp_path):
    bad = tmp_path / "weights.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="weights.pt"):
        update_metadata(bad, {"description": "x"})
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    with pytest.raises(CheckpointError, match="broken.safetensors: not a readable safetensors file"):
        update_metadata(broken, {"description": "x"})


@pytest.mark.parametrize("name", BUILTIN_MODELS)
def test_builtin_models_say_they_are_demos_of_synthetic_shapes(name):
    ck = load_checkpoint(builtin_model_path(name))
    assert ck.summary == "demo, synthetic shapes"
    assert "Demo model" in ck.description and "never on photographs" in ck.description
    assert "Mean IoU" in ck.description and ck.metadata["quality"]["results"][0]["miou"] > 0.8


def test_the_shipped_notes_are_the_ones_in_builtin_notes():
    from core.model.builtin_notes import notes_for

    for name in BUILTIN_MODELS:
        meta = read_metadata(builtin_model_path(name))
        assert {k: meta.get(k) for k in notes_for(name)} == json.loads(json.dumps(notes_for(name)))


def test_the_menu_summary_is_read_without_torch(small_weights, tmp_path):
    import subprocess
    import sys

    from core.model.summary import peek_metadata, peek_summary

    assert peek_summary(builtin_model_path("small")) == "demo, synthetic shapes"
    assert peek_summary(small_weights) == NO_DESCRIPTION
    for junk in (b"", b"\xff" * 8, b"\x04\x00\x00\x00\x00\x00\x00\x00nope"):
        (tmp_path / "junk.safetensors").write_bytes(junk)
        assert peek_metadata(tmp_path / "junk.safetensors") == {}
    code = ("import sys; from core.model.summary import peek_summary; from core.resources import builtin_model_path;"
            "print(peek_summary(builtin_model_path('large'))); assert 'torch' not in sys.modules")
    root = builtin_model_path("small").parents[2]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=root)
    assert done.returncode == 0 and done.stdout.strip() == "demo, synthetic shapes", done.stderr
