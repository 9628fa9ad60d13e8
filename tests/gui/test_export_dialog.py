"""The export dialog as a new user met it: the real file dialogs, typed into and accepted.

A folder that does not exist is offered to be created (Export Mask and Export All); the chosen
format survives a failed export; a typed extension of another format picks that format or asks
which, instead of ``name.png.json``.  And the object outputs (instances, measurements) from
Export Mask and Export All."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog, QInputDialog, QLineEdit, QMessageBox

from core.io.label_images import read_label_image
from core.io.masks import read_mask
from core.objects.components import component_labels
from core.objects.measure import read_measurements
from gui import dialogs as dialog_module
from gui.dialogs import EXPORT_FILTERS
from gui.dialogs import ask_export_folder as real_ask_export_folder
from gui.dialogs import ask_export_format as real_ask_export_format
from gui.dialogs import ask_export_path as real_ask_export_path
from tests.gui.helpers import MODEL_CLASSES, write_image


class FileDialogUser:
    """Answers the next real QFileDialog as a user would: picks a file type, types a name, accepts.
    Anything else that pops up (Qt's "Directory not found" warning) is noted, closed, and the file
    dialog cancelled, so a test of the old behaviour fails instead of hanging."""

    def __init__(self, typed: str, file_type: str | None = None):
        self.typed, self.file_type = typed, file_type
        self.answered, self.unexpected = 0, []
        QTimer.singleShot(0, self._poll)

    def _poll(self) -> None:
        widget = QApplication.activeModalWidget()
        if isinstance(widget, QMessageBox):
            self.unexpected.append(widget.text())
            widget.reject()
            for other in QApplication.topLevelWidgets():
                if isinstance(other, QFileDialog) and other.isVisible():
                    other.reject()
            return
        if self.answered == 0 or widget is not None:
            QTimer.singleShot(20, self._poll)  # before accepting: accept() may open a message box of its own
        if isinstance(widget, QFileDialog) and self.answered == 0:
            if self.file_type:
                widget.selectNameFilter(self.file_type)
            widget.findChild(QLineEdit, "fileNameEdit").setText(self.typed)
            self.answered += 1
            QTimer.singleShot(0, widget.accept)


@pytest.fixture
def real_file_dialogs(monkeypatch, dialogs):
    """The real Export Mask and Export All file dialogs; every other question stays recorded."""
    monkeypatch.delenv("UNETSEG_FORBID_DIALOGS")
    monkeypatch.setattr(dialog_module, "ask_export_path", real_ask_export_path)
    monkeypatch.setattr(dialog_module, "ask_export_folder", real_ask_export_folder)
    return dialogs


def edited(window, tmp_path):
    image = write_image(tmp_path / "cells.png")
    window.open_images([image])
    window.document.set_classes(MODEL_CLASSES[:3])
    labels = np.zeros((60, 80), np.uint8)
    labels[10:30, 10:50] = 1
    labels[10:30, 50:60] = 2
    labels[40:50, 5:15] = 1
    window.document.apply_labels(labels)
    return image, labels


def test_export_mask_offers_to_create_a_folder_that_does_not_exist(qtbot, window, real_file_dialogs, tmp_path):
    dialogs = real_file_dialogs
    image, labels = edited(window, tmp_path)
    target = tmp_path / "new" / "sub" / "cells_classes.png"
    dialogs.answers["confirm"] = True
    user = FileDialogUser(str(target), EXPORT_FILTERS["index"])
    window.commands.export.trigger()
    assert user.answered == 1 and not user.unexpected
    [question] = dialogs.of("confirm")
    assert question[1] == "Create Folder?" and str(target.parent) in question[2]
    assert dialogs.errors() == []
    assert np.array_equal(read_mask(target), labels)


def test_declining_the_new_folder_goes_back_to_the_dialog(qtbot, window, real_file_dialogs, tmp_path, monkeypatch):
    dialogs = real_file_dialogs
    edited(window, tmp_path)
    target = tmp_path / "new" / "cells.png"
    dialogs.answers["confirm"] = False
    shown = []
    real_exec = QFileDialog.exec

    def exec_(self):  # the first time the user types the name; the second time (back after "no") cancels
        shown.append(self)
        return real_exec(self) if len(shown) == 1 else 0

    monkeypatch.setattr(QFileDialog, "exec", exec_)
    user = FileDialogUser(str(target), EXPORT_FILTERS["index"])
    window.commands.export.trigger()
    assert user.answered == 1 and len(shown) == 2  # back in the file dialog after "no"
    assert len(dialogs.of("confirm")) == 1 and not target.parent.exists() and dialogs.errors() == []
    again = shown[1]  # with what was typed, the new folder too, at the nearest folder that exists
    assert again.directory().absolutePath() == str(tmp_path)
    assert again.findChild(QLineEdit, "fileNameEdit").text() == "new/cells.png"
    assert again.selectedFiles() == [str(target)]


def test_the_chosen_format_is_kept_after_a_failed_export(qtbot, window, dialogs, tmp_path):
    edited(window, tmp_path)
    offered = []
    gone = tmp_path / "usb stick"
    answers = iter([(gone / "cells.json", "coco"), None])
    dialogs.answers["ask_export_path"] = lambda parent, suggested, fmt, note=None: (offered.append(fmt), next(answers))[1]
    window.commands.export.trigger()
    assert len(dialogs.errors()) == 1 and "the folder does not exist" in dialogs.errors()[0]
    window.commands.export.trigger()
    assert offered == ["index", "coco"]  # the second Export opens on COCO again, not on the default


def test_a_typed_png_under_coco_asks_which_png_format(qtbot, window, real_file_dialogs, tmp_path):
    dialogs = real_file_dialogs
    image, labels = edited(window, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    dialogs.answers["ask_export_format"] = "index"
    user = FileDialogUser(str(out / "name.png"), EXPORT_FILTERS["coco"])
    window.commands.export.trigger()
    assert user.answered == 1
    [(_, name, formats, chosen)] = dialogs.of("ask_export_format")
    assert name == "name.png" and chosen == "coco" and set(formats) == {"index", "color", "overlay", "voc"}
    assert sorted(p.name for p in out.iterdir()) == ["name.png"]  # not name.png.json
    assert np.array_equal(read_mask(out / "name.png"), labels)


def test_a_typed_extension_of_one_other_format_picks_it(qtbot, window, real_file_dialogs, tmp_path):
    dialogs = real_file_dialogs
    _, labels = edited(window, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    messages = []
    window.state.message.connect(lambda text, ms: messages.append(text))
    FileDialogUser(str(out / "cells.geojson"), EXPORT_FILTERS["coco"])
    window.commands.export.trigger()
    assert dialogs.of("ask_export_format") == [] and dialogs.errors() == []
    assert sorted(p.name for p in out.iterdir()) == ["cells.geojson"]
    assert json.loads((out / "cells.geojson").read_text())["type"] == "FeatureCollection"
    assert messages[-1] == f"Exported {out / 'cells.geojson'} as GeoJSON for QuPath"
    assert np.array_equal(read_mask(out / "cells.geojson", shape=labels.shape, classes=window.document.classes),
                          labels)


def test_export_all_offers_to_create_a_folder_that_does_not_exist(qtbot, window, real_file_dialogs, folder, tmp_path):
    dialogs = real_file_dialogs
    window.open_folder(folder)
    window.show_entry(window.store.get(folder / "img0.png"))
    window.document.apply_labels(np.ones(window.document.shape, np.uint8))
    new = tmp_path / "exports" / "today"
    dialogs.answers.update(confirm=True, ask_export_formats=["index"])
    user = FileDialogUser(str(new))
    with qtbot.waitSignal(window.export_all_finished, timeout=20_000, raising=False) as finished:
        window.commands.export_all.trigger()
    assert not user.unexpected, user.unexpected  # not Qt's "Directory not found" refusal
    assert finished.signal_triggered and dialogs.of("confirm")[0][1] == "Create Folder?"
    assert (new / "img0.png").is_file()


def test_export_mask_writes_instances_and_measurements(qtbot, window, dialogs, tmp_path):
    image, labels = edited(window, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    dialogs.answers["ask_export_path"] = (out / "cells_instances.tif", "instances")
    window.commands.export.trigger()
    dialogs.answers["ask_export_path"] = (out / "cells_measurements.csv", "measurements")
    window.commands.export.trigger()
    assert dialogs.errors() == []
    objects = component_labels(labels)  # the class-2 box touches a class-1 box: its own object
    assert np.array_equal(read_label_image(out / "cells_instances.tif"), objects)
    table = read_measurements(out / "cells_measurements.csv")
    assert table["area"] == ["800", "200", "100"] and table["class_name"] == ["cell", "nucleus", "cell"]
    assert "mean_intensity_Red" in table
    offered = []
    dialogs.answers["ask_export_path"] = lambda parent, suggested, fmt, note=None: offered.append(suggested)
    window.commands.export.trigger()
    assert offered[0]["instances"].name == "cells_instances.tif"
    assert offered[0]["measurements"].name == "cells_measurements.csv"


def test_export_all_writes_instances_and_measurements(qtbot, window, dialogs, folder, tmp_path):
    window.open_folder(folder)
    for i in (0, 1):
        window.show_entry(window.store.get(folder / f"img{i}.png"))
        labels = np.zeros(window.document.shape, np.uint8)
        labels[2:10, 2:10], labels[2:10, 20:30] = 1, 1
        window.document.apply_labels(labels)
    out = tmp_path / "out"
    out.mkdir()
    dialogs.answers.update(ask_export_folder=out, ask_export_formats=["instances", "measurements"])
    with qtbot.waitSignal(window.export_all_finished, timeout=20_000):
        window.commands.export_all.trigger()
    assert dialogs.errors() == []
    assert sorted(p.name for p in out.iterdir()) == ["img0_instances.tif", "img0_measurements.csv",
                                                     "img1_instances.tif", "img1_measurements.csv"]
    assert read_measurements(out / "img1_measurements.csv")["area"] == ["64", "80"]
    assert "Instance labels: one id per object (TIFF)" in dialog_module.FORMAT_LABELS.values()


def test_an_exported_instance_file_is_not_listed_as_an_image(qtbot, window, dialogs, folder):
    window.open_folder(folder)
    window.show_entry(window.store.get(folder / "img0.png"))
    window.document.apply_labels(np.ones(window.document.shape, np.uint8))
    dialogs.answers["ask_export_path"] = (folder / "img0_instances.tif", "instances")
    window.commands.export.trigger()
    assert (folder / "img0_instances.tif").is_file()
    window.open_folder(folder)
    assert sorted(e.path.name for e in window.store) == [f"img{i}.png" for i in range(4)]


class InputDialogUser:
    """Notes the items and the preselected one of the next QInputDialog, then presses Enter."""

    def __init__(self):
        self.items, self.preselected = [], None
        QTimer.singleShot(0, self._poll)

    def _poll(self) -> None:
        widget = QApplication.activeModalWidget()
        if isinstance(widget, QInputDialog):
            self.items, self.preselected = widget.comboBoxItems(), widget.textValue()
            QTest.keyClick(widget, Qt.Key.Key_Return)
            return
        QTimer.singleShot(20, self._poll)


def test_enter_in_the_which_format_question_keeps_the_chosen_file_type(qtbot, window, real_file_dialogs,
                                                                      tmp_path, monkeypatch):
    monkeypatch.setattr(dialog_module, "ask_export_format", real_ask_export_format)
    image, labels = edited(window, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    FileDialogUser(str(out / "nuclei.png"), EXPORT_FILTERS["coco"])
    question = InputDialogUser()
    window.commands.export.trigger()
    assert question.items[0] == question.preselected
    assert question.preselected.startswith("COCO JSON") and question.preselected.endswith("as nuclei.png.json")
    assert len(question.items) == 5 and real_file_dialogs.errors() == []
    assert sorted(p.name for p in out.iterdir()) == ["nuclei.png.json"]  # COCO, as the user chose
    assert json.loads((out / "nuclei.png.json").read_text())["annotations"]
