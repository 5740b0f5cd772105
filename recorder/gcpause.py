"""Pausing Python's cyclic garbage collector around bulk decoding, safely across threads.

Decoded records are plain containers without cycles; every collection that runs while thousands of them are
being created walks them for nothing (and a full collection walks the whole process's heap while holding the
GIL, which is what made the viewer's keys stall during its marker scan). :func:`gc_paused` switches the
collector off for the duration and back on when the last pause ends, and only if it was on when the first began:
a program that turned the collector off itself keeps it off.

Pausing alone moves the cost rather than removing it: the collector counts the containers made meanwhile, and
the first allocation after the pause starts a young collection that walks all of them (a frame of ~1,000 tool-env
steps is ~15,000 containers: about 1 µs a step, a quarter of decoding them). ``gc_paused(promote=True)`` hands
them to the oldest generation instead, without walking them (:func:`promote_young`).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from typing import Iterator

__all__ = ["gc_paused", "promote_young"]

_lock = threading.Lock()
_depth = 0
_resume = False  # whether the collector was on when the outermost pause began
_promote = False  # whether a pause asked for the young containers to be promoted when the last one ends
_HAS_FREEZE = hasattr(gc, "freeze") and hasattr(gc, "unfreeze") and hasattr(gc, "get_freeze_count")


def promote_young() -> bool:
    """Move every container of the young generations to the oldest one without walking them, and reset the
    count that starts the next young collection. Returns whether it did.

    ``gc.freeze()`` then ``gc.unfreeze()``, back to back: both only splice the collector's lists (O(1)). Nothing
    stays frozen, and nothing is freed or kept that would not be otherwise: the promoted containers are freed by
    reference counting as usual, and a cycle among them is found by the next full collection instead of a young
    one. Skipped (False) when the program froze objects itself (``gc.get_freeze_count() > 0``), so a pre-fork
    freeze is never undone, and on an interpreter without ``gc.freeze``.
    """
    if not _HAS_FREEZE or gc.get_freeze_count():
        return False
    gc.freeze()
    gc.unfreeze()
    return True


@contextlib.contextmanager
def gc_paused(*, promote: bool = False) -> Iterator[None]:
    """Run the body with the cyclic collector off (nestable, thread-safe). Reference counting still frees
    everything that is not in a cycle, so memory does not pile up; cyclic garbage made meanwhile is collected
    after.

    ``promote`` (honored on the outermost pause): collect the young generation when the pause begins, and when
    it ends promote the containers made meanwhile (:func:`promote_young`) instead of leaving them to the next
    young collection to walk; for bodies that make many acyclic containers the caller keeps for a while (a
    decoded frame that a walk hands out record by record). Other threads' containers made during the pause are
    promoted with them: their cycles, if any, wait for the next full collection.
    """
    global _depth, _resume, _promote
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            _promote = promote and _resume and _HAS_FREEZE and not gc.get_freeze_count()
            if _promote:
                # Collect the young generation first (a few hundred containers at most: microseconds), so that
                # what is promoted at the end is what was made during the pause, not the caller's young garbage.
                gc.collect(0)
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                if _promote:
                    promote_young()
                    _promote = False
                if _resume:
                    gc.enable()
