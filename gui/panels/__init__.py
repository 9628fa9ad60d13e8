"""Docks and the status bar: the class list, the file list, the status panel.

Each panel observes state (``gui.state``) and emits requests as signals; may import ``core``,
``gui.state`` and ``gui.infra``, never controllers or the window.
"""
