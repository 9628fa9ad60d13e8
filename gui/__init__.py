"""The Qt desktop app: a thin view over ``core`` (see gui.main_window)."""

from gui.compat import make_none_immortal

make_none_immortal()
