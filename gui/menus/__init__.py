"""Every command as a QAction, and where each appears (menu bar, tool bar, Model menu).

May import ``core``, ``gui.state`` and ``gui.infra``; the wiring of actions is elsewhere.
"""
