"""The first-run notice: when it is offered, its three ways forward, and "Don't show again"."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog

from core.resources import sample_images
from gui.panels.first_run_notice import FirstRunNotice, should_show_notice


def test_offered_once_for_a_demo_model_on_an_image_that_is_not_a_sample(tmp_path):
    samples = sample_images()
    own = tmp_path / "portrait.jpg"
    assert should_show_notice(True, own, samples, dont_show_again=False, shown_this_session=False)
    assert not should_show_notice(True, samples[0], samples, False, False)  # a sample: the model knows it
    assert not should_show_notice(False, own, samples, False, False)  # the user's own weights
    assert not should_show_notice(True, own, samples, False, shown_this_session=True)
    assert not should_show_notice(True, own, samples, dont_show_again=True, shown_this_session=False)


def test_each_button_emits_its_request_and_dismisses(qtbot):
    for button, signal in (("load_button", "load_weights_requested"), ("train_button", "train_requested"),
                           ("samples_button", "samples_requested")):
        notice = FirstRunNotice("Built-in Small", "recognises four synthetic shapes.")
        qtbot.addWidget(notice)
        notice.show()
        with qtbot.waitSignal(getattr(notice, signal)), qtbot.waitSignal(notice.dismissed) as dismissed:
            getattr(notice, button).click()
        assert dismissed.args == [False] and not notice.isVisible()


def test_dont_show_again_is_reported_and_the_notice_is_not_a_dialog(qtbot):
    notice = FirstRunNotice("Built-in Small", "recognises four synthetic shapes.")
    qtbot.addWidget(notice)
    notice.show()
    assert not isinstance(notice, QDialog) and "demo model" in notice.title.text()
    notice.never.setChecked(True)
    with qtbot.waitSignal(notice.dismissed) as dismissed:
        notice.close_button.click()
    assert dismissed.args == [True] and not notice.isVisible()
