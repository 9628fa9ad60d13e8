"""What Save says when it writes objects beside the mask (issue 26): both files, so a user knows
where the objects went."""

from __future__ import annotations

from PySide6.QtCore import Qt

from core.io.mask_naming import default_mask_path, instances_path, stack_instances_path, stack_mask_path
from tests.gui.helpers import drag
from tests.gui.stack_helpers import halves_stack


def save_with_an_object(qtbot, window) -> str:
    qtbot.keyClick(window.canvas, Qt.Key.Key_O, Qt.KeyboardModifier.ShiftModifier)  # Objects mode
    window.select_class(1)
    qtbot.keyClick(window.canvas, Qt.Key.Key_N)  # New Object
    drag(qtbot, window, [(20, 20), (20.5, 20)])
    qtbot.keyClick(window.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert not window.current.dirty
    return window.statusBar().currentMessage()


def test_save_names_the_objects_file_beside_the_mask(qtbot, window, image):
    assert window.open_images([image]) == 1
    message = save_with_an_object(qtbot, window)
    assert message == f"Saved {default_mask_path(image)} and {instances_path(image).name}"
    assert instances_path(image).is_file()


def test_save_of_a_stack_names_its_objects_stack(qtbot, window, tmp_path):
    path, _data = halves_stack(tmp_path / "cells.ome.tif")
    window.open_images([path])
    message = save_with_an_object(qtbot, window)
    assert message.startswith(f"Saved {stack_mask_path(path)} and {stack_instances_path(path).name} (")
