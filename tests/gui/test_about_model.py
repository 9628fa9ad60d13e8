"""About This Model: the same facts as `unetseg info`, laid out for people."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication

from core.model.checkpoints import load_checkpoint
from core.model.info import model_info, render_text
from core.resources import builtin_model_path
from gui.dialogs.about_model import AboutModelDialog


@pytest.fixture(scope="module")
def small_info():
    return model_info(load_checkpoint(builtin_model_path("small")), "small", device="cpu")


def test_about_shows_classes_architecture_training_calibration_quality_and_device(qtbot, small_info):
    dialog = AboutModelDialog(small_info)
    qtbot.addWidget(dialog)
    assert not dialog.isModal() and dialog.windowTitle() == "About This Model: small"
    text = dialog.browser.toPlainText()
    assert "demo, synthetic shapes" in text and "never on photographs" in text
    for name in ("background", "ellipse", "rectangle", "triangle", "star"):
        assert name in text
    html = dialog.browser.toHtml()
    assert "#4287f5" in html and "#eb3cc8" in html  # the colour swatches
    assert "UNetSmall, 3 input channels, 5 classes" in text and "63,513" in text
    assert "5,400 for training, 600 for validation" in text and "2.5 min on cuda:0" in text
    assert "batch = 128" in text and "patch = 192" in text and "Fine-tuned from" in text
    assert "0.8444" in text and "0.7855 → 0.8444 on 300 images" in text  # calibration table and verdict
    assert "0.854" in text and "0.725" in text  # quality figures
    assert "device" in text and "cpu" in text
    assert "{" not in text  # no raw JSON


def test_copy_as_text_gives_the_unetseg_info_text(qtbot, small_info):
    dialog = AboutModelDialog(small_info)
    qtbot.addWidget(dialog)
    dialog.copy_button.click()
    assert QApplication.clipboard().text() == render_text(small_info)


def test_a_model_without_a_description_says_so(qtbot, small_weights):
    dialog = AboutModelDialog(model_info(load_checkpoint(small_weights), "small5"))
    qtbot.addWidget(dialog)
    text = dialog.browser.toPlainText()
    assert "no description" in text and "carries no description" in text and "Training" not in text
