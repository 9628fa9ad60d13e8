"""Renaming and recolouring one class: a name field and a colour button (QColorDialog)."""

from __future__ import annotations

from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFormLayout, QLineEdit, QPushButton,
                               QWidget)

from core.classes import ClassInfo
from gui.infra.icons import swatch


class ClassDialog(QDialog):
    def __init__(self, info: ClassInfo, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Class {info.id}")
        self._info = info
        self._color = tuple(info.color)
        self.name_edit = QLineEdit(info.name)
        self.name_edit.selectAll()
        self.color_button = QPushButton()
        self.color_button.clicked.connect(self._pick_color)
        self._show_color()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Name", self.name_edit)
        form.addRow("Colour", self.color_button)
        form.addRow(buttons)

    def _show_color(self) -> None:
        self.color_button.setIcon(swatch(self._color))  # type: ignore[arg-type]
        self.color_button.setText(QColor(*self._color).name())

    def _pick_color(self) -> None:
        from gui import dialogs

        color = dialogs.ask_color(self, self._color, f"Colour of {self.name_edit.text()}")  # type: ignore[arg-type]
        if color is not None:
            self._color = (color.red(), color.green(), color.blue())
            self._show_color()

    def result_class(self) -> ClassInfo:
        name = self.name_edit.text().strip() or self._info.name
        return ClassInfo(self._info.id, name, self._color)  # type: ignore[arg-type]
