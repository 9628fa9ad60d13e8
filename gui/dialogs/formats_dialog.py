"""Choosing the formats Export All writes: one checkbox per label store (OME-TIFF, OME-Zarr) and per core
mask format."""

from __future__ import annotations

from typing import Mapping, Sequence

from PySide6.QtWidgets import QCheckBox, QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget


class FormatsDialog(QDialog):
    def __init__(self, labels: Mapping[str, str], selected: Sequence[str],
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export All Masks")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Write each mask in these formats:"))
        self._boxes: dict[str, QCheckBox] = {}
        for fmt, label in labels.items():
            box = QCheckBox(label)
            box.setChecked(fmt in selected)
            box.toggled.connect(self._update)
            layout.addWidget(box)
            self._boxes[fmt] = box
        self._buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                         | QDialogButtonBox.StandardButton.Cancel)
        self._buttons.accepted.connect(self.accept)
        self._buttons.rejected.connect(self.reject)
        layout.addWidget(self._buttons)
        self._update()

    def _update(self) -> None:
        ok = self._buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(bool(self.formats()))

    def formats(self) -> list[str]:
        return [fmt for fmt, box in self._boxes.items() if box.isChecked()]
