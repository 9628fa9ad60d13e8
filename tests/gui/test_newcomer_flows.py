"""What a newcomer meets: models that say what they are, About This Model, the first-run notice
for demo models, recent weights, Help > Getting Started, and outlines of a chosen width."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from core.resources import sample_images
from tests.gui.helpers import FakeSegmenter, view_pos, write_image

from tests.gui.conftest import new_window  # noqa: E402

MODEL_TIMEOUT = 60_000


def close(win, dialogs):
    dialogs.answers["ask_save_discard_cancel"] = "discard"
    win.close()


def segment(qtbot, win):
    with qtbot.waitSignal(win.segmentation_finished, timeout=10_000):
        win.commands.segment.trigger()


def test_the_model_menu_says_what_each_model_is(window):
    texts = {name: a.text() for name, a in window.seg.menu.model_actions.items()}
    assert texts == {"small": "Built-in &Small: demo, synthetic shapes", "large": "Built-in &Large: demo, synthetic shapes"}
    about = window.findChild(type(window.commands.segment), "action_about_model")
    assert about in window.menus.model.actions()


def test_about_this_model_shows_the_loaded_model(qtbot, window, checkpoint):
    with qtbot.waitSignal(window.model_ready, timeout=MODEL_TIMEOUT):
        window.load_model("small")
    window.commands.about_model.trigger()
    dialog = window.seg.about_dialog
    assert dialog is not None and dialog.isVisible() and not dialog.isModal()
    text = dialog.browser.toPlainText()
    assert "Built-in Small" in text and "demo, synthetic shapes" in text and "star" in text
    assert "UNetSmall" in text and "0.8444" in text and "0.854" in text and "cpu" in text
    with qtbot.waitSignal(window.model_ready, timeout=MODEL_TIMEOUT):
        window.load_model(str(checkpoint))
    window.commands.about_model.trigger()
    text = window.seg.about_dialog.browser.toPlainText()
    assert "tiny.safetensors" in text and "carries no description" in text and "debris" in text


def test_first_run_notice_appears_once_and_stays_away_after_dont_show_again(qtbot, dialogs, tmp_path):
    photo = write_image(tmp_path / "portrait.png", 48, 64)
    other = write_image(tmp_path / "holiday.png", 40, 40, seed=2)
    first = new_window(qtbot)
    notice = first.first_run_notice
    first.seg.models.set_segmenter(FakeSegmenter(), spec="small")
    first.open_images([sample_images()[0]])
    segment(qtbot, first)
    assert not notice.isVisible()  # a sample: the demo model is doing what it was made for
    first.open_images([photo])
    segment(qtbot, first)
    assert notice.isVisible() and "demo model" in notice.title.text() and "Built-in Small" in notice.title.text()
    assert first.canvas.isVisible()  # in the window, not a dialog; nothing is blocked
    notice.close_button.click()
    first.open_images([other])
    segment(qtbot, first)
    assert not notice.isVisible()  # once per session
    close(first, dialogs)

    second = new_window(qtbot)  # a new session: offered again, until "Don't show again"
    second.seg.models.set_segmenter(FakeSegmenter(), spec="large")
    second.open_images([photo])
    segment(qtbot, second)
    assert second.first_run_notice.isVisible()
    second.first_run_notice.never.setChecked(True)
    second.first_run_notice.close_button.click()
    assert not second.settings.show_first_run_notice
    close(second, dialogs)

    third = new_window(qtbot)
    third.seg.models.set_segmenter(FakeSegmenter(), spec="small")
    third.open_images([photo])
    segment(qtbot, third)
    assert not third.first_run_notice.isVisible()
    close(third, dialogs)


def test_the_notice_opens_the_samples_or_asks_for_weights(qtbot, window, dialogs, tmp_path):
    window.seg.models.set_segmenter(FakeSegmenter(), spec="small")
    window.open_images([write_image(tmp_path / "portrait.png", 48, 64)])
    segment(qtbot, window)
    window.first_run_notice.samples_button.click()
    assert {p.name for p in sample_images()} <= {e.path.name for e in window.store}
    assert not window.first_run_notice.isVisible()
    window.first_run_notice.offer("Built-in Small", "knows shapes.")
    window.first_run_notice.load_button.click()
    assert dialogs.of("ask_weights_path")  # the usual Load Weights dialog


def test_weights_loaded_once_are_in_recent_weights_next_time(qtbot, window, dialogs, checkpoint):
    with qtbot.waitSignal(window.model_ready, timeout=MODEL_TIMEOUT):
        window.load_model(str(checkpoint))
    recent = window.seg.menu.recent.menu
    recent.aboutToShow.emit()
    assert recent.actions()[0].text() == "&1 tiny.safetensors: no description"
    second = new_window(qtbot)
    menu = second.seg.menu.recent.menu
    menu.aboutToShow.emit()
    with qtbot.waitSignal(second.model_ready, timeout=MODEL_TIMEOUT):
        menu.actions()[0].trigger()
    assert second.seg.menu.custom.isChecked() and second.models.spec == str(checkpoint)
    close(second, dialogs)


def test_help_getting_started_shows_the_walkthrough(qtbot, window):
    window.commands.getting_started.trigger()
    dialog = window.help_dialog
    assert dialog.isVisible() and not dialog.isModal()
    text = dialog.browser.toPlainText()
    assert "Five-minute walkthrough" in text and "Ctrl+R" in text and "demos" in text


def band(win, y: float, x0: float, x1: float) -> int:
    """Screen pixels in the class colour along image row ``y`` from ``x0`` to ``x1``."""
    image = win.canvas.viewport().grab().toImage()
    red = win.document.classes[1].color
    a, b = view_pos(win, x0, y), view_pos(win, x1, y)
    return sum((c.red(), c.green(), c.blue()) == red
               for c in (image.pixelColor(x, a.y()) for x in range(a.x(), b.x())))


@pytest.mark.parametrize("zoom", [1.37, 4.0])
def test_outline_width_is_chosen_drawn_in_screen_pixels_and_remembered(qtbot, window, dialogs, tmp_path, zoom):
    window.open_images([write_image(tmp_path / "flat.png", 60, 80)])
    labels = np.zeros(window.document.shape, np.uint8)
    labels[10:40, 20:60] = 1
    window.document.apply_labels(labels)
    window.class_panel.opacity_slider.setValue(100)
    window.canvas.set_scale(zoom)
    window.canvas.centerOn(40, 25)
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_O)
    widths = window.outline_widths.actions
    assert widths[2].isChecked() and band(window, 25.5, 10, 30) == 2  # the default
    widths[4].trigger()
    assert window.state.outline_width == 4 and window.canvas.mask_layer.outline_width == 4
    assert band(window, 25.5, 10, 30) == 4
    second = new_window(qtbot)
    assert second.state.outline_width == 4 and second.outline_widths.actions[4].isChecked()
    close(second, dialogs)
