"""The app's flows: opening, saving and exporting, segmenting, loading models, training,
autosave and recovery, class commands.

A controller receives what it needs (the app state, the image store, the settings, a parent
widget for dialogs, and the actions or widgets it drives) and never the main window; it
never imports another controller or the window.  May import ``core``, ``gui.state``,
``gui.infra`` and ``gui.dialogs``.
"""
