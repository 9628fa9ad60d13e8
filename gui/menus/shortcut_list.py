"""Every shortcut that works now, grouped by the menu that holds its action.

Read from the live actions each time it is asked: Page Up/Down move between images and the
planes of a stack (gui.controllers.planes), so a list made once would go stale.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QMenuBar

from gui.menus.actions import Actions

CLASS_KEYS = ("Classes", "Choose the class", "0 – 9")
KEYS = "Keys"  # keys no menu lists
STACK_KEYS = (KEYS, "Planes of a stack (with Ctrl: images, Shift: time points)", "PgUp / PgDown")
# keys a usual keyboard lacks: F13-F35 (Qt's Undo binds F14 on some desktops) and the dedicated
# Open, Save, Undo... keys from Key_Back on
MISSING_KEYS = range(Qt.Key.Key_F13.value, Qt.Key.Key_F35.value + 1)
SEPARATOR = " or "  # not ", ": the comma is a shortcut of its own (Less Opaque Mask)


def keys_text(action: QAction) -> str:
    """All of an action's shortcuts a usual keyboard has, as the platform writes them (the standard
    keys also bind dedicated Open, Save or Undo keys, which would read like words here)."""
    return SEPARATOR.join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts()
                          if s.count() and s[0].key().value < Qt.Key.Key_Back.value
                          and s[0].key().value not in MISSING_KEYS)


def shortcut_rows(bar: QMenuBar, actions: Actions) -> list[tuple[str, str, str]]:
    """(menu, action, keys) for every action with a shortcut, with all of its keys, under the first
    menu that shows it; actions in no menu follow (the class keys as one row), then, until a stack is
    shown and its plane actions hold them, what Page Up/Down do in a stack."""
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
    if not actions.prev_plane.shortcuts():
        rows.append(STACK_KEYS)
    return rows


def watch_shortcuts(actions: Actions, callback: Callable[[], None], parent: QObject) -> QTimer:
    """Call ``callback`` once after any action changes (its keys move when a stack is shown or
    closed), so an open list can be rebuilt; the timer gathers a burst of changes into one call."""
    timer = QTimer(parent)
    timer.setSingleShot(True)
    timer.setInterval(0)
    timer.timeout.connect(callback)
    for action in actions.all():
        action.changed.connect(timer.start)
    return timer


def _menu_actions(menu: QMenu) -> list[QAction]:
    """A menu's actions, those of its submenus in place."""
    out: list[QAction] = []
    for action in menu.actions():
        sub = action.menu()
        out.extend(_menu_actions(sub) if isinstance(sub, QMenu) else [action])
    return out
