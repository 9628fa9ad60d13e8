"""The names, icons and shortcuts other code and people rely on."""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QGraphicsView, QListWidget, QSlider


def test_object_names_exist(window):
    for name in ("open", "open_folder", "segment", "segment_all", "cancel", "save", "export",
                 "export_all", "undo", "redo", "brush", "eraser", "fill", "polygon", "picker",
                 "load_weights", "toggle_mask", "import_mask"):
        assert isinstance(window.findChild(QAction, f"action_{name}"), QAction), name
    assert isinstance(window.findChild(QGraphicsView, "canvas"), QGraphicsView)
    slider = window.findChild(QSlider, "opacity_slider")
    assert (slider.minimum(), slider.maximum()) == (0, 100)
    assert isinstance(window.findChild(QListWidget, "class_list"), QListWidget)
    assert isinstance(window.findChild(QListWidget, "file_list"), QListWidget)


def test_toolbar_actions_have_icons_and_tooltips(window):
    for action in window.toolbar.actions():
        if action.isSeparator() or not action.text():
            continue
        assert not action.icon().isNull(), action.objectName()
        assert action.toolTip(), action.objectName()


def shortcuts(action):
    return {s.toString() for s in action.shortcuts()}


def test_standard_and_documented_shortcuts(window):
    a = window.commands
    assert QKeySequence(QKeySequence.StandardKey.Undo).toString() in shortcuts(a.undo)
    assert {"Ctrl+Shift+Z", "Ctrl+Y"} <= shortcuts(a.redo)
    assert {"Ctrl+R", "F5"} <= shortcuts(a.segment)
    assert {"Ctrl+0", "F"} <= shortcuts(a.fit) and "Ctrl+1" in shortcuts(a.actual_size)
    assert "Esc" in shortcuts(a.cancel) and "H" in shortcuts(a.toggle_mask)
    assert "O" in shortcuts(a.outline) and "PgDown" in shortcuts(a.next_image)
    assert {"[", "]"} == shortcuts(a.brush_smaller) | shortcuts(a.brush_larger)
    assert "Ctrl+Q" in shortcuts(a.quit)
    every = [s for action in window.commands.all() for s in shortcuts(action)]
    assert len(every) == len(set(every)), "two actions share a shortcut"
