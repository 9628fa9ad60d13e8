"""The Channels dock: how each channel of the shown image is drawn.

One row per channel: a visibility checkbox with the channel's name, a colour button (grey, red,
green, blue, cyan, magenta, yellow, or any colour), a small histogram of the channel's values
with the contrast limits drawn on it (drag a limit to move it), the two limits as numbers, and
Auto (robust percentiles).  It edits the evented display (gui.state.display); the canvas and the
Overview follow it.  An RGB photograph has no channel settings: the dock says so.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (QCheckBox, QDoubleSpinBox, QGridLayout, QHBoxLayout, QLabel, QMenu,
                               QScrollArea, QSizePolicy, QToolButton, QVBoxLayout, QWidget)

from core.io.display import COLORS, ChannelDisplay, ChannelStats
from gui.infra.icons import swatch
from core.wording import counted
from gui.state.display import DisplaySettings, ImageDisplay

PHOTO_TEXT = "RGB: shown as it is (no channel settings)"
EMPTY_TEXT = "No image"


class Histogram(QWidget):
    """A channel's value histogram (log counts) over its data range, with the two limits as
    lines; dragging near a line moves that limit (``moved(lo, hi)`` through the callback)."""

    def __init__(self, on_limits, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumSize(120, 34)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Drag a line to move a contrast limit")
        self._on_limits = on_limits
        self.stats: ChannelStats | None = None
        self.limits = (0.0, 1.0)
        self.color = QColor(255, 255, 255)
        self._dragging: int | None = None  # 0: low limit, 1: high limit

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(160, 34)

    def set_data(self, stats: ChannelStats, limits: tuple[float, float], color: tuple[int, int, int]) -> None:
        self.stats, self.limits, self.color = stats, limits, QColor(*color)
        self.update()

    def _span(self) -> tuple[float, float]:
        s = self.stats
        lo = min(s.low, self.limits[0]) if s is not None else self.limits[0]
        hi = max(s.high, self.limits[1]) if s is not None else self.limits[1]
        return lo, (hi if hi > lo else lo + 1.0)

    def _x(self, value: float) -> float:
        lo, hi = self._span()
        return 2 + (value - lo) / (hi - lo) * (self.width() - 4)

    def _value(self, x: float) -> float:
        lo, hi = self._span()
        return lo + (x - 2) / max(1, self.width() - 4) * (hi - lo)

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(30, 31, 34))
        s = self.stats
        if s is not None and any(s.counts):
            counts = np.log1p(np.asarray(s.counts, np.float64))
            counts /= counts.max()
            h, n = self.height() - 2, len(counts)
            x0, x1 = self._x(s.low), self._x(s.high)
            path = QPainterPath(QPointF(x0, h + 1))
            for i, c in enumerate(counts):
                xa, xb = x0 + (x1 - x0) * i / n, x0 + (x1 - x0) * (i + 1) / n
                path.lineTo(xa, h + 1 - c * h)
                path.lineTo(xb, h + 1 - c * h)
            path.lineTo(x1, h + 1)
            fill = QColor(self.color)
            fill.setAlpha(150)
            painter.fillPath(path, fill if self.color.value() > 40 else QColor(150, 150, 150, 150))
        painter.setPen(QPen(QColor(255, 210, 40), 1.5))
        for value in self.limits:
            x = self._x(value)
            painter.drawLine(QPointF(x, 0), QPointF(x, self.height()))

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        x = event.position().x()
        distances = [abs(self._x(v) - x) for v in self.limits]
        self._dragging = int(np.argmin(distances))
        self._drag_to(x)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._dragging is not None and event.buttons() & Qt.MouseButton.LeftButton:
            self._drag_to(event.position().x())

    def mouseReleaseEvent(self, _event: QMouseEvent) -> None:  # noqa: N802
        self._dragging = None

    def _drag_to(self, x: float) -> None:
        lo, hi = self.limits
        value = self._value(x)
        if self._dragging == 0:
            lo = min(value, hi)
        else:
            hi = max(value, lo)
        self._on_limits(lo, hi)


class ChannelRow(QWidget):
    """One channel's controls; every change goes to the display model at once."""

    color_requested = Signal(int)  # "Other Colour…": a controller asks for it

    def __init__(self, display: DisplaySettings, index: int, integer: bool, parent: QWidget | None = None):
        super().__init__(parent)
        self.display, self.index = display, index
        self.setObjectName(f"channel_{index}")
        layout = QGridLayout(self)
        layout.setContentsMargins(2, 4, 2, 4)
        layout.setHorizontalSpacing(4)
        layout.setVerticalSpacing(2)
        self.visible = QCheckBox()
        self.visible.setToolTip("Show this channel")
        self.visible.toggled.connect(lambda on: display.set_visible(index, on))
        self.color = QToolButton()
        self.color.setToolTip("The channel's colour")
        self.color.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.color)
        for name, rgb in COLORS.items():
            menu.addAction(swatch(rgb), name.capitalize(), lambda rgb=rgb: display.set_color(index, rgb))
        menu.addSeparator()
        menu.addAction("Other Colour…", lambda: self.color_requested.emit(index))
        self.color.setMenu(menu)
        self.histogram = Histogram(lambda lo, hi: display.set_limits(index, lo, hi))
        self.low, self.high = self._spin("Lower contrast limit", integer), self._spin("Upper contrast limit", integer)
        self.low.valueChanged.connect(lambda v: display.set_limits(index, v, max(v, self.high.value())))
        self.high.valueChanged.connect(lambda v: display.set_limits(index, min(v, self.low.value()), v))
        self.auto = QToolButton()
        self.auto.setText("Auto")
        self.auto.setToolTip("Contrast from the 0.1th to the 99.9th percentile of the channel")
        self.auto.clicked.connect(lambda: display.auto_contrast(index))
        layout.addWidget(self.visible, 0, 0, 1, 3)
        layout.addWidget(self.color, 0, 3)
        layout.addWidget(self.histogram, 1, 0, 1, 4)
        layout.addWidget(self.low, 2, 0)
        layout.addWidget(self.high, 2, 1)
        layout.addWidget(self.auto, 2, 3)
        layout.setColumnStretch(2, 1)

    @staticmethod
    def _spin(tip: str, integer: bool) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setToolTip(tip)
        spin.setRange(-1e12, 1e12)
        spin.setDecimals(0 if integer else 4)
        spin.setKeyboardTracking(False)
        spin.setButtonSymbols(QDoubleSpinBox.ButtonSymbols.NoButtons)
        spin.setMinimumWidth(64)
        return spin

    def show_channel(self, channel: ChannelDisplay, stats: ChannelStats) -> None:
        for widget in (self.visible, self.low, self.high):
            widget.blockSignals(True)
        self.visible.setText(channel.name)
        self.visible.setChecked(channel.visible)
        self.color.setIcon(swatch(channel.color))
        self.low.setValue(channel.limits[0])
        self.high.setValue(channel.limits[1])
        step = (stats.high - stats.low) / 100
        for spin in (self.low, self.high):
            spin.setSingleStep(max(1.0, math.floor(step)) if spin.decimals() == 0 else step or 0.01)
        for widget in (self.visible, self.low, self.high):
            widget.blockSignals(False)
        self.histogram.set_data(stats, channel.limits, channel.color)

class ChannelPanel(QWidget):
    color_requested = Signal(int)  # the channel whose colour to ask for (any colour)

    def __init__(self, display: DisplaySettings, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("channel_panel")
        self.display = display
        self.rows: list[ChannelRow] = []
        self._shape: tuple = ()  # (image key, channel count, dtype) the rows were built for
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        self.note = QLabel(EMPTY_TEXT)
        self.note.setWordWrap(True)
        self.note.setObjectName("channel_note")
        outer.addWidget(self.note)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        outer.addWidget(self.scroll, 1)
        buttons = QHBoxLayout()
        self.auto_all = QToolButton()
        self.auto_all.setText("Auto All")
        self.auto_all.setToolTip("Contrast of every channel from its 0.1th to 99.9th percentile")
        self.auto_all.clicked.connect(lambda: display.auto_contrast())
        buttons.addStretch(1)
        buttons.addWidget(self.auto_all)
        outer.addLayout(buttons)
        display.events.view.connect(self._on_view)
        self._on_view(display.view)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(240, 260)

    def _on_view(self, view: ImageDisplay, *_) -> None:
        photo = view.photo or not view.channels
        self.note.setText((PHOTO_TEXT if view.key else EMPTY_TEXT) if photo else
                          f"{counted(len(view.channels), 'channel')}, {view.dtype}")
        self.scroll.setVisible(not photo)
        self.auto_all.setVisible(not photo)
        if photo:
            self._shape = ()
            return
        shape = (view.key, len(view.channels), view.dtype)
        if shape != self._shape:
            self._build(view)
            self._shape = shape
        for row, channel, stats in zip(self.rows, view.channels, view.stats):
            row.show_channel(channel, stats)

    def _build(self, view: ImageDisplay) -> None:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        integer = np.issubdtype(np.dtype(view.dtype), np.integer)
        self.rows = [ChannelRow(self.display, i, integer) for i in range(len(view.channels))]
        for row in self.rows:
            row.color_requested.connect(self.color_requested)
            layout.addWidget(row)
        layout.addStretch(1)
        self.scroll.setWidget(box)  # the old rows go with the old box
