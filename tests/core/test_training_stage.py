"""Staging the app's image/mask pairs for core.training.loop: what training sees, and what it keeps."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from core.classes import ClassInfo
from core.io.masks import default_mask_path, read_mask, write_mask
from core.training.synthetic import SHAPE_CLASSES, generate_scene
from core.training.stage import (StageError, annotated_pairs, copy_model, free_model_path, highest_class_id,
                                 link_or_copy, stage_pairs, staged_pairs, training_classes)


def scene(folder, name, seed, with_mask=True):
    rgb, labels = generate_scene(seed, 32, 40)
    path = folder / name
    Image.fromarray(rgb).save(path)
    if with_mask:
        write_mask(default_mask_path(path), labels, "index", SHAPE_CLASSES)
    return path, labels


def test_annotated_pairs_uses_saved_masks_only(tmp_path):
    a, _ = scene(tmp_path, "a.png", 1)
    b, _ = scene(tmp_path, "b.png", 2, with_mask=False)
    c, _ = scene(tmp_path, "c.png", 3)
    pairs, missing = annotated_pairs([a, b, c])
    assert pairs == [(a, tmp_path / "a_mask.png"), (c, tmp_path / "c_mask.png")]
    assert missing == [b]
    elsewhere = tmp_path / "sub"
    elsewhere.mkdir()
    (elsewhere / "b.png").write_bytes((tmp_path / "a_mask.png").read_bytes())
    pairs, missing = annotated_pairs([b], mask_for=lambda p: elsewhere / p.name)
    assert pairs == [(b, elsewhere / "b.png")] and missing == []


def test_staged_folders_pair_up_for_training(tmp_path):
    from core.training.loop import find_pairs

    src = tmp_path / "photos"
    src.mkdir()
    one, labels_one = scene(src, "one.png", 1)
    two, labels_two = scene(src, "two.png", 2)
    with staged_pairs([(one, default_mask_path(one)), (two, default_mask_path(two))], SHAPE_CLASSES) as (images, masks):
        pairs = find_pairs(images, masks)
        assert [(i.name, m.name) for i, m in pairs] == [("one.png", "one_mask.png"), ("two.png", "two_mask.png")]
        assert (read_mask(pairs[1][1], classes=SHAPE_CLASSES) == labels_two).all()
        classes = json.loads((masks / "classes.json").read_text())
        assert [c["name"] for c in classes] == [c.name for c in SHAPE_CLASSES]
        root = images.parent
    assert not root.exists()  # the temporary folder goes ...
    assert one.is_file() and default_mask_path(one).is_file()  # ... the originals stay
    assert (read_mask(default_mask_path(one), classes=SHAPE_CLASSES) == labels_one).all()


def test_repeated_stems_get_distinct_names(tmp_path):
    first, second = tmp_path / "x", tmp_path / "y"
    first.mkdir()
    second.mkdir()
    a, _ = scene(first, "cells.png", 1)
    b, _ = scene(second, "Cells.png", 2)
    c, _ = scene(second, "cells.tif", 3, with_mask=False)
    images, masks = stage_pairs([(a, default_mask_path(a)), (b, default_mask_path(b)),
                                 (c, default_mask_path(b))], tmp_path / "stage")
    assert sorted(p.name for p in images.iterdir()) == ["Cells-2.png", "cells-3.tif", "cells.png"]
    assert sorted(p.name for p in masks.iterdir()) == ["Cells-2_mask.png", "cells-3_mask.png", "cells_mask.png"]
    assert not (masks / "classes.json").exists()  # no class list given: training uses its own


def test_missing_files_are_named(tmp_path):
    a, _ = scene(tmp_path, "a.png", 1)
    default_mask_path(a).unlink()
    with pytest.raises(StageError, match=r"^a_mask\.png: the mask file is missing"):
        stage_pairs([(a, default_mask_path(a))], tmp_path / "s1")
    with pytest.raises(StageError, match="no annotated images"):
        stage_pairs([], tmp_path / "s2")


def test_link_falls_back_to_a_copy(tmp_path, monkeypatch):
    src = tmp_path / "src.bin"
    src.write_bytes(b"data")

    def refuse(*_args):
        raise OSError("not here")

    assert link_or_copy(src, tmp_path / "link.bin") in ("symlink", "hardlink")
    monkeypatch.setattr(os, "symlink", refuse)
    monkeypatch.setattr(os, "link", refuse)
    assert link_or_copy(src, tmp_path / "copy.bin") == "copy"
    assert (tmp_path / "copy.bin").read_bytes() == b"data" and not (tmp_path / "copy.bin").is_symlink()


def test_class_list_has_no_gaps():
    classes = [ClassInfo(0, "bg", (0, 0, 0)), ClassInfo(2, "nucleus", (0, 255, 0))]
    out = training_classes(classes)
    assert [c.id for c in out] == [0, 1, 2]
    assert out[2] == ClassInfo(2, "nucleus", (0, 255, 0)) and out[0].name == "bg"
    assert [c.id for c in training_classes([ClassInfo(0, "bg", (0, 0, 0))])] == [0, 1]


def test_class_list_covers_every_id_the_masks_use(tmp_path):
    a, labels = scene(tmp_path, "a.png", 1)
    assert labels.max() >= 3
    two = [ClassInfo(0, "bg", (0, 0, 0)), ClassInfo(1, "ellipse", (1, 2, 3))]
    _, masks = stage_pairs([(a, default_mask_path(a))], tmp_path / "stage", two)
    classes = json.loads((masks / "classes.json").read_text())
    assert [c["id"] for c in classes] == list(range(int(labels.max()) + 1))
    assert classes[1]["name"] == "ellipse" and classes[1]["color"] == [1, 2, 3]
    assert highest_class_id([default_mask_path(a), tmp_path / "missing.png"]) == labels.max()


def test_free_model_path_never_replaces(tmp_path):
    assert free_model_path(tmp_path) == tmp_path / "unetseg_model.safetensors"
    (tmp_path / "unetseg_model.safetensors").write_bytes(b"1")
    (tmp_path / "unetseg_model-2.safetensors").write_bytes(b"2")
    assert free_model_path(tmp_path) == tmp_path / "unetseg_model-3.safetensors"


def test_copy_model_is_a_full_copy(tmp_path):
    src = tmp_path / "model.safetensors"
    data = np.arange(1000, dtype=np.uint8).tobytes()
    src.write_bytes(data)
    dst = copy_model(src, tmp_path / "copy.safetensors")
    assert dst.read_bytes() == data and src.read_bytes() == data
    assert copy_model(src, src) == src and src.read_bytes() == data
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left
