"""Running background training on a thread of its own, with its own torch thread count.

``torch.set_num_threads`` is not process-wide the way it looks: with the OpenMP backend it sets
the calling thread's OpenMP thread count *and* a process default that every thread picks up
the first time it runs a parallel operation.  Threads already past that point keep their own
count.  So a trainer that calls it on a worker leaves every later new thread (the app's preview
and segmentation jobs each run on a new thread) with the trainer's count, and one that calls it
on the caller's thread changes the caller for good (tests/core/test_training_threads.py shows
both).

(A thread takes the process default at its first parallel operation even when it called
``set_num_threads`` before, so the count must be taken up, by ``get_num_threads``, before the
default is set back.)

``run_in_own_thread`` gives training a fresh thread: there it sets the thread count (and, on
Linux, a lower scheduling priority, so the window and the preview, at normal priority, get a
core first when they need one), then sets the process default back from a throwaway thread,
which leaves the training thread's own count as it is.  The caller's thread and every thread
started later keep the count they would have had.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Callable, TypeVar

T = TypeVar("T")
_default_lock = threading.Lock()


def process_default_threads() -> int:
    """The torch thread count a newly started thread gets."""
    import torch

    found: list[int] = []
    probe = threading.Thread(target=lambda: found.append(torch.get_num_threads()), name="unetseg-threads-probe")
    probe.start()
    probe.join()
    return found[0]


def _set_process_default(count: int) -> None:
    """Set the count new threads start with, from a throwaway thread (whose own count dies with it)."""
    import torch

    setter = threading.Thread(target=torch.set_num_threads, args=(count,), name="unetseg-threads-default")
    setter.start()
    setter.join()


def lower_priority(nice: int) -> bool:
    """Make the calling thread ``nice`` steps less urgent (Linux: priority is per thread there;
    elsewhere it would be the whole process, so nothing is done).  Threads it starts inherit it,
    so the process's shared ones are started first, at the caller's priority (``start_shared_threads``)."""
    if nice <= 0 or not sys.platform.startswith("linux"):
        return False
    start_shared_threads()
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
        return True
    except (OSError, AttributeError):
        return False


def start_shared_threads() -> None:
    """Start the threads that live as long as the process and are made by their first user: zarr's
    I/O loop and its workers.  Made from a less urgent thread, they would stay less urgent and run
    every later read of a slide or an OME-Zarr in the window at that priority."""
    try:
        import zarr

        probe = zarr.create_array(store={}, shape=(2,), chunks=(1,), dtype="u1")
        probe[:] = 1
        probe[:]  # noqa: B018 - a read, so that the loop's reading workers exist too
    except Exception:  # noqa: BLE001 - no zarr, or another version's API: nothing is shared then
        pass


def run_in_own_thread(work: Callable[[threading.Event], T], threads: int, nice: int = 0,
                      name: str = "unetseg-training") -> T:
    """``work(interrupted)`` on a new thread using ``threads`` torch threads (at ``nice`` lower
    priority); returns its result or raises its exception.  Ctrl+C while the caller waits (the
    command line) sets ``interrupted`` for ``work`` to end early, waits for it and is raised."""
    import torch

    outcome: dict[str, object] = {}
    interrupt, done = threading.Event(), threading.Event()

    def body() -> None:
        try:
            with _default_lock:  # one trainer at a time changes and restores the default
                before = process_default_threads()
                torch.set_num_threads(max(1, threads))  # this thread's count (and, for now, the default)
                # a thread takes the process default at its first parallel operation, even after
                # set_num_threads: make that happen now, while the default is still ours
                torch.get_num_threads()
                _set_process_default(before)
            lower_priority(nice)
            outcome["result"] = work(interrupt)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, who raises it
            outcome["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=body, name=name, daemon=True)
    worker.start()
    try:
        while not done.wait(0.2):  # timed waits: Ctrl+C reaches the caller on every platform
            pass
    except KeyboardInterrupt:
        interrupt.set()
        worker.join()
        raise
    worker.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["result"]  # type: ignore[return-value]

