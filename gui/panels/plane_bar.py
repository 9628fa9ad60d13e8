"""The Z and T sliders under the view: one row per plane axis of the shown stack, with the plane
number ("Z 5/20", counted from 1 as Fiji does); hidden for a 2-D image.

A view of gui.state.planes: it draws what the state says and asks for planes
(``plane_requested``); the keys (Page Up/Down for Z, Shift+Page Up/Down for T) are actions.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QSlider, QWidget

from gui.state.planes import PlaneState

TIPS = {"Z": "Depth: Page Up / Page Down step through the Z planes",
        "T": "Time: Shift+Page Up / Shift+Page Down step through the time points"}


class PlaneBar(QFrame):
    plane_requested = Signal(tuple)  # the plane to show (0-based, over the state's axes)

    def __init__(self, planes: PlaneState, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("plane_bar")
        self.planes = planes
        layout = QGridLayout(self)
        layout.setContentsMargins(8, 3, 8, 3)
        layout.setHorizontalSpacing(8)
        layout.setVerticalSpacing(2)
        self.sliders: dict[str, QSlider] = {}
        self.numbers: dict[str, QLabel] = {}
        self._names: dict[str, QLabel] = {}
        for row, axis in enumerate("TZ"):
            name = QLabel(axis)
            name.setObjectName(f"plane_axis_{axis.lower()}")
            font = name.font()
            font.setBold(True)
            name.setFont(font)
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setObjectName(f"plane_slider_{axis.lower()}")
            slider.setToolTip(TIPS[axis])
            slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the canvas keeps the keys
            slider.setPageStep(1)
            number = QLabel()
            number.setObjectName(f"plane_number_{axis.lower()}")
            number.setMinimumWidth(number.fontMetrics().horizontalAdvance("Z 000/000"))
            number.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            slider.valueChanged.connect(lambda value, a=axis: self._moved(a, value))
            layout.addWidget(name, row, 0)
            layout.addWidget(slider, row, 1)
            layout.addWidget(number, row, 2)
            self.sliders[axis], self.numbers[axis], self._names[axis] = slider, number, name
        planes.events.connect(lambda *_: self.refresh())
        self.refresh()

    def refresh(self) -> None:
        """Show the state's axes, sizes and plane."""
        state = self.planes
        self.setVisible(state.is_stack)
        for axis in "TZ":
            present = axis in state.axes
            for widget in (self.sliders[axis], self.numbers[axis], self._names[axis]):
                widget.setVisible(present)
            if not present:
                continue
            i = state.axes.index(axis)
            slider = self.sliders[axis]
            slider.blockSignals(True)
            slider.setRange(0, max(0, state.sizes[i] - 1))
            slider.setValue(state.plane[i])
            slider.blockSignals(False)
            self.numbers[axis].setText(state.text(axis))

    def _moved(self, axis: str, value: int) -> None:
        state = self.planes
        if axis not in state.axes:
            return
        i = state.axes.index(axis)
        plane = state.plane[:i] + (int(value),) + state.plane[i + 1:]
        if plane != state.plane:
            self.plane_requested.emit(plane)
