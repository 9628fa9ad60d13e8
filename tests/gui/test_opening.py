"""Opening images every way a person can, and what happens with bad files."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from core.io.masks import read_mask, write_mask
from tests.gui.helpers import drag, write_image


def test_file_open_dialog_opens_several_images(qtbot, window, dialogs, tmp_path):
    a, b = write_image(tmp_path / "a.png"), write_image(tmp_path / "b.tif", 30, 40)
    dialogs.answers["ask_open_paths"] = [a, b]
    window.commands.open.trigger()
    assert window.file_panel.file_list.count() == 2
    assert window.current.path == a and window.mask.shape == (60, 80)
    assert window.windowTitle().startswith("a.png")
    assert window.settings.recent_files[:2] == [str(a), str(b)]


def test_existing_mask_is_loaded_for_editing(qtbot, window, tmp_path):
    image = write_image(tmp_path / "cells.png")
    labels = np.zeros((60, 80), np.uint8)
    labels[5:15, 5:15] = 1
    write_mask(tmp_path / "cells_mask.png", labels, "index", window.class_template)
    window.open_images([image])
    assert (window.mask == labels).all()
    assert not window.document.dirty
    assert "cells_mask.png" in window.statusBar().currentMessage()
    assert window.file_panel.state_of(window.current) == "saved"


def test_mask_with_more_classes_than_known_extends_the_class_list(qtbot, window, tmp_path):
    image = write_image(tmp_path / "cells.png")
    labels = np.zeros((60, 80), np.uint8)
    labels[0, :6] = np.arange(6)
    np.save(tmp_path / "cells_mask.npy", labels)
    window.open_images([image])
    assert [c.id for c in window.document.classes] == list(range(6))
    assert (window.mask == labels).all()


def test_import_mask_is_one_undo_step(qtbot, window, dialogs, tmp_path):
    window.open_images([write_image(tmp_path / "cells.png")])
    labels = np.zeros((60, 80), np.uint8)
    labels[20:30, 20:30] = 1
    np.save(tmp_path / "other.npy", labels)
    dialogs.answers["ask_mask_path"] = tmp_path / "other.npy"
    window.commands.import_mask.trigger()
    assert (window.mask == labels).all() and window.document.dirty
    window.commands.undo.trigger()
    assert not window.mask.any()


def test_import_mask_errors_name_the_file_and_keep_the_mask(qtbot, window, dialogs, tmp_path):
    window.open_images([write_image(tmp_path / "cells.png")])
    window.document.apply_labels(np.ones((60, 80), np.uint8))
    np.save(tmp_path / "small.npy", np.zeros((10, 10), np.uint8))
    too_many = np.zeros((60, 80), np.uint8)
    too_many[0, 0] = 9
    np.save(tmp_path / "many.npy", too_many)
    for name, reason in (("small.npy", "10x10"), ("many.npy", "class id 9")):
        dialogs.calls.clear()
        dialogs.answers["ask_mask_path"] = tmp_path / name
        window.commands.import_mask.trigger()
        errors = dialogs.errors()
        assert len(errors) == 1 and name in errors[0] and reason in errors[0]
        assert (window.mask == 1).all()


def test_bad_files_give_one_message_naming_each(qtbot, window, dialogs, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    good = write_image(tmp_path / "good.png")
    data = good.read_bytes()
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(data[: len(data) // 2])
    window.open_images([text])
    assert len(dialogs.errors()) == 1 and "notes.png" in dialogs.errors()[0]
    assert window.document is None and window.file_panel.file_list.count() == 0
    dialogs.calls.clear()
    window.open_images([corrupt])
    assert len(dialogs.errors()) == 1 and "corrupt.png" in dialogs.errors()[0]
    assert window.file_panel.file_list.count() == 0
    dialogs.calls.clear()
    window.open_images([text, good])  # one good file among bad: it opens, one message
    assert len(dialogs.errors()) == 1 and "notes.png" in dialogs.errors()[0]
    assert window.current.path == good
    drag(qtbot, window, [(10, 10), (12, 10)])  # still usable
    assert window.mask.any()


def test_folder_navigation_keeps_edits_and_undo(qtbot, window, dialogs, folder):
    dialogs.answers["ask_open_folder"] = folder
    window.commands.open_folder.trigger()
    files = window.file_panel.file_list
    assert files.count() == 4 and window.current.name == "img0.png"
    drag(qtbot, window, [(10, 10), (20, 10)])
    first = window.document
    assert first.dirty and window.file_panel.state_of(window.current) == "dirty"
    assert files.item(0).text().endswith("*")
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_PageDown)
    assert window.current.name == "img1.png" and not window.isWindowModified()
    assert window.mask.shape == (48, 50)
    qtbot.keyClick(window.canvas, Qt.Key.Key_PageUp)
    assert window.document is first and window.mask[10, 15] == 1 and window.isWindowModified()
    window.commands.undo.trigger()
    assert not window.mask.any()
    rect = files.visualItemRect(files.item(3))
    qtbot.mouseClick(files.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.current.name == "img3.png"
    assert window.file_panel.header.text().startswith("4 of 4")


def test_document_cache_is_bounded_but_never_drops_unsaved(qtbot, window, folder):
    window.store.keep_documents = 2
    window.open_folder(folder)
    drag(qtbot, window, [(10, 10), (20, 10)])  # img0 has unsaved edits
    for _ in range(3):
        window.opener.step(1)
    in_memory = {e.name for e in window.store.documents_in_memory()}
    assert "img0.png" in in_memory and len(in_memory) <= 3
    assert window.store.get(folder / "img1.png").doc is None
    window.opener.step(-3)
    assert window.mask[10, 15] == 1 and window.document.can_undo


def test_drop_files_and_folders(qtbot, window, folder, tmp_path):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(QPoint(200, 200), *args)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(window, QDropEvent(QPointF(200, 200), *args))
    qtbot.waitUntil(lambda: window.file_panel.file_list.count() == 4, timeout=2000)
    extra = write_image(tmp_path / "extra.png")
    other = QMimeData()
    other.setUrls([QUrl.fromLocalFile(str(extra))])
    assert window.handle_drop(other) == 1
    assert window.file_panel.file_list.count() == 5 and window.current.path == extra


def test_drop_of_non_images_is_refused_with_a_message(qtbot, window, dialogs, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(notes))])
    assert window.handle_drop(mime) == 0
    assert len(dialogs.errors()) == 1 and "notes.txt" in dialogs.errors()[0]


def test_open_recent_menu(qtbot, window, dialogs, tmp_path):
    a = write_image(tmp_path / "a.png")
    gone = write_image(tmp_path / "gone.png")
    window.open_images([gone])
    window.open_images([a])
    gone.unlink()
    menu = window.menus.recent
    window.opener.fill_recent_menu(menu)
    names = [act.text() for act in menu.actions() if act.objectName() == "action_recent"]
    assert names[:2] == ["a.png", "gone.png"]
    [act for act in menu.actions() if act.text() == "gone.png"][0].trigger()
    assert len(dialogs.errors()) == 1 and "gone.png" in dialogs.errors()[0]
    assert str(gone) not in window.settings.recent_files


def test_open_sample_menu(qtbot, window, tmp_path, monkeypatch):
    sample = write_image(tmp_path / "blobs.png")
    monkeypatch.setattr("gui.controllers.opening.sample_images", lambda: [sample])
    window.opener.fill_samples_menu(window.menus.samples)
    actions = [a for a in window.menus.samples.actions() if a.text() == "blobs"]
    actions[0].trigger()
    assert window.current.path == sample
    monkeypatch.setattr("gui.controllers.opening.sample_images", lambda: [])
    window.opener.fill_samples_menu(window.menus.samples)
    only = window.menus.samples.actions()
    assert len(only) == 1 and not only[0].isEnabled()


def test_formats_the_core_reads_open(qtbot, window, tmp_path):
    import tifffile

    grey16 = (np.arange(40 * 30, dtype=np.uint16).reshape(30, 40) * 50)
    tifffile.imwrite(tmp_path / "deep.tif", grey16)
    Image.fromarray(np.zeros((20, 25, 3), np.uint8)).save(tmp_path / "photo.jpg")
    Image.fromarray(np.zeros((21, 26), np.uint8)).save(tmp_path / "grey.bmp")
    assert window.open_images([tmp_path / "deep.tif", tmp_path / "photo.jpg", tmp_path / "grey.bmp"]) == 3
    assert window.mask.shape == (30, 40)
    window.opener.step(1)
    assert window.mask.shape == (20, 25)
    window.opener.step(1)
    assert window.mask.shape == (21, 26)


def test_empty_window_shows_how_to_start(qtbot, window):
    assert window.document is None and window.mask is None
    assert "Open an image" in window.canvas.placeholder
    window.commands.segment.trigger()  # disabled without an image: nothing happens
    window.canvas.setFocus()
    qtbot.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(50, 50))
    assert window.document is None


def test_file_list_marks_images_with_masks_and_hides_the_mask_files(qtbot, window, folder):
    labels = np.zeros((56, 50), np.uint8)
    labels[:3] = 1
    write_mask(folder / "img2_mask.png", labels, "index", window.class_template)
    window.open_folder(folder)
    names = [window.file_panel.file_list.item(i).text() for i in range(4)]
    assert names == ["img0.png", "img1.png", "img2.png", "img3.png"]  # no img2_mask.png entry
    states = [window.file_panel.state_of(e) for e in window.store]
    assert states == ["none", "none", "saved", "none"]
    window.opener.step(2)
    assert (window.mask == labels).all()
    drag(qtbot, window, [(10, 30), (20, 30)])  # a loaded mask is editable (writeable buffer)
    assert window.mask[30, 15] == window.document.active_class
    assert window.file_panel.state_of(window.current) == "dirty"


def test_unloadable_mask_beside_the_image_is_reported_and_protected(qtbot, window, dialogs, tmp_path):
    image = write_image(tmp_path / "cells.png")
    wrong = np.ones((10, 10), np.uint8)
    write_mask(tmp_path / "cells_mask.png", wrong, "index", window.class_template)
    window.open_images([image])
    message = window.statusBar().currentMessage()
    assert "could not load" in message and "cells_mask.png" in message and "10x10" in message
    assert not window.mask.any() and dialogs.errors() == []
    drag(qtbot, window, [(10, 10), (20, 10)])
    dialogs.answers["confirm"] = False  # Save would replace a file it never loaded: asks first
    window.commands.save.trigger()
    assert len(dialogs.of("confirm")) == 1 and (read_mask(tmp_path / "cells_mask.png") == 1).all()
