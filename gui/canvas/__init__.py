"""The image view: zoom, pan, the image and mask layers, the edit tools and cursor items.

May import ``core``, ``gui.state`` and ``gui.infra``; observes the app state it is given.
"""
