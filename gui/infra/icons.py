"""Icons from qtawesome, tinted to the palette so they read on light and dark themes."""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QApplication


@lru_cache(maxsize=None)
def icon(name: str, color: str | None = None) -> QIcon:
    """``mdi6.<name>`` icon; an empty icon if this qtawesome lacks it (never a crash)."""
    import qtawesome

    if color is None:
        app = QApplication.instance()
        color = app.palette().buttonText().color().name() if app is not None else "#303030"
    try:
        return qtawesome.icon(f"mdi6.{name}", color=color, color_disabled="#9a9a9a")
    except Exception:  # noqa: BLE001 - qtawesome raises its own types for unknown names
        return QIcon()


def swatch(rgb: tuple[int, int, int], size: int = 16, transparent: bool = False) -> QIcon:
    """A rounded colour square; background shows as a crossed box (it is never drawn)."""
    pix = QPixmap(size, size)
    pix.fill(QColor(0, 0, 0, 0))
    painter = QPainter(pix)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QColor(90, 90, 90))
    if transparent:
        painter.setBrush(QColor(255, 255, 255))
        painter.drawRoundedRect(1, 1, size - 2, size - 2, 3, 3)
        painter.setPen(QColor(200, 60, 60))
        painter.drawLine(3, size - 3, size - 3, 3)
    else:
        painter.setBrush(QColor(*rgb))
        painter.drawRoundedRect(1, 1, size - 2, size - 2, 3, 3)
    painter.end()
    return QIcon(pix)
