"""Live Training's history: every step uses the checkpoint the user chose, across runs, and the
list holds still under the pointer.

The checkpoints here are published through the trainer's signal with scores the test chooses
(tests/gui/live_helpers.py); test_live_training.py trains for real."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QEnterEvent

from core.model.checkpoints import load_checkpoint
from gui.controllers.live_training import KEEP_CHECKPOINTS
from tests.gui.live_helpers import (dclick, expected_view, new_run, publish, segmented, snapshot, two_halves,
                                    weights_equal)


@pytest.fixture
def shown(qtbot, window, tmp_path):
    """A 64x64 image in the window, and the predictions that reach its view."""
    window.open_images([two_halves(tmp_path / "halves.png")])
    window.live_dock.show()  # as turning Live Training on does
    seen = []
    window.live.preview_shown.connect(seen.append)
    return seen


def marked_rows(panel):
    return [panel.history.item(i).text() for i in range(panel.history.count())
            if panel.history.item(i).text().startswith("▶")]


def double_click(qtbot, panel, uid):
    item = panel.item_of(uid)
    dclick(qtbot, panel.history.viewport(), panel.history.visualItemRect(item).center())


def test_after_a_restart_each_step_uses_the_row_the_user_chose(qtbot, window, dialogs, shown, tmp_path):
    """Two runs both have #0 and #1 (finding 1, 18): the rows say which run, one row is marked,
    and a double-click on either run's #1 makes the view, Apply and Save Model use that one."""
    first, second = new_run(), new_run()
    one = [publish(window, snapshot(first, i)) for i in range(2)]
    two = [publish(window, snapshot(second, i)) for i in range(2)]
    panel, live = window.live_panel, window.state.live
    texts = [panel.history.item(i).text() for i in range(panel.history.count())]
    assert [t.lstrip("▶ ").split("  ")[0] for t in texts] == ["Run 1 · #0", "Run 1 · #1", "Run 2 · #0", "Run 2 · #1"]
    assert marked_rows(panel) == [texts[3]]  # one marker, on the newest (nothing is scored)
    image = window.store.current.image
    for chosen, other in ((one[1], two[1]), (two[1], one[1]), (one[0], two[0])):
        shown.clear()
        double_click(qtbot, panel, chosen.uid)
        assert live.marked == chosen.uid and len(marked_rows(panel)) == 1
        assert marked_rows(panel)[0].startswith(f"▶ Run {1 if chosen.run == first else 2} · #{chosen.index}")
        qtbot.waitUntil(lambda: bool(shown), timeout=20_000)
        assert {p.uid for p in shown} == {chosen.uid}
        assert np.array_equal(shown[-1].labels, expected_view(window, chosen))
        assert not np.array_equal(expected_view(window, chosen), expected_view(window, other))  # a test that can tell
        with qtbot.waitSignal(window.live.applied, timeout=20_000):
            panel.apply.click()
        assert np.array_equal(window.mask, segmented(chosen.checkpoint, image))
        target = tmp_path / f"{chosen.uid}.safetensors"
        dialogs.answers["ask_model_save_path"] = target
        panel.save.click()
        saved = load_checkpoint(target)
        assert weights_equal(saved.state_dict, chosen.checkpoint.state_dict)
        assert not weights_equal(saved.state_dict, other.checkpoint.state_dict)
        assert saved.metadata["live_training"]["snapshot"] == chosen.index


def test_the_mark_stays_until_the_user_or_a_better_checkpoint_moves_it(qtbot, window, dialogs, shown, tmp_path):
    """Finding 18: new checkpoints do not take the marker from the best one, nor from the one the
    user rolled back to; a better score on the same held-out strokes does.  Apply and Save Model
    use the marked one at every moment."""
    run, live, panel = new_run(), window.state.live, window.live_panel
    s0 = publish(window, snapshot(run, 0, 0.50, held=1))
    s1 = publish(window, snapshot(run, 1, 0.70, held=1))
    assert live.marked == s1.uid  # better
    s2 = publish(window, snapshot(run, 2, 0.60, held=1))
    assert live.marked == s1.uid  # newer, worse: the best stays marked
    double_click(qtbot, panel, s0.uid)  # the user rolls back to #0
    assert live.marked == s0.uid and live.pinned
    s3 = publish(window, snapshot(run, 3, 0.45, held=1))
    s4 = publish(window, snapshot(run, 4))  # not scored: not comparable
    s5 = publish(window, snapshot(run, 5, 0.90, held=2))  # other held-out strokes: not comparable either
    assert live.marked == s0.uid  # stays, three checkpoints later
    image = window.store.current.image
    with qtbot.waitSignal(window.live.applied, timeout=20_000):
        panel.apply.click()
    assert np.array_equal(window.mask, segmented(s0.checkpoint, image))
    dialogs.answers["ask_model_save_path"] = tmp_path / "m.safetensors"
    panel.save.click()
    assert weights_equal(load_checkpoint(tmp_path / "m.safetensors").state_dict, s0.checkpoint.state_dict)
    s6 = publish(window, snapshot(run, 6, 0.55, held=1))  # better than #0 on the same strokes
    assert live.marked == s6.uid and not live.pinned
    qtbot.waitUntil(lambda: bool(shown) and shown[-1].uid == s6.uid, timeout=20_000)
    assert {s.uid for s in (s2, s3, s4, s5)}.isdisjoint({p.uid for p in shown})


def test_the_best_checkpoint_is_never_trimmed(qtbot, window, shown):
    """Finding 5 (app): the history keeps 30 checkpoints, the best one among them however old."""
    run, live = new_run(), window.state.live
    snaps = [publish(window, snapshot(run, i, 0.9 if i == 2 else 0.5 + i / 1000, held=1, seed=0))
             for i in range(KEEP_CHECKPOINTS + 8)]
    kept = [r.uid for r in live.history]
    assert len(kept) == KEEP_CHECKPOINTS and snaps[2].uid in kept
    assert live.marked == snaps[2].uid and window.live_panel.item_of(snaps[2].uid).text().startswith("▶")
    assert "best" in window.live_panel.item_of(snaps[2].uid).text()
    assert kept[-1] == snaps[-1].uid and snaps[3].uid not in kept  # the oldest others made room


def enter(widget):
    widget.setAttribute(Qt.WidgetAttribute.WA_UnderMouse, True)
    pos = QPointF(widget.rect().center())
    qapp_send(widget, QEnterEvent(pos, pos, QPointF(widget.mapToGlobal(pos.toPoint()))))


def leave(widget):
    widget.setAttribute(Qt.WidgetAttribute.WA_UnderMouse, False)
    qapp_send(widget, QEvent(QEvent.Type.Leave))


def qapp_send(widget, event):
    from PySide6.QtWidgets import QApplication

    QApplication.sendEvent(widget, event)


def test_the_list_holds_still_while_the_pointer_is_on_it(qtbot, window, shown):
    """Finding 18: checkpoints arriving (and the oldest trimmed) while the user aims at a row move
    no row; the click lands on the row aimed at, and the new rows show once the pointer leaves."""
    run, panel, live = new_run(), window.live_panel, window.state.live
    snaps = [publish(window, snapshot(run, i, seed=0)) for i in range(KEEP_CHECKPOINTS)]
    viewport = panel.history.viewport()
    enter(viewport)
    aimed = snaps[5]
    where = panel.history.visualItemRect(panel.item_of(aimed.uid)).center()
    before = [panel.history.item(i).data(Qt.ItemDataRole.UserRole) for i in range(panel.history.count())]
    later = [publish(window, snapshot(run, KEEP_CHECKPOINTS + i, seed=0)) for i in range(3)]
    assert len(live.history) == KEEP_CHECKPOINTS and snaps[0].uid not in {r.uid for r in live.history}
    after = [panel.history.item(i).data(Qt.ItemDataRole.UserRole) for i in range(panel.history.count())]
    assert after == before and panel.holding  # nothing moved under the pointer
    assert panel.history.itemAt(where).data(Qt.ItemDataRole.UserRole) == aimed.uid
    dclick(qtbot, viewport, where)
    assert live.marked == aimed.uid
    leave(viewport)
    rows = [panel.history.item(i).data(Qt.ItemDataRole.UserRole) for i in range(panel.history.count())]
    assert rows == [r.uid for r in live.history] and rows[-3:] == [s.uid for s in later]
    assert not panel.holding and live.marked == aimed.uid
