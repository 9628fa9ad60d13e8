"""The warm heap outlives a call for a while (the app's next call finds it warm), then goes back."""

from __future__ import annotations

import time

import pytest

import core.model.optimize as optimize

pytestmark = pytest.mark.skipif(optimize._LIBC is None, reason="glibc only")


def test_heap_stays_warm_between_calls_and_is_released_when_idle():
    optimize.release_heap()
    assert not optimize.heap_is_warm()
    with optimize.reuse_freed_memory(idle_release_s=0.3):
        assert optimize.heap_is_warm()
    assert optimize.heap_is_warm()  # the next call within 0.3 s reuses it
    with optimize.reuse_freed_memory(idle_release_s=0.3):
        time.sleep(0.5)  # a timer from the first block must not release it under a running call
        assert optimize.heap_is_warm()
    deadline = time.monotonic() + 5
    while optimize.heap_is_warm() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not optimize.heap_is_warm()


def test_release_heap_waits_for_running_calls():
    with optimize.reuse_freed_memory():
        optimize.release_heap()
        assert optimize.heap_is_warm()
    optimize.release_heap()
    assert not optimize.heap_is_warm()
