"""Pausing Python's cyclic garbage collector around bulk decoding, safely across threads.

Decoded records are plain containers without cycles; every collection that runs while thousands of them are
being created walks them for nothing (and a full collection walks the whole process's heap while holding the
GIL, which is what made the viewer's keys stall during its marker scan). :func:`gc_paused` switches the
collector off for the duration and back on when the last pause ends, and only if it was on when the first began:
a program that turned the collector off itself keeps it off.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from typing import Iterator

__all__ = ["gc_paused"]

_lock = threading.Lock()
_depth = 0
_resume = False  # whether the collector was on when the outermost pause began


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Run the body with the cyclic collector off (nestable, thread-safe). Reference counting still frees
    everything that is not in a cycle, so memory does not pile up; cyclic garbage made meanwhile is collected
    after."""
    global _depth, _resume
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _resume:
                gc.enable()
