"""Help > Getting Started: the README's five-minute walkthrough inside the app, with the shortcuts.

Why a copy in resources/docs: the standalone app ships without the README; the copy is the
README's section verbatim (a test fails when they drift), so there is one text to maintain.
The shortcuts come from the live actions the caller passes, so they are the ones that work.
"""

from __future__ import annotations

from typing import Sequence

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from core.resources import resource_path
from gui.dialogs.shortcuts_dialog import MOUSE_ROWS

HEADING = "## Five-minute walkthrough"
RESOURCE = ("docs", "getting_started.md")


def readme_section(text: str, heading: str = HEADING) -> str:
    """The section of ``text`` from ``heading`` up to the next heading of the same level."""
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start:end if end >= 0 else len(text)].strip() + "\n"


def walkthrough_markdown() -> str:
    path = resource_path(*RESOURCE)
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return f"{HEADING}\n\nThe walkthrough is missing from this installation ({path}).\n"


def getting_started_markdown(walkthrough: str, shortcuts: Sequence[tuple[str, str]]) -> str:
    """The walkthrough, then a table of the ``(action, keys)`` shortcuts, keys first as in F1's."""
    rows = [(name, keys) for name, keys in shortcuts if keys] + list(MOUSE_ROWS)
    table = "\n".join(f"| {keys} | {name} |" for name, keys in rows)
    return walkthrough.rstrip() + "\n\n## Keyboard shortcuts\n\n| Keys | Action |\n|---|---|\n" + table + "\n"


class GettingStartedDialog(QDialog):
    """Non-modal help page; takes the shortcut rows, never the window."""

    def __init__(self, shortcuts: Sequence[tuple[str, str]], parent: QWidget | None = None,
                 walkthrough: str | None = None):
        super().__init__(parent)
        self.setObjectName("getting_started_dialog")
        self.setWindowTitle("Getting Started")
        self.browser = QTextBrowser()
        self.browser.setObjectName("getting_started_text")
        self._walkthrough = walkthrough if walkthrough is not None else walkthrough_markdown()
        self._shortcuts: list[tuple[str, str]] | None = None
        self.set_shortcuts(shortcuts)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
        self.resize(680, 640)

    def set_shortcuts(self, shortcuts: Sequence[tuple[str, str]]) -> None:
        """Show these ``(action, keys)`` rows (the caller passes them again when the keys change)."""
        shortcuts = list(shortcuts)
        if shortcuts == self._shortcuts:
            return
        self._shortcuts = shortcuts
        scroll = self.browser.verticalScrollBar().value()
        self.browser.setMarkdown(getting_started_markdown(self._walkthrough, shortcuts))
        self.browser.verticalScrollBar().setValue(scroll)
