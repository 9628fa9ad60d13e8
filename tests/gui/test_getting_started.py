"""Help > Getting Started: the README's walkthrough, bundled, with the shortcuts."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QKeySequence

from gui.dialogs.getting_started import GettingStartedDialog, readme_section, walkthrough_markdown
from tests.gui.test_help_shortcuts import table_rows

ROOT = Path(__file__).resolve().parents[2]


def test_the_bundled_walkthrough_is_the_readme_section():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert walkthrough_markdown() == readme_section(readme), \
        "copy README's 'Five-minute walkthrough' section into resources/docs/getting_started.md"


def test_dialog_shows_the_walkthrough_and_the_shortcuts(qtbot):
    dialog = GettingStartedDialog([("Segment", "Ctrl+R"), ("Brush", "B"), ("No keys", "")])
    qtbot.addWidget(dialog)
    assert not dialog.isModal()
    text = dialog.browser.toPlainText()
    assert "Five-minute walkthrough" in text and "Open Sample" in text and "Train on Annotated Images" in text
    assert "Keyboard shortcuts" in text and "Ctrl+R" in text and "Alt+click" in text and "No keys" not in text
    assert "Load Weights" in text  # the way to the user's own images


def test_getting_started_table_has_f1s_columns_and_follows_new_keys(qtbot, window):
    window.commands.getting_started.trigger()
    markdown = window.help_dialog.browser.toMarkdown()
    rows = table_rows(markdown)
    assert ("Keys", "Action") in rows and ("Ctrl+R or F5", "Segment") in rows
    window.help_dialog.close()
    window.commands.segment.setShortcuts([QKeySequence("Ctrl+Shift+R")])
    window.commands.getting_started.trigger()  # reopened: the keys that work now
    assert ("Ctrl+Shift+R", "Segment") in table_rows(window.help_dialog.browser.toMarkdown())
