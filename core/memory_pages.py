"""The C library's memory calls where they exist (glibc on Linux), and nothing elsewhere.

``glibc()``: the C library (ctypes) or None; core.model.optimize tunes its heap with it.
``small_pages(array)``: ask the kernel to back a large, not yet touched array with 4 KB pages.
NumPy asks for 2 MB pages on large arrays; where the kernel has none free it compacts memory on
the first touch, and a new 64 MB plane then took 110-190 ms to fill instead of 8-12 (26-43 ms in
small pages, every time, on this project's machine: bench/stack_gui.py's cold planes).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import platform

import numpy as np

_MADV_NOHUGEPAGE = 15  # <sys/mman.h>
_PAGE = 4096


@functools.lru_cache(maxsize=1)
def glibc():
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return libc


def small_pages(array: np.ndarray) -> np.ndarray:
    """``array``, whose whole pages (those not yet touched) are now to be backed by small pages."""
    libc = glibc()
    if libc is not None and array.nbytes >= 2 * 2**20:
        address = array.__array_interface__["data"][0]
        start, end = -(-address // _PAGE) * _PAGE, (address + array.nbytes) // _PAGE * _PAGE
        if end > start:
            libc.madvise(start, end - start, _MADV_NOHUGEPAGE)  # a hint: a failure changes nothing
    return array
