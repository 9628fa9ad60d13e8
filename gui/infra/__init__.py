"""Infrastructure the views and controllers share: settings, workers, errors, icons.

Modules here may import ``core`` and Qt, never the window, panels or controllers.
"""
