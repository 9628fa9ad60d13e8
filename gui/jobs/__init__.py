"""Work that runs off the GUI thread and reports back through queued signals: loading a
model, segmenting (one image or a list), training.

May import ``core``, ``gui.state`` and ``gui.infra``; controllers start these jobs and decide
what the user is told.
"""
