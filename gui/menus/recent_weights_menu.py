"""Model > Recent Weights: the weights files loaded lately, one click to load again.

Rebuilt each time it opens, so a file that has gone (an unplugged drive) is simply not listed.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

from gui.infra.recent_weights import RecentWeights
from gui.menus.model_labels import weights_label


class RecentWeightsMenu:
    def __init__(self, menu: QMenu, recent: RecentWeights, choose: Callable[[str], None]):
        self.menu, self.recent, self._choose = menu, recent, choose
        menu.setObjectName("menu_recent_weights")
        menu.setToolTipsVisible(True)
        menu.aboutToShow.connect(self.rebuild)
        self.rebuild()

    def rebuild(self) -> None:
        self.menu.clear()
        paths = self.recent.paths()
        for n, path in enumerate(paths, 1):
            action = QAction(f"&{n} {weights_label(path)}" if n < 10 else weights_label(path), self.menu)
            action.setObjectName(f"action_recent_weights_{n}")
            action.setToolTip(str(path))
            action.triggered.connect(lambda _=False, p=str(path): self._choose(p))
            self.menu.addAction(action)
        if not paths:
            empty = self.menu.addAction("No recent weights")
            empty.setEnabled(False)
            return
        self.menu.addSeparator()
        clear = self.menu.addAction("&Clear List")
        clear.setObjectName("action_recent_weights_clear")
        clear.triggered.connect(self._clear)

    def _clear(self) -> None:
        self.recent.clear()
        self.rebuild()
