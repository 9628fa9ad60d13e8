"""Work-arounds for defects of the Qt binding, applied once when ``gui`` is imported.

PySide6 6.12 (abi3 wheels) returns None from every void Qt method without taking a
reference to it.  On CPython 3.12+ None is immortal and nothing happens; on 3.10/3.11 each
call (``update()``, ``setValue()``, ``setPos()``...) leaves None one reference short, and
after a few thousand calls CPython aborts with "Fatal Python error: none_dealloc".  Painting
a few strokes is enough.  Giving None a reference count that cannot run out makes it
effectively immortal there too, which is what the binding assumes.
"""

from __future__ import annotations

import sys

_NONE_RESERVE = 1 << 48


def make_none_immortal() -> bool:
    """Top up None's reference count on CPython < 3.12; True if it did."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    import ctypes

    refcount = ctypes.c_ssize_t.from_address(id(None))  # ob_refcnt: PyObject's first field
    if refcount.value < _NONE_RESERVE // 2:
        refcount.value += _NONE_RESERVE
    return True
