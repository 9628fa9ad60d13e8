"""When the first-run notice is offered, and remembering "Don't show again".

Why here and not in the notice: the rule (a built-in demo model, an image that is not one of
its samples, once per session, never after "Don't show again") is the app's, and is tested
without widgets.  The window shows the notice when ``show`` is called and reports its
dismissal back to ``dismissed``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Sequence

from core.resources import BUILTIN_MODELS

DEMO_PREFIX = "Demo model: "


def should_show_notice(model_is_demo: bool, image: Path | None, samples: Iterable[Path],
                       dont_show_again: bool, shown_this_session: bool) -> bool:
    """Show once per session, for a demo model on an image that is not one of its samples,
    unless the user said "Don't show again"."""
    if not model_is_demo or image is None or dont_show_again or shown_this_session:
        return False
    try:
        target = Path(image).resolve()
        return all(Path(s).resolve() != target for s in samples)
    except OSError:
        return True


def knows_text(description: str, class_names: Sequence[str]) -> str:
    """What the model knows, in one sentence: the description's "recognises ..." clause, else
    its class list."""
    if description.startswith(DEMO_PREFIX):
        return description[len(DEMO_PREFIX):].split(". ")[0].rstrip(".") + "."
    names = [n for n in class_names[1:] if n]
    return f"recognises only {', '.join(names)}." if names else "recognises only the classes it was trained on."


class FirstRunGuide:
    """Decides after each single-image segmentation; ``settings.show_first_run_notice`` is the
    persisted opposite of "Don't show again"."""

    def __init__(self, settings, samples: Sequence[Path], show: Callable[[str, str], None]):
        self._settings, self._samples, self._show = settings, list(samples), show
        self.shown_this_session = False

    def after_segment(self, model_spec: str, label: str, description: str, class_names: Sequence[str],
                      image: Path | None) -> bool:
        """Call when ``model_spec`` has segmented ``image``; True when the notice was shown."""
        if not should_show_notice(model_spec in BUILTIN_MODELS, image, self._samples,
                                  not self._settings.show_first_run_notice, self.shown_this_session):
            return False
        self.shown_this_session = True
        self._show(label, knows_text(description, class_names))
        return True

    def dismissed(self, never_again: bool) -> None:
        if never_again:
            self._settings.show_first_run_notice = False
