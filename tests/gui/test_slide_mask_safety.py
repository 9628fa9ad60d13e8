"""A slide's mask in the app is never lost by an export or a crash restore (issue 20, findings 1
and 2): Export writes a copy and leaves the document on its own file; a restored copy goes back
onto the mask it was recorded against (a Save As file), never onto the one beside the image."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from core.classes import default_classes
from core.document.chunked_labels import ChunkedLabels
from core.io.mask_naming import default_mask_path
from tests.gui.test_autosave import leave_copy, make_window
from tests.large_images import write_repeated_pyramid

SIDE = 1536  # 3 x 3 mask chunks of 512


@pytest.fixture
def slide(tmp_path, monkeypatch):
    import gui.state.loading

    monkeypatch.setattr(gui.state.loading, "LARGE_IMAGE_PIXELS", 1_000_000)  # a small slide, quick to test
    return write_repeated_pyramid(tmp_path / "slide.ome.tif", SIDE)


def paint(doc, y0, x0, value, size=(300, 400)):
    doc.paste_region(y0, x0, np.full(size, value, np.uint8))
    doc.commit_preview("paint")


def on_disk(path) -> np.ndarray:
    with ChunkedLabels.open(path) as mask:
        return mask[:, :]


def test_export_then_delete_the_copy_then_save_keeps_every_label(qtbot, window, dialogs, slide, tmp_path):
    assert window.open_images([slide]) == 1 and window.current.source is not None
    doc = window.document
    doc.labels.cache_bytes = 300_000  # about one chunk: most of the mask lives in scratch or on disk
    paint(doc, 50, 60, 1)
    window.commands.save.trigger()
    base = default_mask_path(slide, chunked=True)
    paint(doc, 700, 900, 2)
    paint(doc, 1200, 100, 3)
    expected = np.asarray(doc.labels[:, :]).copy()
    copy = tmp_path / "for a colleague.ome.zarr"
    dialogs.answers["ask_export_path"] = lambda parent, suggested, fmt, note=None: (copy, "ome-zarr")
    window.commands.export.trigger()
    assert (on_disk(copy) == expected).all() and doc.dirty  # an export is not the image's saved mask
    window.autosave.flush()
    [snap] = window.autosave.store.own()
    shutil.rmtree(copy)
    window.commands.save.trigger()
    assert not doc.dirty and dialogs.errors() == []
    assert (on_disk(base) == expected).all()  # every label, not background where the cache let go
    assert snap.base_path == base.resolve()  # autosave recorded the edits against the real base
    assert doc.labels.path == base


def test_a_restore_goes_onto_the_save_as_file_not_the_default_mask(qtbot, dialogs, slide, tmp_path):
    appdata = tmp_path / "appdata"
    default = default_mask_path(slide, chunked=True)
    beside = np.zeros((SIDE, SIDE), np.uint8)
    beside[600:900, 600:900] = 4  # the default-named mask holds something else
    elsewhere = tmp_path / "elsewhere" / "mine.ome.zarr"
    elsewhere.parent.mkdir()
    saved = np.zeros((SIDE, SIDE), np.uint8)
    saved[20:300, 30:400] = 1  # saved with Save As before the crash (chunk (0, 0) only)
    for path, content in ((default, beside), (elsewhere, saved)):
        mask = ChunkedLabels.create(SIDE, SIDE)
        mask[:, :] = content
        mask.save_to(path)
        mask.close()
    unsaved = ChunkedLabels.open(elsewhere)
    unsaved[1100:1400, 1100:1500] = 2  # edited after the Save As, then the app crashed (chunk (2, 2))
    expected = unsaved[:, :].copy()
    leave_copy(appdata, slide, unsaved, classes=default_classes(5))
    manifest = next((appdata / "recovery").glob("*.json"))  # the crashed window saved to its Save As file:
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "mask_path": str(elsewhere)}))
    unsaved.close()
    dialogs.answers["ask_recovery"] = "restore"
    window = make_window(qtbot)
    qtbot.waitUntil(lambda: bool(dialogs.of("ask_recovery")), timeout=10_000)
    assert window.current.source is not None and window.document.dirty
    assert (np.asarray(window.mask[:, :]) == expected).all()
    window.commands.save.trigger()
    assert dialogs.errors() == [] and not window.document.dirty
    assert (on_disk(elsewhere) == expected).all()  # the Save As file gets the right content
    assert (on_disk(default) == beside).all()  # and the default-named mask is untouched
    dialogs.answers["ask_save_discard_cancel"] = "discard"
    assert window.close()


def test_a_restore_whose_saved_mask_is_gone_is_refused_naming_it(qtbot, dialogs, slide, tmp_path):
    appdata = tmp_path / "appdata"
    elsewhere = tmp_path / "mine.ome.zarr"
    mask = ChunkedLabels.create(SIDE, SIDE)
    mask[0:100, 0:100] = 1
    mask.save_to(elsewhere)
    mask[1000:1100, 1000:1100] = 2
    leave_copy(appdata, slide, mask, classes=default_classes(3))
    mask.close()
    shutil.rmtree(elsewhere)
    dialogs.answers["ask_recovery"] = "restore"
    dialogs.answers["confirm"] = False  # keep the copy for later
    window = make_window(qtbot)
    qtbot.waitUntil(lambda: bool(dialogs.of("confirm")), timeout=10_000)
    [(_, title, text, _)] = dialogs.of("confirm")
    assert "mine.ome.zarr" in text and "gone" in text
    assert window.current is None and not default_mask_path(slide, chunked=True).exists()
    assert len(list((appdata / "recovery").glob("*.json"))) == 1  # kept for the next start
    dialogs.answers["ask_save_discard_cancel"] = "discard"
    assert window.close()


@pytest.mark.parametrize("edited", [False, True])
def test_a_restore_onto_a_slide_already_open_on_another_mask(qtbot, dialogs, slide, tmp_path, edited):
    """A clean document on the default mask is reopened on the copy's base; unsaved edits are never
    replaced (the copy is refused, naming why, and kept)."""
    appdata = tmp_path / "appdata"
    default = default_mask_path(slide, chunked=True)
    elsewhere = tmp_path / "mine.ome.zarr"
    for path, value in ((default, 4), (elsewhere, 1)):
        mask = ChunkedLabels.create(SIDE, SIDE)
        mask[0:200, 0:200] = value
        mask.save_to(path)
        if path == elsewhere:
            mask[1200:1300, 1200:1300] = 2
            expected = mask[:, :].copy()
            leave_copy(appdata, slide, mask, classes=default_classes(5))
        mask.close()
    dialogs.answers["ask_recovery"] = "later"
    window = make_window(qtbot)
    qtbot.waitUntil(lambda: bool(dialogs.of("ask_recovery")), timeout=10_000)
    assert window.open_images([slide]) == 1 and window.document.labels.path == default
    if edited:
        paint(window.document, 700, 700, 3)
    dialogs.answers["confirm"] = False
    restored = window.autosave.restore(window.autosave.store.recoverable(set()))
    if edited:
        assert restored == [] and "unsaved edits on another mask" in dialogs.of("confirm")[0][2]
        assert window.document.labels.path == default and window.mask[800, 800] == 3
    else:
        assert window.document.labels.path.resolve() == elsewhere.resolve()
        assert (np.asarray(window.mask[:, :]) == expected).all() and window.document.dirty
    dialogs.answers["ask_save_discard_cancel"] = "discard"
    assert window.close()
    assert on_disk(default)[100, 100] == 4  # the default-named mask is untouched either way
