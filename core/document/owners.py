"""Which process owns a file it left behind, and whether that process still runs.

Why: a window's session lock, a save's journal, a save's hidden swap names and a mask's scratch
folder all outlive a killed process.  Whoever finds one may clean it up only when its owner is
gone; a second window (or the CLI) must never delete what a running process is writing.  An owner
is written as a tag ``<pid>.<start>`` (the start token tells a reused pid from the original; off
Linux it is ``x``) into names or files, and ``tag_alive`` answers for it.
"""

from __future__ import annotations

import os

__all__ = ["process_alive", "process_start_token", "owner_tag", "parse_tag", "tag_alive"]


def process_start_token(pid: int) -> str | None:
    """Something that changes when ``pid`` is reused (Linux: the start time); None elsewhere."""
    stat = _linux_stat(pid)
    return stat[1] if stat else None


def process_alive(pid: int, start_token: str | None = None) -> bool:
    """Is ``pid`` a running (not zombie) process, the same one that wrote ``start_token``?"""
    if not isinstance(pid, int) or pid <= 0:
        return False
    if os.name == "nt":
        alive = _windows_alive(pid)  # os.kill(pid, 0) would terminate it on Windows
    else:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            alive = True  # someone else's process: it exists
        except OSError:
            return False
        else:
            alive = True
        stat = _linux_stat(pid)
        if stat is not None and stat[0] in ("Z", "X"):
            return False  # killed, waiting to be reaped
    if alive and start_token is not None:
        now = process_start_token(pid)
        if now is not None and now != start_token:
            return False  # the pid was reused by a newer process
    return alive


def owner_tag(pid: int | None = None) -> str:
    """``<pid>.<start token>`` of this process (or ``pid``): safe in a file name (digits, a dot, x)."""
    pid = os.getpid() if pid is None else int(pid)
    return f"{pid}.{process_start_token(pid) or 'x'}"


def parse_tag(tag: str) -> tuple[int, str | None] | None:
    """(pid, start token or None) of an ``owner_tag``; a bare pid (older names) is accepted; None
    when ``tag`` is not one."""
    pid, _, start = tag.partition(".")
    if not pid.isdigit() or (start and start != "x" and not start.isdigit()):
        return None
    return int(pid), (start if start and start != "x" else None)


def tag_alive(tag: str) -> bool:
    """Does the process a tag names still run?  An unreadable tag counts as alive: what nobody can
    name an owner for is left alone."""
    parsed = parse_tag(tag)
    return True if parsed is None else process_alive(*parsed)


def _linux_stat(pid: int) -> tuple[str, str] | None:
    """(state letter, start time in clock ticks) from /proc, or None off Linux."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], fields[19]
    except (OSError, IndexError):
        return None


def _windows_alive(pid: int) -> bool:
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    kernel32.OpenProcess.restype = ctypes.c_void_p
    kernel32.OpenProcess.argtypes = (ctypes.c_ulong, ctypes.c_int, ctypes.c_ulong)
    kernel32.GetExitCodeProcess.argtypes = (ctypes.c_void_p, ctypes.POINTER(ctypes.c_ulong))
    kernel32.CloseHandle.argtypes = (ctypes.c_void_p,)
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return ctypes.get_last_error() == 5  # ERROR_ACCESS_DENIED: it exists, it is not ours
    try:
        code = ctypes.c_ulong()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True
        return code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)
