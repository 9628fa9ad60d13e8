"""The Qt desktop app: a thin view over ``core`` (see gui.main_window)."""
