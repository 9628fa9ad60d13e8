"""View > Outline Width: 1 to 4 screen pixels (gui.canvas.outline draws them)."""

from __future__ import annotations

from typing import Callable

from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu

WIDTHS = (1, 2, 3, 4)


class OutlineWidthMenu:
    def __init__(self, menu: QMenu, width: int, choose: Callable[[int], None]):
        self.menu = menu
        menu.setObjectName("menu_outline_width")
        self._group = QActionGroup(menu)
        self.actions: dict[int, QAction] = {}
        for w in WIDTHS:
            action = QAction(f"&{w} px", menu)
            action.setObjectName(f"action_outline_width_{w}")
            action.setCheckable(True)
            action.triggered.connect(lambda _=False, w=w: choose(w))
            self._group.addAction(action)
            menu.addAction(action)
            self.actions[w] = action
        self.show_width(width)

    def show_width(self, width: int) -> None:
        action = self.actions.get(int(width))
        if action is not None:
            action.setChecked(True)
