"""Live Training's strokes in the app: painted apart from the mask, undone on their own, drawn
unlike it, saved beside the image by the naming rule, and recovered after a crash."""

from __future__ import annotations

import numpy as np

from core.document.strokes import UNANNOTATED, read_strokes
from core.io.mask_naming import default_mask_path, strokes_path
from tests.gui.helpers import drag, write_image
from tests.gui.test_autosave import appdata, close, leave_copy, make_window  # noqa: F401 - a fixture


def stroke(qtbot, window, class_id, points):
    window.select_class(class_id)
    window.commands.stroke.trigger()
    drag(qtbot, window, points)


def test_strokes_are_painted_apart_from_the_mask_with_their_own_undo(qtbot, window, image):
    window.open_images([image])
    window.state.set_brush_size(6)
    drag(qtbot, window, [(5, 50), (40, 50)])  # the brush paints the mask
    mask = window.mask.copy()
    stroke(qtbot, window, 1, [(10, 10), (60, 10)])
    stroke(qtbot, window, 0, [(10, 30), (60, 30)])
    strokes = window.current.strokes
    assert set(strokes.class_pixels()) == {0, 1}
    assert np.array_equal(window.mask, mask)  # strokes never touch the mask
    assert window.isWindowModified()
    window.commands.stroke_eraser.trigger()
    drag(qtbot, window, [(10, 30), (60, 30)])
    assert set(strokes.class_pixels()) == {1}  # erased: not annotated (not background)
    assert "strokes" in window.commands.undo.text()
    window.commands.undo.trigger()  # a stroke tool is chosen: undo takes back the stroke erasing
    assert set(strokes.class_pixels()) == {0, 1} and np.array_equal(window.mask, mask)
    window.commands.brush.trigger()
    window.commands.undo.trigger()  # the brush: undo takes back the mask edit
    assert not window.mask.any() and set(strokes.class_pixels()) == {0, 1}


def test_strokes_are_drawn_solid_over_a_translucent_mask(qtbot, window, image):
    window.open_images([image])
    window.state.set_brush_size(10)
    window.canvas.set_scale(4)
    window.canvas.center_on_image(30, 20)
    drag(qtbot, window, [(20, 14), (40, 14)])  # mask, class 1 (red at 50%)
    stroke(qtbot, window, 1, [(20, 26), (40, 26)])  # a stroke of the same class
    shot = window.grab().toImage()  # the window as a screenshot shows it (the canvas is offset in it)
    vp = window.canvas.viewport()
    pixel = lambda x, y: shot.pixelColor(vp.mapTo(window, window.canvas.mapFromScene(x, y)))  # noqa: E731
    red = window.document.classes[1].color
    solid, mixed = pixel(30, 26), pixel(30, 14)
    assert (solid.red(), solid.green(), solid.blue()) == tuple(red)  # full opacity: the class colour itself
    assert (mixed.red(), mixed.green(), mixed.blue()) != tuple(red)  # the mask is blended with the image
    edge = pixel(30, 26 - 5.3)  # just outside the stroke's edge: the dark outline
    assert max(edge.red(), edge.green(), edge.blue()) < 90


def test_save_writes_the_strokes_beside_the_image_and_reopening_loads_them(qtbot, dialogs, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    image = write_image(folder / "cells.png")
    window = make_window(qtbot)
    window.open_folder(folder)
    stroke(qtbot, window, 2 if len(window.document.classes) > 2 else 1, [(10, 10), (50, 10)])
    painted = window.current.strokes.labels.copy()
    window.commands.save.trigger()
    assert not default_mask_path(image).exists()  # only the strokes changed: no blank mask file
    assert np.array_equal(read_strokes(strokes_path(image), painted.shape), painted)
    assert not window.isWindowModified()
    close(window, dialogs)
    window = make_window(qtbot)
    window.open_folder(folder)
    assert [e.name for e in window.store] == ["cells.png"]  # cells_strokes.png is not an image
    assert np.array_equal(window.current.strokes.labels, painted)
    close(window, dialogs)


def test_unsaved_strokes_are_copied_and_restored_after_a_crash(qtbot, dialogs, tmp_path, appdata):
    image = write_image(tmp_path / "cells.png")
    window = make_window(qtbot)
    window.open_images([image])
    with qtbot.waitSignal(window.autosave.saved, timeout=5000):
        stroke(qtbot, window, 1, [(10, 10), (50, 10)])
    [snap] = window.autosave.strokes_store.own()
    assert window.autosave.store.own() == []  # the mask has no unsaved edits
    painted = window.current.strokes.labels.copy()
    assert np.array_equal(window.autosave.strokes_store.load(snap), painted)
    assert snap.mask_path == strokes_path(image).resolve()
    close(window, dialogs)
    assert window.autosave.strokes_store.own() == []  # a clean exit leaves no copies

    from core.document.recovery import STROKES_DIR, RecoveryStore

    leave_copy(appdata, image, np.zeros((60, 80), np.uint8))  # a crashed session's lock (and a mask copy)
    RecoveryStore(appdata, session="deadbeef0000", folder=STROKES_DIR).save(
        image, painted, window.document.classes, 3, strokes_path(image))
    dialogs.answers["ask_recovery"] = "restore"
    window = make_window(qtbot)
    qtbot.waitUntil(lambda: bool(dialogs.of("ask_recovery")), timeout=5000)
    [(_, _crashed, items)] = dialogs.of("ask_recovery")
    assert any("strokes edited" in line for line in items)
    strokes = window.current.strokes
    assert np.array_equal(strokes.labels, painted) and strokes.dirty
    strokes.undo()  # restored as one undo step over the (absent) strokes file
    assert (strokes.labels == UNANNOTATED).all()
    close(window, dialogs)


def nuclei(path, dark: bool):
    """A fluorescence-like image (black, with near-white nuclei) or a bright-field-like one (pale,
    with near-black cells)."""
    from PIL import Image

    rgb = np.full((60, 80, 3), 12 if dark else 232, np.uint8)
    for cy, cx in ((15, 60), (45, 65), (48, 20)):
        yy, xx = np.ogrid[:60, :80]
        rgb[(yy - cy) ** 2 + (xx - cx) ** 2 < 36] = 245 if dark else 8
    Image.fromarray(rgb).save(path)
    return path


def test_background_strokes_contrast_with_dark_and_bright_images(qtbot, window, tmp_path):
    """Finding 21: a background stroke stands out from the image's background and never looks like
    its most extreme objects (the brightest nuclei on a dark image, the darkest cells on a bright
    one); its outline stands out from the image too."""
    from PySide6.QtCore import QPoint

    from gui.canvas.live_layers import contrast, luminance

    for dark in (True, False):
        image = nuclei(tmp_path / f"{'dark' if dark else 'bright'}.png", dark)
        window.open_images([image])
        window.state.set_brush_size(8)
        window.canvas.set_scale(4)
        window.canvas.center_on_image(30, 20)
        stroke(qtbot, window, 0, [(20, 26), (40, 26)])  # a background stroke over the background
        shot = window.grab().toImage()
        vp = window.canvas.viewport()
        at = lambda x, y: vp.mapTo(window, window.canvas.mapFromScene(x, y))  # noqa: E731
        rgb = lambda p: (lambda c: (c.red(), c.green(), c.blue()))(shot.pixelColor(p))  # noqa: E731
        centre = at(30, 26)
        fill, ground = (float(luminance(rgb(p))) for p in (centre, at(30, 40)))
        column = [rgb(centre - QPoint(0, dy)) for dy in range(40)]
        ring = column[column.index(next(c for c in column if c != column[0])):column.index(rgb(at(30, 40)))]
        edge = max((float(luminance(c)) for c in ring), key=lambda v: contrast(v, ground))  # the outline
        extreme = float(luminance((245,) * 3 if dark else (8,) * 3))
        assert contrast(fill, ground) >= 3, (dark, fill, ground)
        assert contrast(fill, extreme) >= 3, (dark, fill, extreme)  # not like the nuclei / cells
        assert contrast(edge, ground) >= 3, (dark, edge, ground)
        window.current.strokes.mark_saved()
