"""Crash recovery of Live Training's strokes (findings 22-24): strokes alone are offered back,
a recovery copy never replaces work saved after it was taken, and the questions name what is
unsaved (mask, strokes, model), not always "masks"."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication

from core.classes import default_classes
from core.document.recovery import STROKES_DIR, RecoveryStore
from core.document.strokes import UNANNOTATED, read_strokes, write_strokes
from core.io.masks import default_mask_path, read_mask, write_mask
from core.io.mask_naming import strokes_path
from tests.gui.helpers import run_until_autosaved, write_image
from tests.gui.live_helpers import stroke
from tests.gui.test_autosave import appdata, close, leave_copy, make_window  # noqa: F401 - a fixture

STROKES_SESSION = r"""
import sys
import numpy as np
from PySide6.QtCore import QTimer
from gui.main_window import MainWindow
MainWindow.start_background_loading = lambda self: None  # no model needed here
from gui.app import start_app

app, window, _ = start_app([sys.argv[1]])
window.autosave.delay_ms = 100

def paint():
    strokes = window.current.strokes
    strokes.set_brush_size(5)
    for k, cid in enumerate((1, 0, 1, 0, 1, 0)):  # six strokes, nothing on the mask
        strokes.set_active_class(cid)
        strokes.begin_stroke("brush")
        for x in range(6, 70, 6):
            strokes.stroke_to(x, 6 + 9 * k)
        strokes.end_stroke()
    np.save(sys.argv[2], strokes.labels)

window.autosave.saved.connect(lambda n: print("AUTOSAVED", flush=True))
QTimer.singleShot(0, paint)
app.exec()
"""


def test_strokes_alone_are_offered_back_after_the_app_is_killed(qtbot, dialogs, tmp_path, appdata):
    """Finding 22: six strokes, an autosave, SIGKILL: the next start offers them back."""
    image = write_image(tmp_path / "nuclei.png")
    painted_file = tmp_path / "painted.npy"
    proc = run_until_autosaved(STROKES_SESSION, [str(image), str(painted_file)], appdata, tmp_path / "s.ini")
    proc.kill()
    proc.wait(30)
    painted = np.load(painted_file)
    assert (painted != UNANNOTATED).any() and not strokes_path(image).exists()
    assert not (appdata / "recovery").is_dir() or not any((appdata / "recovery").glob("*.json"))  # strokes only
    dialogs.answers["ask_recovery"] = "restore"
    window = make_window(qtbot)
    qtbot.waitUntil(lambda: bool(dialogs.of("ask_recovery")), timeout=5000)
    [(_, crashed, items)] = dialogs.of("ask_recovery")
    assert crashed and items == [items[0]] and items[0].startswith("nuclei.png, strokes edited ")
    strokes = window.current.strokes
    assert np.array_equal(strokes.labels, painted) and strokes.dirty
    close(window, dialogs)


def test_a_stale_strokes_copy_never_replaces_strokes_saved_after_it(qtbot, dialogs, tmp_path, appdata):
    """Finding 23: a crash left a copy of six strokes; a later session saved a seventh stroke to the
    strokes file; restoring the old copy keeps the seventh and adds the six (all seven together),
    and Undo goes back to exactly what was saved."""
    image = write_image(tmp_path / "cells.png")
    six = np.full((60, 80), UNANNOTATED, np.uint8)
    for k in range(6):
        six[4 + 9 * k:7 + 9 * k, 5:40] = k % 2
    leave_copy(appdata, image, np.zeros((60, 80), np.uint8))  # the crashed session's lock
    for p in (appdata / "recovery").glob("*"):
        p.unlink()  # ...with strokes only
    RecoveryStore(appdata, session="deadbeef0000", folder=STROKES_DIR).save(
        image, six, default_classes(2), 6, strokes_path(image))
    seventh = np.full((60, 80), UNANNOTATED, np.uint8)
    seventh[50:56, 50:75] = 1
    seventh[8:10, 20:30] = 0  # also over one of the old strokes: the saved one wins there
    write_strokes(strokes_path(image), seventh, default_classes(2))
    later = time.time() + 5
    os.utime(strokes_path(image), (later, later))  # saved after the copy was taken
    dialogs.answers["ask_recovery"] = "restore"
    window = make_window(qtbot)
    qtbot.waitUntil(lambda: bool(dialogs.of("ask_recovery")), timeout=5000)
    [(_, _, items)] = dialogs.of("ask_recovery")
    assert "older than the strokes saved" in items[0]
    strokes = window.current.strokes
    expected = np.where(seventh != UNANNOTATED, seventh, six)
    assert np.array_equal(strokes.labels, expected)  # all seven strokes together
    window.commands.stroke.trigger()  # undo acts on the strokes
    window.commands.undo.trigger()
    assert np.array_equal(strokes.labels, seventh) and not strokes.dirty
    window.commands.redo.trigger()
    assert np.array_equal(strokes.labels, expected)
    close(window, dialogs)


def test_an_older_mask_copy_never_replaces_a_mask_saved_after_it(qtbot, dialogs, tmp_path, appdata):
    image = write_image(tmp_path / "cells.png")
    copy = np.ones((60, 80), np.uint8)
    leave_copy(appdata, image, copy)
    saved = np.zeros((60, 80), np.uint8)
    saved[10:20, 10:20] = 2
    write_mask(default_mask_path(image), saved, "index", default_classes(3))
    later = time.time() + 5
    os.utime(default_mask_path(image), (later, later))
    dialogs.answers.update(ask_recovery="restore", confirm=False)  # Cancel: keep the copy for later
    window = make_window(qtbot)
    qtbot.waitUntil(lambda: bool(dialogs.of("confirm")), timeout=5000)
    [(_, _, items)] = dialogs.of("ask_recovery")
    assert "older than the mask saved" in items[0]
    [(_, _title, text, _button)] = dialogs.of("confirm")
    assert "after this copy" in text and "the saved mask is kept" in text
    assert np.array_equal(read_mask(default_mask_path(image)), saved)
    entry = window.store.get(image)
    assert entry is None or entry.doc is None or (not entry.doc.dirty and np.array_equal(entry.doc.labels, saved))
    assert len(RecoveryStore(appdata).snapshots()) == 1  # kept, as asked
    close(window, dialogs)


def test_the_quit_question_names_strokes_when_only_strokes_are_unsaved(qtbot, dialogs, tmp_path):
    """Finding 24: unsaved strokes are asked about as strokes, a mask as a mask, both as both."""
    image = write_image(tmp_path / "cells.png")
    window = make_window(qtbot)
    window.open_images([image])
    stroke(qtbot, window, 1, [(10, 10), (50, 10)])
    dialogs.answers["ask_save_discard_cancel"] = "cancel"
    assert not window.close()
    window.document.apply_labels(np.ones(window.document.shape, np.uint8))
    assert not window.close()
    dialogs.answers["ask_save_discard_cancel"] = "save"
    assert window.close()
    assert [args[1:] for args in dialogs.of("ask_save_discard_cancel")] == \
        [("cells.png", "strokes"), ("cells.png", "mask and strokes"), ("cells.png", "mask and strokes")]
    assert (read_strokes(strokes_path(image), (60, 80)) != UNANNOTATED).any()


def answer_modal(qtbot, button_text, seen):
    def answer():
        box = QApplication.activeModalWidget()
        seen.append((box.windowTitle(), box.text(), [b.text() for b in box.buttons()]))
        wanted = [b for b in box.buttons() if b.text().replace("&", "") == button_text]
        if wanted:
            wanted[0].click()
        else:
            qtbot.keyClick(box, Qt.Key.Key_Escape)
    QTimer.singleShot(0, answer)


@pytest.fixture
def real_dialogs(monkeypatch):
    from gui import dialogs as real

    monkeypatch.delenv("UNETSEG_FORBID_DIALOGS")
    return real


def test_the_real_questions_speak_of_what_is_unsaved(qtbot, real_dialogs):
    seen = []
    answer_modal(qtbot, "Discard", seen)
    assert real_dialogs.ask_save_discard_cancel(None, "cells.png", "strokes") == "discard"
    title, text, _ = seen[-1]
    assert title == "Unsaved Strokes" and "strokes of cells.png" in text and "mask" not in text
    answer_modal(qtbot, "Restore", seen)
    assert real_dialogs.ask_recovery(None, True, ["cells.png, strokes edited 2024-05-01 10:00"]) == "restore"
    title, text, _ = seen[-1]
    assert "Masks" not in title and "masks" not in text and "cells.png, strokes edited" in text
    for button, answer in (("Save Model…", "save"), ("Discard", "discard"), (None, "cancel")):
        answer_modal(qtbot, button, seen)
        assert real_dialogs.ask_save_model(None, "Run 2 · #5", "Run 2 · #5  0:15  trained on 900 px") == answer
        title, text, buttons = seen[-1]
        assert "Run 2 · #5" in text and "model" in title.lower() and "Save Model…" in buttons
