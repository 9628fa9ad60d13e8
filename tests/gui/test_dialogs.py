"""The small dialogs behind gui.dialogs, driven without exec(); and the no-dialog guard."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QDialogButtonBox

from core.classes import ClassInfo
from gui import dialogs
from gui.dialogs.class_dialog import ClassDialog
from gui.dialogs.formats_dialog import FormatsDialog


def test_formats_dialog_needs_at_least_one_format(qtbot):
    dialog = FormatsDialog(dialogs.FORMAT_LABELS, ["index", "coco"])
    qtbot.addWidget(dialog)
    assert dialog.formats() == ["index", "coco"]
    ok = dialog._buttons.button(QDialogButtonBox.StandardButton.Ok)
    for box in dialog._boxes.values():
        box.setChecked(False)
    assert dialog.formats() == [] and not ok.isEnabled()
    dialog._boxes["tiff"].setChecked(True)
    assert dialog.formats() == ["tiff"] and ok.isEnabled()


def test_class_dialog_renames_and_recolours(qtbot, monkeypatch):
    dialog = ClassDialog(ClassInfo(3, "debris", (1, 2, 3)))
    qtbot.addWidget(dialog)
    monkeypatch.setattr(dialogs, "ask_color", lambda parent, rgb, title: QColor(10, 20, 30))
    dialog.name_edit.setText("  dust ")
    dialog.color_button.click()
    assert dialog.result_class() == ClassInfo(3, "dust", (10, 20, 30))
    assert dialog.color_button.text() == "#0a141e"
    dialog.name_edit.setText("")
    assert dialog.result_class().name == "debris"  # an empty name keeps the old one


def test_unreplaced_dialogs_refuse_to_block_tests():
    with pytest.raises(RuntimeError, match="unexpected dialog show_error"):
        dialogs.show_error(None, "title", "text")
    with pytest.raises(RuntimeError, match="ask_open_paths"):
        dialogs.ask_open_paths(None, "")
