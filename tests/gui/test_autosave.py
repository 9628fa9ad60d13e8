"""Autosave and crash recovery: copies in the app-data folder, offered back after a crash."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.classes import default_classes
from core.io.masks import default_mask_path, read_mask
from core.document.recovery import RecoveryStore, SessionLock
from tests.gui.helpers import drag, run_until_autosaved, write_image

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def appdata(tmp_path) -> Path:
    return tmp_path / "appdata"  # UNETSEG_DATA_DIR (tests/gui/conftest.py)


def make_window(qtbot, delay_ms=20):
    from gui.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.autosave.delay_ms = delay_ms
    win.show()
    return win


def close(window, dialogs):
    dialogs.answers["ask_save_discard_cancel"] = "discard"
    dialogs.answers.setdefault("ask_save_model", "discard")
    assert window.close()


def leave_copy(appdata, image, labels, session="deadbeef0000", pid=None, classes=None):
    """What a crashed session leaves: a recovery copy and a lock whose process is gone."""
    store = RecoveryStore(appdata, session=session)
    store.save(image, labels, classes or default_classes(3), 7, default_mask_path(image))
    lock = SessionLock(appdata, session=session)
    lock.acquire()
    raw = json.loads(lock.path.read_text())
    lock.path.write_text(json.dumps({**raw, "pid": pid or dead_pid(), "start_token": None}))
    return store


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(30)
    return proc.pid


def test_edits_are_copied_after_a_pause_and_on_every_switch(qtbot, dialogs, folder, appdata):
    window = make_window(qtbot, delay_ms=60_000)  # only the switch may write here
    window.open_folder(folder)
    drag(qtbot, window, [(10, 10), (30, 20)])
    assert window.autosave.store.own() == []  # the pause has not passed yet
    window.opener.step(1)  # the switch writes at once
    [snap] = window.autosave.store.own()
    img0 = window.store.get(folder / "img0.png")
    assert snap.image_path == (folder / "img0.png").resolve()
    assert snap.history_position == img0.doc.history.position
    assert (window.autosave.store.load(snap) == img0.doc.labels).all()
    assert snap.mask_path == default_mask_path(folder / "img0.png").resolve()
    assert snap.manifest_path.parent == appdata / "recovery"
    assert not default_mask_path(folder / "img0.png").exists()  # the real file waits for Save
    window.autosave.delay_ms = 20
    with qtbot.waitSignal(window.autosave.saved, timeout=5000):
        drag(qtbot, window, [(5, 5), (15, 5)])  # img1: copied after the (short) pause
    assert {s.name for s in window.autosave.store.own()} == {"img0.png", "img1.png"}
    assert sorted(p.name for p in folder.iterdir()) == [f"img{i}.png" for i in range(4)]
    close(window, dialogs)


def test_saving_undoing_and_discarding_remove_the_copy(qtbot, dialogs, folder, appdata):
    window = make_window(qtbot)
    window.open_folder(folder)
    own = window.autosave.store.own
    with qtbot.waitSignal(window.autosave.saved, timeout=5000):
        drag(qtbot, window, [(10, 10), (30, 20)])
    window.commands.save.trigger()
    assert own() == []  # saved: the copy goes at once
    with qtbot.waitSignal(window.autosave.saved, timeout=5000):
        drag(qtbot, window, [(5, 30), (30, 30)])
    window.commands.undo.trigger()  # back to the saved state: nothing unsaved
    assert own() == []
    with qtbot.waitSignal(window.autosave.saved, timeout=5000):
        drag(qtbot, window, [(5, 30), (30, 30)])
    dialogs.answers["ask_save_discard_cancel"] = "discard"
    window.commands.close_image.trigger()  # Close Image, Discard
    assert own() == []
    with qtbot.waitSignal(window.autosave.saved, timeout=5000):
        drag(qtbot, window, [(5, 30), (30, 30)])
    assert len(own()) == 1 and len(list((appdata / "sessions").glob("*.lock"))) == 1
    close(window, dialogs)  # a clean exit: no copies, no lock
    assert list((appdata / "recovery").iterdir()) == []
    assert list((appdata / "sessions").iterdir()) == []


def test_a_crashed_session_is_offered_and_restored_as_unsaved_edits(qtbot, dialogs, tmp_path, appdata):
    image = write_image(tmp_path / "my cells.png")
    labels = np.zeros((60, 80), np.uint8)
    labels[5:25, 10:60] = 2
    leave_copy(appdata, image, labels)
    dialogs.answers["ask_recovery"] = "restore"
    window = make_window(qtbot)
    qtbot.waitUntil(lambda: bool(dialogs.of("ask_recovery")), timeout=5000)
    [(_, crashed, items)] = dialogs.of("ask_recovery")
    assert crashed and len(items) == 1 and items[0].startswith("my cells.png, mask edited ")
    assert window.current.path == image and (window.mask == labels).all()
    assert window.document.dirty and window.isWindowModified()
    assert [c.id for c in window.document.classes] == [0, 1, 2]
    assert not default_mask_path(image).exists()
    [mine] = window.autosave.store.snapshots()  # the old copy is gone, this session's replaces it
    assert mine.session == window.autosave.store.session
    window.commands.undo.trigger()  # the restore is one undo step over the image's saved state
    assert not window.mask.any()
    window.commands.redo.trigger()
    window.commands.save.trigger()
    assert (read_mask(default_mask_path(image)) == labels).all()
    assert window.autosave.store.snapshots() == []
    close(window, dialogs)


@pytest.mark.parametrize("answer", ["discard", "later"])
def test_discard_deletes_and_later_keeps_for_the_next_start(qtbot, dialogs, tmp_path, appdata, answer):
    image = write_image(tmp_path / "cells.png")
    leave_copy(appdata, image, np.ones((60, 80), np.uint8))
    dialogs.answers["ask_recovery"] = answer
    window = make_window(qtbot)
    qtbot.waitUntil(lambda: bool(dialogs.of("ask_recovery")), timeout=5000)
    assert window.current is None and len(window.store) == 0
    close(window, dialogs)
    left = RecoveryStore(appdata).snapshots()
    assert len(left) == (answer == "later")
    second = make_window(qtbot)
    qtbot.wait(50)
    asked = dialogs.of("ask_recovery")
    if answer == "later":  # offered again; this time there was no crash
        assert len(asked) == 2 and asked[1][1] is False and "cells.png" in asked[1][2][0]
    else:
        assert len(asked) == 1
    close(second, dialogs)


def test_a_copy_whose_image_is_gone_is_reported_and_can_be_discarded(qtbot, dialogs, tmp_path, appdata):
    kept = write_image(tmp_path / "kept.png")
    gone = write_image(tmp_path / "gone.png")
    leave_copy(appdata, kept, np.ones((60, 80), np.uint8), session="aaaa00000000")
    leave_copy(appdata, gone, np.ones((60, 80), np.uint8), session="bbbb00000000")
    gone.unlink()
    dialogs.answers["ask_recovery"] = "restore"
    dialogs.answers["confirm"] = True  # "Discard Them"
    window = make_window(qtbot)
    qtbot.waitUntil(lambda: bool(dialogs.of("confirm")), timeout=5000)
    [(_, _, items)] = dialogs.of("ask_recovery")
    assert any("gone.png" in i and "the image is gone" in i for i in items)
    [(_, title, text, _button)] = dialogs.of("confirm")
    assert "gone.png" in text and str(gone) in text
    assert window.current.path == kept and window.document.dirty
    assert [s.name for s in RecoveryStore(appdata).snapshots()] == ["kept.png"]  # ours, renewed
    close(window, dialogs)


def test_a_running_instance_is_not_a_crash(qtbot, dialogs, tmp_path, appdata):
    """Another live window (here: this process, another session) keeps its copies to itself."""
    image = write_image(tmp_path / "cells.png")
    other = RecoveryStore(appdata, session="1111aaaa2222")
    other.save(image, np.ones((60, 80), np.uint8), default_classes(2), 1)
    SessionLock(appdata, session="1111aaaa2222").acquire()  # our own pid: alive
    window = make_window(qtbot)
    qtbot.wait(50)
    assert dialogs.of("ask_recovery") == [] and not window.autosave.crashed
    close(window, dialogs)
    assert [s.session for s in RecoveryStore(appdata).snapshots()] == ["1111aaaa2222"]


def test_an_unwritable_data_folder_turns_autosave_off_not_the_app(qtbot, dialogs, tmp_path, monkeypatch,
                                                                 image):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the app-data folder should be")
    monkeypatch.setenv("UNETSEG_DATA_DIR", str(blocker))
    window = make_window(qtbot)
    assert "Autosave is off" in window.statusBar().currentMessage()
    window.open_images([image])
    drag(qtbot, window, [(10, 10), (30, 20)])
    qtbot.wait(60)
    assert window.document.dirty and window.autosave.flush() == 0
    close(window, dialogs)


CRASHING_SESSION = r"""
import sys
import numpy as np
from PySide6.QtCore import QTimer
from gui.main_window import MainWindow
MainWindow.start_background_loading = lambda self: None  # no model needed here
from gui.app import start_app

app, window, _ = start_app([sys.argv[1]])
window.autosave.delay_ms = 100
x0, y0 = int(sys.argv[3]), int(sys.argv[4])  # where to paint (far into a slide, or the corner)

def paint():
    doc = window.document
    doc.set_active_class(1)
    doc.set_brush_size(7)
    doc.begin_stroke("brush")
    for x in range(6, 60, 4):
        doc.stroke_to(x0 + x, y0 + 12 + x // 3)
    doc.end_stroke()
    np.save(sys.argv[2], doc.labels[y0:y0 + 80, x0:x0 + 80])

window.autosave.saved.connect(lambda n: print("AUTOSAVED", flush=True))
QTimer.singleShot(0, paint)
app.exec()
"""


def test_recovery_after_the_process_is_killed(qtbot, dialogs, tmp_path, appdata):
    """A real crash: the app runs in a subprocess, paints, autosaves, and is SIGKILLed."""
    image = write_image(tmp_path / "crash test ü.png")
    expected_file = tmp_path / "painted.npy"
    proc = run_until_autosaved(CRASHING_SESSION, [str(image), str(expected_file), "0", "0"], appdata,
                               tmp_path / "crash.ini")
    alongside = make_window(qtbot)  # a second instance while the first still runs: no crash
    qtbot.wait(50)
    assert dialogs.of("ask_recovery") == [] and not alongside.autosave.crashed
    close(alongside, dialogs)
    proc.kill()  # SIGKILL: no close event, no clean-up
    proc.wait(30)
    painted = np.load(expected_file)
    assert painted.any() and not default_mask_path(image).exists()
    assert len(list((appdata / "sessions").glob("*.lock"))) == 1  # left behind by the crash
    assert "started" in (appdata / "unetseg.log").read_text()
    dialogs.answers["ask_recovery"] = "restore"
    window = make_window(qtbot)
    qtbot.waitUntil(lambda: bool(dialogs.of("ask_recovery")), timeout=5000)
    [(_, crashed, items)] = dialogs.of("ask_recovery")
    assert crashed and items[0].startswith(image.name)
    assert window.current.path == image
    assert np.array_equal(window.mask, painted) and window.document.dirty
    assert list((appdata / "sessions").glob("*.lock")) == [window.autosave.lock.path]
    close(window, dialogs)


@pytest.mark.parametrize("button, answer", [("Restore", "restore"), ("Discard", "discard"),
                                            ("Later", "later"), (None, "later")])
def test_the_recovery_question_itself(qtbot, monkeypatch, button, answer):
    """The real message box (no exec() stand-in): each button, and Escape, give their answer."""
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from gui import dialogs as real

    monkeypatch.delenv("UNETSEG_FORBID_DIALOGS")
    seen = []

    def answer_it():
        box = QApplication.activeModalWidget()
        seen.append(box.text())
        wanted = [b for b in box.buttons() if b.text() == button]
        if wanted:
            wanted[0].click()
        else:  # Escape (and, should a button be missing, never leave exec() waiting)
            qtbot.keyClick(box, Qt.Key.Key_Escape)

    QTimer.singleShot(0, answer_it)
    assert real.ask_recovery(None, True, ["cells.png, edited 2024-05-01 10:00"]) == answer
    assert "did not close properly" in seen[0] and "cells.png, edited 2024-05-01 10:00" in seen[0]
