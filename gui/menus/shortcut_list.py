"""Every shortcut that works now, grouped by the menu that holds its action.

Read from the live actions each time it is asked: Page Up/Down move between images and the
planes of a stack (gui.controllers.planes), so a list made once would go stale.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QMenuBar

from gui.menus.actions import Actions

CLASS_KEYS = ("Classes", "Choose the class", "0 – 9")
SEPARATOR = " or "  # not ", ": the comma is a shortcut of its own (Less Opaque Mask)


def keys_text(action: QAction) -> str:
    """All of an action's shortcuts a usual keyboard has, as the platform writes them (the standard
    keys also bind dedicated Open, Save or Undo keys, which would read like words here)."""
    return SEPARATOR.join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts()
                          if s.count() and s[0].key().value < Qt.Key.Key_Back.value)


def shortcut_rows(bar: QMenuBar, actions: Actions) -> list[tuple[str, str, str]]:
    """(menu, action, keys) for every action with a shortcut, with all of its keys, under the first
    menu that shows it; actions in no menu follow (the class keys as one row)."""
    rows: list[tuple[str, str, str]] = []
    seen: set[str] = set()

    def add(section: str, action: QAction) -> None:
        if action.shortcuts() and action.objectName() not in seen:
            seen.add(action.objectName())
            rows.append((section, actions.title(action), keys_text(action)))

    for entry in bar.actions():
        menu = entry.menu()
        if isinstance(menu, QMenu):
            for action in _menu_actions(menu):
                add(menu.title().replace("&", ""), action)
    seen.update(a.objectName() for a in actions.class_keys)
    if any(a.shortcuts() for a in actions.class_keys):
        rows.append(CLASS_KEYS)
    for action in actions.all():
        add("Other", action)
    return rows


def _menu_actions(menu: QMenu) -> list[QAction]:
    """A menu's actions, those of its submenus in place."""
    out: list[QAction] = []
    for action in menu.actions():
        sub = action.menu()
        out.extend(_menu_actions(sub) if isinstance(sub, QMenu) else [action])
    return out
