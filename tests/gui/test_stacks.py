"""Z-stacks in the app as a user meets them: open, browse with the sliders and Page Up/Down, paint
strokes and masks per plane, train live, segment the stack, undo per plane, save, reopen; and the
bad stacks a user may bring (issue 27)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from core.io.label_stacks import StackReader, write_label_stack
from core.io.mask_naming import stack_mask_path, stack_strokes_path
from gui.state.live import FROM_SCRATCH
from tests.gui.conftest import new_window
from tests.gui.helpers import MODEL_CLASSES, drag, write_image
from tests.gui.stack_helpers import H, W, Z, PlaneSegmenter, agreement, halves_stack, halves_truth, thread_niceness
from tests.stack_images import stack_data, write_imagej

FAST = dict(snapshot_every=0.4, patch=32, batch=4, threads=1, augment=False)


def shown_pixels(window) -> np.ndarray:
    """The pixels the canvas draws: a plane's raw channels (gui.canvas.memory_source), or its 8-bit RGB."""
    layer = window.canvas.image_layer
    return layer.source.pixels if hasattr(layer, "source") else layer.rgb


def paint(qtbot, window, tool, class_id, points) -> None:
    window.select_class(class_id)
    getattr(window.commands, tool).trigger()
    drag(qtbot, window, points)


def test_a_stack_opens_with_its_sliders_and_channels_and_pages_through_z(qtbot, window, dialogs, tmp_path):
    path, data = halves_stack(tmp_path / "cells.ome.tif")
    other = write_image(tmp_path / "other.png")
    window.open_images([other, path])
    window.show_entry(window.store.get(path))
    bar, planes = window.plane_bar, window.state.planes
    assert bar.isVisible() and bar.numbers["Z"].text() == f"Z 1/{Z}" and not bar.sliders["T"].isVisible()
    assert [c.name for c in window.state.display.view.channels] == ["DAPI", "GFP"]
    assert np.array_equal(shown_pixels(window), np.moveaxis(data[0], 0, -1))
    limits = window.state.display.view.channels
    every = [s.toString() for action in window.commands.all() for s in action.shortcuts()]
    assert len(every) == len(set(every)), "two actions share a shortcut"

    qtbot.keyClick(window.canvas, Qt.Key.Key_PageDown)  # Page Down: the next Z plane, not the next image
    assert planes.plane == (1,) and window.current.path == path
    assert bar.numbers["Z"].text() == f"Z 2/{Z}" and bar.sliders["Z"].value() == 1
    assert np.array_equal(shown_pixels(window), np.moveaxis(data[1], 0, -1))
    bar.sliders["Z"].setValue(4)  # the slider
    assert planes.plane == (4,) and np.array_equal(shown_pixels(window), np.moveaxis(data[4], 0, -1))
    assert window.state.display.view.channels == limits  # contrast measured over the stack: no flicker
    from gui.controllers.pointer_readout import pointer_text

    assert pointer_text(window.state, (3, 3), lambda x, y: None).endswith(f"Z 5/{Z}")  # the status bar names it
    assert np.array_equal(window.minimap._thumb, np.moveaxis(data[4], 0, -1))  # the Overview shows plane 5
    qtbot.keyClick(window.canvas, Qt.Key.Key_PageUp)
    assert planes.plane == (3,)

    # Ctrl+Page Up goes to the other image; there Page Down/Up step images again
    qtbot.keyClick(window.canvas, Qt.Key.Key_PageUp, Qt.KeyboardModifier.ControlModifier)
    assert window.current.path == other and not bar.isVisible() and not window.commands.next_plane.isEnabled()
    qtbot.keyClick(window.canvas, Qt.Key.Key_PageDown)
    assert window.current.path == path and planes.plane == (3,)  # back where it was left


def test_time_points_step_with_shift_page_down_and_the_plane_number_shows(qtbot, window, tmp_path):
    data = stack_data(t=3, z=4, c=2, h=24, w=32)
    path = write_imagej(tmp_path / "movie.tif", data)
    window.open_images([path])
    bar, planes = window.plane_bar, window.state.planes
    assert planes.axes == "TZ" and bar.sliders["T"].isVisible() and bar.numbers["T"].text() == "T 1/3"
    qtbot.keyClick(window.canvas, Qt.Key.Key_PageDown, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClick(window.canvas, Qt.Key.Key_PageDown)
    assert planes.plane == (1, 1) and bar.numbers["T"].text() == "T 2/3" and bar.numbers["Z"].text() == "Z 2/4"
    assert shown_pixels(window)[0, 0, 0] == 100 * 1 + 1  # the plane's own marker (tests/stack_images.py)


def test_open_stack_folder_opens_numbered_planes_as_one_stack(qtbot, window, dialogs, tmp_path):
    folder = tmp_path / "planes"
    folder.mkdir()
    for z in range(5):
        Image.fromarray(np.full((30, 40), 20 * z, np.uint8)).save(folder / f"z{z}.png")
    window.open_folder(folder)  # Open Folder lists numbered images one by one, and says how to open a stack
    assert len(window.store) == 5 and "Open Stack Folder" in window.statusBar().currentMessage()
    assert window.plane_ui.open_stack_folder(folder)
    assert window.current.path == folder and window.state.planes.sizes == (5,)
    window.plane_ui.go((3,))
    assert window.plane_bar.numbers["Z"].text() == "Z 4/5" and (shown_pixels(window) == 60).all()


@pytest.mark.slow  # trains live for several seconds (CI runs it)
def test_stack_flow_browse_strokes_live_training_segment_undo_save_reopen(qtbot, window, dialogs, tmp_path):
    """Issue 27's flow: open a stack, move through Z, paint strokes on two planes, train live, segment
    the stack, edit one plane, undo, save, and reopen it with the mask stack restored."""
    path, _data = halves_stack(tmp_path / "halves.ome.tif")
    window.open_images([path])
    window.state.set_brush_size(4)
    for z in (1, 3):  # strokes on two planes, both classes
        qtbot.keyClick(window.canvas, Qt.Key.Key_PageDown)
        if z == 3:
            qtbot.keyClick(window.canvas, Qt.Key.Key_PageDown)
        assert window.state.planes.plane == (z,)
        paint(qtbot, window, "stroke", 1, [(40, 10), (56, 20), (44, 40)])
        paint(qtbot, window, "stroke", 0, [(8, 12), (24, 22), (12, 40)])
    stack = window.current.stack
    assert stack.annotated_planes() == [(1,), (3,)]
    assert (stack.peek((0,)) is None or stack.peek((0,)).strokes.is_blank) and stack.peek((2,)).strokes.is_blank

    # Live Training learns from both planes; its preview shows the plane in view
    live = window.live
    live.choose_start(FROM_SCRATCH)
    live.config_changes = dict(FAST)
    window.commands.live_training.trigger()
    items, used = live.training_items()
    assert [name for name, _ in used] == ["halves.ome.tif Z 2", "halves.ome.tif Z 4"]
    shown = []
    live.preview_shown.connect(shown.append)
    qtbot.waitUntil(lambda: bool(shown) and agreement(shown[-1].labels) > 0.85, timeout=90_000)
    assert shown[-1].image == window.current.view_key  # a prediction of plane 4, the plane in view
    saved_model = live.save(tmp_path / "live.safetensors")
    window.commands.live_training.trigger()  # off
    window.load_model(saved_model)
    qtbot.waitUntil(lambda: window.models.segmenter is not None, timeout=30_000)

    # Segment Stack: every plane, one undo step each
    window.commands.segment_stack.trigger()
    assert window.state.job is not None and window.state.job.kind == "segment_stack"
    qtbot.waitUntil(lambda: window.state.job is None and not window.current.busy, timeout=60_000)
    results = {z: stack.documents((z,)).mask.labels.copy() for z in range(Z)}
    assert all(agreement(results[z]) > 0.8 for z in range(Z)), [agreement(r) for r in results.values()]
    assert all(stack.documents((z,)).mask.history.undo_label == "segment stack" for z in range(Z))

    # edit one plane, undo it: only that plane changes, and only by the edit
    window.plane_ui.go((2,))
    paint(qtbot, window, "brush", 0, [(44, 10), (54, 30)])  # background painted over the bright half
    assert not np.array_equal(window.mask, results[2]) and window.mask[20, 49] == 0
    window.commands.undo.trigger()
    assert np.array_equal(window.mask, results[2])
    window.commands.undo.trigger()  # plane 2's segmentation; every other plane keeps its own
    assert not window.mask.any()
    assert all(np.array_equal(stack.documents((z,)).mask.labels, results[z]) for z in range(Z) if z != 2)
    window.commands.redo.trigger()

    window.commands.save.trigger()
    target = stack_mask_path(path)
    with StackReader(target, "Z") as reader:
        assert reader.shape == (Z, H, W) and all(np.array_equal(reader.read_plane((z,)), results[z]) for z in range(Z))
    assert stack_strokes_path(path).is_file() and not window.current.dirty

    # reopen: the mask stack and the strokes come back on their planes
    window.commands.close_image.trigger()
    assert len(window.store) == 0
    window.open_images([path])
    again = window.current.stack
    assert again.mask_path == target and window.state.planes.plane == (0,)
    assert all(np.array_equal(again.documents((z,)).mask.labels, results[z]) for z in range(Z))
    assert again.annotated_planes() == [(1,), (3,)]


def test_segment_stack_leaves_the_window_free_and_cancel_keeps_the_planes_done(qtbot, window, dialogs, tmp_path):
    path, _data = halves_stack(tmp_path / "cells.ome.tif")
    fake = PlaneSegmenter(classes=MODEL_CLASSES, tile=8, delay=0.03, value=2)
    window.models.set_segmenter(fake)
    window.open_images([path])
    window.plane_ui.go((5,))
    window.commands.segment_stack.trigger()
    stack = window.current.stack
    done = lambda: [z for z in range(Z) if stack.peek((z,)) is not None and (stack.peek((z,)).mask.labels == 2).any()]  # noqa: E731

    # while it runs: a brush stroke on plane 5 (not yet segmented) is painted at once
    assert window.canvas.editing_enabled and window.commands.brush.isEnabled()
    window.state.set_brush_size(6)
    paint(qtbot, window, "brush", 1, [(5, 5), (12, 12)])
    assert window.document.labels[8, 8] == 1
    qtbot.waitUntil(lambda: len(done()) >= 2, timeout=30_000)
    if thread_niceness() is not None:  # the run yields a core to the window (Linux: priority per thread)
        assert fake.niceness and min(fake.niceness) > thread_niceness()
    window.autosave.flush()  # while it runs only the plane being painted is copied: no stall for the others
    assert [s.plane for s in window.autosave.store.own()] == [(5,)]
    window.commands.cancel.trigger()
    qtbot.waitUntil(lambda: window.state.job is None and not window.current.busy, timeout=30_000)
    kept = done()
    assert 2 <= len(kept) < Z and kept == list(range(len(kept)))  # planes in order, the rest untouched
    assert all(stack.peek((z,)).mask.history.undo_label == "segment stack" for z in kept)
    assert "already done keep their masks" in window.statusBar().currentMessage()
    assert window.document.labels[8, 8] == 1  # the stroke stays
    assert sorted(s.plane for s in window.autosave.store.own()) == sorted([(z,) for z in kept] + [(5,)])
    window.plane_ui.go((0,))  # shown before the run, segmented while not shown: the class list counts it again
    window.class_panel.refresh_counts()
    assert window.class_panel.count_of(2) == int((window.mask == 2).sum()) > 0


def test_segment_plane_is_segment_on_a_stack_and_one_undo_step_of_that_plane(qtbot, window, tmp_path):
    path, _data = halves_stack(tmp_path / "cells.ome.tif")
    window.models.set_segmenter(PlaneSegmenter(classes=MODEL_CLASSES, value=3))
    window.open_images([path])
    window.plane_ui.go((2,))
    assert window.commands.segment.text().replace("&", "") == "Segment Plane"
    window.commands.segment.trigger()
    qtbot.waitUntil(lambda: window.state.job is None, timeout=30_000)
    assert (window.mask == 3).any() and window.document.history.undo_label == "segment plane"
    assert window.statusBar().currentMessage().startswith("Segmented 1 plane in ")  # not "1 plane(s)"
    assert window.current.stack.dirty_planes() == [(2,)]


def test_each_plane_has_its_own_recovery_copy_restored_onto_its_plane(qtbot, dialogs, tmp_path):
    from core.classes import default_classes
    from core.document.recovery import RecoveryStore
    from tests.gui.test_autosave import leave_copy

    path, _data = halves_stack(tmp_path / "cells.ome.tif")
    window = new_window(qtbot)
    window.open_images([path])
    window.state.set_brush_size(6)
    for z, points in ((1, [(10, 10), (30, 20)]), (4, [(40, 30), (55, 40)])):
        window.plane_ui.go((z,))
        paint(qtbot, window, "brush", 1, points)
    assert window.autosave.flush() == 2  # a copy per plane with unsaved edits
    store = window.autosave.store
    copies = {s.plane: s for s in store.own()}
    assert sorted(copies) == [(1,), (4,)] and copies[(4,)].name == "cells.ome.tif Z 5"
    painted = {z: store.load(copies[(z,)]) for z in (1, 4)}
    assert painted[1][12, 15] == 1 and painted[4][35, 48] == 1 and not painted[1][35, 48] and not painted[4][12, 15]
    window.plane_ui.go((1,))
    window.commands.undo.trigger()  # plane 2 clean again: its copy goes, plane 5's stays
    window.autosave.flush()
    assert [s.plane for s in store.own()] == [(4,)]
    dialogs.answers["ask_save_discard_cancel"] = "discard"
    window.close()

    # a session that died left copies of two planes: a new window restores each onto its plane
    dead = leave_copy(tmp_path / "appdata", path, painted[1], session="deadbeef0001")
    dead.remove_image(path)
    for z in (1, 4):
        dead.save(path, painted[z], default_classes(3), 3, stack_mask_path(path), plane=(z,), plane_axes="Z")
    dialogs.answers["ask_recovery"] = "restore"
    second = new_window(qtbot)
    qtbot.waitUntil(lambda: bool(dialogs.of("ask_recovery")), timeout=5000)
    [(_, crashed, lines)] = dialogs.of("ask_recovery")
    assert crashed and sorted(line.split(",")[0] for line in lines) == ["cells.ome.tif Z 2", "cells.ome.tif Z 5"]
    stack = second.current.stack
    assert stack.dirty_planes() == [(1,), (4,)]
    assert all(np.array_equal(stack.documents((z,)).mask.labels, painted[z]) for z in (1, 4))
    assert not stack.documents((2,)).mask.labels.any()
    assert RecoveryStore(tmp_path / "appdata", session="other").recoverable({second.autosave.lock.session}) == []
    second.close()


def test_a_mask_with_other_planes_is_one_message_naming_both_shapes(qtbot, window, dialogs, tmp_path):
    path, _data = halves_stack(tmp_path / "cells.ome.tif", z=5)
    write_label_stack(stack_mask_path(path), np.zeros((4, H, W), np.uint8), "Z")
    window.open_images([path])
    [message] = dialogs.errors()
    assert f"the mask is Z 4 x {H} x {W} but the image is Z 5 x {H} x {W}" in message
    assert "cells_mask.ome.tif" in message and len(window.store) == 0
    assert StackReader(stack_mask_path(path), "Z").shape == (4, H, W)  # nothing overwritten


def test_planes_of_different_sizes_are_refused_naming_the_plane(qtbot, window, dialogs, tmp_path):
    folder = tmp_path / "planes"
    folder.mkdir()
    for z, h in enumerate((30, 30, 24)):
        Image.fromarray(np.zeros((h, 40), np.uint8)).save(folder / f"z{z}.png")
    assert not window.plane_ui.open_stack_folder(folder)
    [message] = dialogs.errors()
    assert "z2.png is 40x24" in message and len(window.store) == 0


def test_a_5d_file_with_an_unknown_axis_order_is_one_clear_message(qtbot, window, dialogs, tmp_path):
    import tifffile

    path = tmp_path / "five.tif"
    tifffile.imwrite(path, np.zeros((2, 3, 4, 16, 16), np.uint16), photometric="minisblack")
    window.open_images([path])
    [message] = dialogs.errors()
    assert "five.tif: a 5-D image" in message and "does not say which axis is time, depth or channel" in message
    assert "OME-TIFF" in message and len(window.store) == 0



def test_stack_options_smooth_across_z_and_link_objects_into_3d(qtbot, window, checkpoint, tmp_path):
    import tifffile

    from core.io.sources import open_source
    from core.segment.inference import Segmenter
    from core.segment.stack import StackOptions, segment_stack

    path, _data = halves_stack(tmp_path / "cells.ome.tif")
    window.load_model(checkpoint)
    qtbot.waitUntil(lambda: window.models.segmenter is not None, timeout=30_000)
    window.open_images([path])
    window.commands.smooth_z.setChecked(True)
    window.commands.stitch_z.setChecked(True)
    window.commands.segment_stack.trigger()
    qtbot.waitUntil(lambda: window.state.job is None and not window.current.busy, timeout=60_000)
    with open_source(path) as source:  # what the command line's --smooth-z 1 gives, plane for plane
        expected = segment_stack(Segmenter.load(checkpoint, device="cpu"), source,
                                 options=StackOptions(smooth_z=1)).labels
    stack = window.current.stack
    assert all(np.array_equal(stack.documents((z,)).mask.labels, expected[z]) for z in range(Z))
    instances = tifffile.imread(tmp_path / "cells_instances.ome.tif")  # objects linked across Z, beside the stack
    assert instances.shape == (Z, H, W) and instances.max() > 0
    linked = [set(np.unique(instances[z])) & set(np.unique(instances[z + 1])) - {0} for z in range(Z - 1)]
    assert any(linked)  # an object of one plane carries on, with its id, in the next (3-D objects)
    assert "cells_instances.ome.tif" in window.statusBar().currentMessage()
