"""The first-run notice: when it is offered, its three ways forward, and "Don't show again"."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog

from core.resources import sample_images
from gui.controllers.first_run import FirstRunGuide, knows_text, should_show_notice
from gui.panels.first_run_notice import FirstRunNotice


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


def test_the_guide_shows_once_per_session_and_never_after_dont_show_again(tmp_path):
    class Settings:
        show_first_run_notice = True

    settings, shown = Settings(), []
    own, samples = tmp_path / "portrait.jpg", sample_images()
    description = "Demo model: recognises ellipses, rectangles, triangles and stars, by shape. Trained only on..."
    guide = FirstRunGuide(settings, samples, lambda label, knows: shown.append((label, knows)))
    assert not guide.after_segment("small", "Built-in Small", description, [], samples[0])
    assert guide.after_segment("small", "Built-in Small", description, [], own)
    assert shown == [("Built-in Small", "recognises ellipses, rectangles, triangles and stars, by shape.")]
    assert not guide.after_segment("small", "Built-in Small", description, [], own)  # once per session
    guide.dismissed(never_again=False)
    assert settings.show_first_run_notice
    next_session = FirstRunGuide(settings, samples, lambda label, knows: shown.append((label, knows)))
    assert next_session.after_segment("large", "Built-in Large", description, [], own)
    next_session.dismissed(never_again=True)
    assert not settings.show_first_run_notice
    third = FirstRunGuide(settings, samples, lambda label, knows: shown.append((label, knows)))
    assert not third.after_segment("small", "Built-in Small", description, [], own) and len(shown) == 2
    assert not third.after_segment(str(tmp_path / "mine.safetensors"), "mine", "", [], own)


def test_what_the_model_knows_comes_from_its_description_or_its_classes():
    assert knows_text("Demo model: recognises stars. More.", []) == "recognises stars."
    assert knows_text("no description", ["background", "cell", "nucleus"]) == "recognises only cell, nucleus."
