"""Saving and exporting masks, write errors, and the questions before unsaved edits are lost."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from core.io.mask_naming import FORMATS, MASK_FORMATS, NOT_MASKS, output_path
from core.io.masks import default_mask_path, read_mask, write_mask
from tests.gui.helpers import drag, write_image


def edited(window, tmp_path, name="cells.png"):
    image = write_image(tmp_path / name)
    window.open_images([image])
    labels = np.zeros((60, 80), np.uint8)
    labels[10:30, 10:50] = 1
    window.document.apply_labels(labels)
    return image, labels


def test_save_writes_index_png_beside_the_image(qtbot, window, tmp_path):
    image, labels = edited(window, tmp_path)
    assert window.isWindowModified() and window.windowTitle() == "cells.png[*] — UNetSeg"
    assert window.file_panel.state_of(window.current) == "dirty"
    qtbot.keyClick(window.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    target = default_mask_path(image)
    assert (read_mask(target) == labels).all()
    assert Image.open(target).mode == "P"
    assert not window.document.dirty and not window.isWindowModified()
    assert window.file_panel.state_of(window.current) == "saved"
    drag(qtbot, window, [(70, 50), (75, 50)])
    assert window.isWindowModified()


def test_save_asks_before_replacing_a_mask_it_did_not_load(qtbot, window, dialogs, tmp_path):
    image, labels = edited(window, tmp_path)
    other = np.full((60, 80), 1, np.uint8)
    write_mask(default_mask_path(image), other, "index", window.document.classes)
    dialogs.answers["confirm"] = False
    assert not window.saver.save()
    assert (read_mask(default_mask_path(image)) == other).all() and window.document.dirty
    dialogs.answers["confirm"] = True
    assert window.saver.save()
    assert (read_mask(default_mask_path(image)) == labels).all()


def test_save_as_then_save_goes_to_the_chosen_file(qtbot, window, dialogs, tmp_path):
    image, labels = edited(window, tmp_path)
    chosen = tmp_path / "elsewhere" / "my_labels.png"
    chosen.parent.mkdir()
    dialogs.answers["ask_save_path"] = chosen
    window.commands.save_as.trigger()
    assert (read_mask(chosen) == labels).all()
    drag(qtbot, window, [(70, 50), (75, 50)])
    window.commands.save.trigger()
    assert read_mask(chosen)[50, 72] == window.document.active_class
    assert not default_mask_path(image).exists()


def test_write_error_names_the_path_and_keeps_the_mask(qtbot, window, dialogs, tmp_path):
    folder = tmp_path / "gone"
    folder.mkdir()
    image, labels = edited(window, folder)
    shutil.rmtree(folder)
    window.commands.save.trigger()
    errors = dialogs.errors()
    assert len(errors) == 1 and str(default_mask_path(image)) in errors[0]
    assert (window.mask == labels).all() and window.document.dirty
    assert window.file_panel.state_of(window.current) == "dirty"


@pytest.mark.parametrize("fmt", [f for f in MASK_FORMATS if f not in NOT_MASKS - {"overlay"}])  # objects: test_export_dialog
def test_export_each_format(qtbot, window, dialogs, tmp_path, fmt):
    image, labels = edited(window, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    target = out / f"export_{fmt}{FORMATS[fmt].extensions[0]}"
    dialogs.answers["ask_export_path"] = (target, fmt)
    window.commands.export.trigger()
    assert dialogs.errors() == []
    classes = window.document.classes
    if fmt == "overlay":
        rgb = np.asarray(Image.open(target).convert("RGB"))
        original = np.asarray(Image.open(image).convert("RGB"))
        assert rgb.shape == (60, 80, 3)
        assert (rgb[50, 70] == original[50, 70]).all() and (rgb[20, 20] != original[20, 20]).any()
    elif fmt == "coco":
        assert json.loads(target.read_text())["images"][0]["file_name"] == "cells.png"
        assert (read_mask(target, image_name="cells.png") == labels).all()
    else:
        assert (read_mask(target, shape=(60, 80), classes=classes, image_name="cells.png") == labels).all()
    assert window.document.dirty  # an export is not the image's saved mask


def test_export_suggests_the_names_the_command_line_writes(qtbot, window, dialogs, tmp_path):
    edited(window, tmp_path, "cells.png")
    out = tmp_path / "out"
    out.mkdir()
    window.settings.last_export_folder = str(out)
    seen = {}
    dialogs.answers["ask_export_path"] = lambda parent, suggested, fmt: seen.update(suggested)
    window.commands.export.trigger()
    assert seen["color"] == out / "cells_color.png" == output_path(out, "cells", "color")
    assert seen["geojson"] == output_path(out, "cells", "geojson")
    assert seen["index"] == out / "cells.png"  # another folder: the CLI's name
    window.settings.last_export_folder = str(tmp_path)
    window.commands.export.trigger()
    assert seen["index"] == tmp_path / "cells_mask.png"  # never the image itself


def test_export_refuses_to_overwrite_the_image(qtbot, window, dialogs, tmp_path):
    image, _ = edited(window, tmp_path)
    before = image.read_bytes()
    dialogs.answers["ask_export_path"] = (image, "index")
    window.commands.export.trigger()
    assert len(dialogs.errors()) == 1 and "image itself" in dialogs.errors()[0]
    assert image.read_bytes() == before


def test_export_all_writes_every_format(qtbot, window, dialogs, folder, tmp_path):
    window.open_folder(folder)
    masks = {}
    for i in (0, 2):
        window.show_entry(window.store.get(folder / f"img{i}.png"))
        labels = np.zeros(window.document.shape, np.uint8)
        labels[: 5 + i, :] = 1
        window.document.apply_labels(labels)
        masks[f"img{i}"] = labels
    window.saver.save()  # img2 on disk, img0 only in memory
    out = tmp_path / "exported"
    out.mkdir()
    dialogs.answers["ask_export_folder"] = out
    dialogs.answers["ask_export_formats"] = ["index", "color", "overlay", "coco"]
    with qtbot.waitSignal(window.export_all_finished, timeout=20_000) as blocker:
        window.commands.export_all.trigger()
    assert blocker.args == [2 * 3 + 1]
    for stem, labels in masks.items():
        assert (read_mask(out / f"{stem}.png") == labels).all()
        assert (read_mask(out / f"{stem}_color.png", classes=window.document.classes) == labels).all()
        assert Image.open(out / f"{stem}_overlay.png").size == (labels.shape[1], labels.shape[0])
        assert (read_mask(out / "coco.json", image_name=f"{stem}.png") == labels).all()
    assert not (out / "img1.png").exists()  # no mask: skipped, and said so
    assert "; 2 images without a mask skipped (img1.png and img3.png)." in window.statusBar().currentMessage()


def test_export_all_into_the_image_folder_is_refused(qtbot, window, dialogs, folder):
    window.open_folder(folder)
    window.document.apply_labels(np.ones(window.document.shape, np.uint8))
    dialogs.answers["ask_export_folder"] = folder
    dialogs.answers["ask_export_formats"] = ["index"]
    window.commands.export_all.trigger()
    assert len(dialogs.errors()) == 1 and "overwrite" in dialogs.errors()[0]
    assert window.saver.export_task is None


@pytest.mark.parametrize("answer", ["cancel", "discard", "save"])
def test_closing_the_window_asks_about_unsaved_edits(qtbot, window, dialogs, tmp_path, answer):
    image, labels = edited(window, tmp_path)
    dialogs.answers["ask_save_discard_cancel"] = answer
    closed = window.close()
    assert dialogs.of("ask_save_discard_cancel")[0][1] == "cells.png"
    assert closed == (answer != "cancel")
    assert default_mask_path(image).exists() == (answer == "save")
    if answer == "cancel":
        assert window.isVisible() and (window.mask == labels).all()


def test_close_image_asks_and_switching_does_not(qtbot, window, dialogs, folder):
    window.open_folder(folder)
    drag(qtbot, window, [(10, 10), (20, 10)])
    window.opener.step(1)
    window.opener.step(-1)
    assert dialogs.of("ask_save_discard_cancel") == []
    dialogs.answers["ask_save_discard_cancel"] = "cancel"
    window.commands.close_image.trigger()
    assert window.current.name == "img0.png" and window.file_panel.file_list.count() == 4
    dialogs.answers["ask_save_discard_cancel"] = "discard"
    window.commands.close_image.trigger()
    assert window.current.name == "img1.png" and window.file_panel.file_list.count() == 3
    window.close()
    assert len(dialogs.of("ask_save_discard_cancel")) == 2  # nothing else was unsaved


def test_close_with_two_unsaved_images_asks_for_each(qtbot, window, dialogs, folder):
    window.open_folder(folder)
    drag(qtbot, window, [(10, 10), (20, 10)])
    window.opener.step(2)
    drag(qtbot, window, [(10, 10), (20, 10)])
    dialogs.answers["ask_save_discard_cancel"] = "save"
    assert window.close()
    asked = [args[1] for args in dialogs.of("ask_save_discard_cancel")]
    assert sorted(asked) == ["img0.png", "img2.png"]
    assert default_mask_path(folder / "img0.png").exists() and default_mask_path(folder / "img2.png").exists()


def test_full_disk_message_names_the_path(qtbot, window, dialogs, tmp_path, monkeypatch):
    import errno

    from core.atomic import WriteError

    image, labels = edited(window, tmp_path)
    target = default_mask_path(image)

    def full(path, *args, **kwargs):
        raise WriteError(errno.ENOSPC, f"cannot write {path}: the disk is full")

    monkeypatch.setattr("gui.controllers.saving.write_mask", full)
    window.commands.save.trigger()
    assert dialogs.errors() == [f"cannot write {target}: the disk is full"]
    assert window.document.dirty and (window.mask == labels).all() and not target.exists()
