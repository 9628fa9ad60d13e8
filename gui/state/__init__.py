"""What the user is working on, as evented models (psygnal, like napari's components).

Qt-free: imports only ``core`` and psygnal, so state can be tested and reasoned about without
widgets.  Views and controllers observe these models; nothing pushes refreshes by hand.
"""
