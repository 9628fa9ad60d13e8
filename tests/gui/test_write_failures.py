"""Every save and export path writes atomically: a full disk, a read-only or vanished folder
gives one message naming the path, and leaves the mask in memory (still unsaved) and the
previous file on disk exactly as they were."""

from __future__ import annotations

import errno
import os
import shutil

import numpy as np
import pytest

from core.io.masks import default_mask_path, write_mask
from tests.gui.helpers import MODEL_CLASSES, FakeSegmenter, label_images, write_image

REASONS = {errno.ENOSPC: "the disk is full", errno.EROFS: "read-only", errno.EACCES: "permission denied"}
PREVIOUS = b"the previous file, which must survive"


def fail_renames_into(monkeypatch, folder, code):
    """``os.replace`` into ``folder`` fails as the disk would (tests run as root: chmod can't)."""
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if os.path.dirname(os.path.abspath(dst)) == str(folder):
            raise OSError(code, os.strerror(code), str(dst))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


def edited(window, folder):
    image = write_image(folder / "cells.png")
    window.open_images([image])
    labels = np.zeros((60, 80), np.uint8)
    labels[10:30, 10:50] = 1
    window.document.apply_labels(labels)
    return image, labels


def untouched(folder, names):
    """Only ``names`` in ``folder``, each still holding PREVIOUS (no temp files, no partial ones)."""
    return sorted(p.name for p in folder.iterdir()) == sorted(names) and all(
        (folder / n).read_bytes() == PREVIOUS for n in names if n != "cells.png")


@pytest.mark.parametrize("code", sorted(REASONS))
@pytest.mark.parametrize("how", ["save", "save as", "export index", "export overlay", "export coco"])
def test_a_failed_write_keeps_mask_and_previous_file(qtbot, window, dialogs, tmp_path, monkeypatch, code, how):
    images, out = tmp_path / "images", tmp_path / "out"
    images.mkdir()
    out.mkdir()
    image, labels = edited(window, images)
    if how == "save":
        target = default_mask_path(image)
    elif how == "save as":
        target = out / "chosen.png"
        dialogs.answers["ask_save_path"] = target
    else:
        fmt = how.split()[1]
        target = out / f"export.{'json' if fmt == 'coco' else 'png'}"
        dialogs.answers["ask_export_path"] = (target, fmt)
    target.write_bytes(PREVIOUS)
    dialogs.answers["confirm"] = True  # "replace the mask you did not load?"
    fail_renames_into(monkeypatch, target.parent, code)
    action = {"save": "save", "save as": "save_as"}.get(how, "export")
    getattr(window.commands, action).trigger()
    [message] = dialogs.errors()
    assert message == f"cannot write {target}: {REASONS[code]}" or (
        str(target) in message and REASONS[code] in message)
    assert target.read_bytes() == PREVIOUS
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]  # no temp file left
    assert np.array_equal(window.mask, labels) and window.document.dirty
    assert window.current.save_path is None  # a failed Save As does not redirect later saves


def test_export_to_a_folder_that_vanished(qtbot, window, dialogs, tmp_path):
    image, labels = edited(window, tmp_path)
    gone = tmp_path / "usb stick"
    gone.mkdir()
    dialogs.answers["ask_export_path"] = lambda *a: (shutil.rmtree(gone), (gone / "m.png", "index"))[1]
    window.commands.export.trigger()
    assert dialogs.errors() == [f"cannot write {gone / 'm.png'}: the folder does not exist"]
    assert np.array_equal(window.mask, labels) and window.document.dirty


@pytest.mark.parametrize("code", [errno.ENOSPC, None])  # None: the folder is deleted
def test_export_all_reports_each_failed_file_and_keeps_the_old_ones(qtbot, window, dialogs, folder, tmp_path,
                                                                     monkeypatch, code):
    window.open_folder(folder)
    label_images(window, folder, 2)
    out = tmp_path / "exports"
    out.mkdir()
    old = ["img0.png", "coco.json"]
    for name in old:
        (out / name).write_bytes(PREVIOUS)
    if code is None:
        dialogs.answers["ask_export_formats"] = lambda *a: (shutil.rmtree(out), ["index", "coco"])[1]
    else:
        dialogs.answers["ask_export_formats"] = ["index", "coco"]
        fail_renames_into(monkeypatch, out, code)
    dialogs.answers["ask_export_folder"] = out
    with qtbot.waitSignal(window.export_all_finished, timeout=20_000) as blocker:
        window.commands.export_all.trigger()
    assert blocker.args == [0]
    [message] = dialogs.errors()
    reason = "the disk is full" if code else "the folder does not exist"
    for name in ("img0.png", "img1.png"):  # coco.json lists written images only: none here
        assert f"cannot write {out / name}: {reason}" in message
    if code is not None:
        assert untouched(out, old)
    assert all(e.dirty for e in window.store.entries[:2])


def test_segment_all_with_a_full_disk_keeps_the_previous_masks(qtbot, window, dialogs, folder, monkeypatch):
    previous = default_mask_path(folder / "img1.png")
    write_mask(previous, np.ones((48, 50), np.uint8), "index", MODEL_CLASSES)
    before = previous.read_bytes()
    window.open_folder(folder)
    window.models.set_segmenter(FakeSegmenter(tile=32, value=2))
    dialogs.answers["ask_overwrite_skip_cancel"] = "overwrite"
    fail_renames_into(monkeypatch, folder, errno.ENOSPC)
    with qtbot.waitSignal(window.segment_all_finished, timeout=20_000) as blocker:
        window.commands.segment_all.trigger()
    assert blocker.args == [0, 4]
    [message] = dialogs.errors()
    assert "4 images could not be segmented" in message
    assert f"cannot write {previous}: the disk is full" in message
    assert previous.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == sorted([f"img{i}.png" for i in range(4)] + [previous.name])
