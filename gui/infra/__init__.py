"""Plumbing the rest of the GUI stands on: worker threads, settings, icons, the error hook.

May import ``core`` and Qt, never another ``gui`` subpackage.
"""
