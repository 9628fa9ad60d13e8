"""Finding 17: a model Live Training trained and nobody saved is not lost at quit without a
question (Save Model…, Discard, Cancel), asked in the same close as unsaved masks."""

from __future__ import annotations

from core.model.checkpoints import load_checkpoint
from tests.gui.conftest import new_window
from tests.gui.live_helpers import new_run, publish, snapshot, two_halves, weights_equal


def test_quitting_asks_about_an_unsaved_model_and_cancel_keeps_the_window(qtbot, dialogs, tmp_path):
    window = new_window(qtbot)
    window.open_images([two_halves(tmp_path / "halves.png")])
    run = new_run()
    publish(window, snapshot(run, 0, 0.8, held=1))
    best = publish(window, snapshot(run, 1, 0.9, held=1))
    publish(window, snapshot(run, 2, 0.7, held=1))
    dialogs.answers["ask_save_model"] = "cancel"
    assert not window.close() and window.isVisible()
    [(_, label, details)] = dialogs.of("ask_save_model")
    assert label == "Run 1 · #1" and "trained on" in details  # the marked (best) checkpoint
    target = tmp_path / "kept.safetensors"
    dialogs.answers.update(ask_save_model="save", ask_model_save_path=target, ask_save_discard_cancel="discard")
    assert window.close()
    assert weights_equal(load_checkpoint(target).state_dict, best.checkpoint.state_dict)


def test_no_question_once_the_marked_model_is_saved_or_when_nothing_was_trained(qtbot, dialogs, tmp_path):
    window = new_window(qtbot)
    window.open_images([two_halves(tmp_path / "halves.png")])
    publish(window, snapshot(new_run(), 0))
    dialogs.answers["ask_model_save_path"] = tmp_path / "m.safetensors"
    window.live_panel.save.click()
    assert window.close() and dialogs.of("ask_save_model") == []
    untouched = new_window(qtbot)
    assert untouched.close() and dialogs.of("ask_save_model") == []


def test_discard_closes_and_the_masks_are_asked_about_in_the_same_close(qtbot, dialogs, tmp_path):
    window = new_window(qtbot)
    window.open_images([two_halves(tmp_path / "halves.png")])
    publish(window, snapshot(new_run(), 0))
    window.document.apply_labels(window.mask + 1)  # an unsaved mask too
    dialogs.answers.update(ask_save_model="discard", ask_save_discard_cancel="cancel")
    assert not window.close()  # the mask's Cancel keeps the window
    dialogs.answers["ask_save_discard_cancel"] = "discard"
    assert window.close()
    assert [name for name, _ in dialogs.calls if name.startswith("ask_save")] == \
        ["ask_save_model", "ask_save_discard_cancel", "ask_save_model", "ask_save_discard_cancel"]
