"""The GUI's name for core.wording (counted nouns, short lists of names), which gui.state may import too."""

from core.wording import counted, some_names

__all__ = ["counted", "some_names"]
