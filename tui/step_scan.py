"""Whole-episode scans that run in thread workers: the marker index and text search.

Each scan opens its own :class:`trajrec.recorder.Episode`: a reader keeps one file handle and an LRU of decoded
frames, neither safe to share with the UI thread's reader. Scans walk the file frame by frame, so they hold
at most the reader's frame cache (8 frames) whatever the episode's length.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator, Mapping

from trajrec.recorder import Episode, TrajrecError, open_episode
from trajrec.recorder.writer import MARK_EXCEPTION, MARK_FAILURE, MARK_RECOVERY, MARK_RETRY
from trajrec.replay.render import check_place, checks_by_target, value_text, verdicts_of

from .markers import marker_code

Cancelled = Callable[[], bool]


def check_verdicts(ep: Episode) -> dict[int, tuple[bool, bool]]:
    """Per step with checks: :func:`verdicts_of` its checks, from the episode's index alone.

    The checks of a step are those shown on it (:func:`trajrec.replay.render.checks_by_target`): a check is
    drawn on the step it targets, wherever the env reported it (``info["checks"]`` on step 3 with ``target: 1``
    marks step 1, as the exports count it), and a check whose target is no step (``"episode"``: the built-in
    envs' terminal check) on the step that reported it, so it marks the last step.
    """
    return {step: verdicts_of(checks) for step, checks in checks_by_target(ep).items()}


class _Target:
    """A raw check record seen as :func:`check_place` reads a check (its ``target``)."""

    __slots__ = ("target",)

    def __init__(self, rec: Mapping[str, Any]) -> None:
        self.target = rec.get("target")


def record_kind(rec: Mapping[str, Any], verdicts: tuple[bool, bool] | None) -> str:
    """:func:`trajrec.replay.render.step_kind` of a raw step record: the marker scan skips building ``Step`` objects
    (5x the work, all of it holding the GIL the UI thread needs)."""
    failure = rec.get("failure")
    if failure:
        return "exception" if failure.get("kind") == "exception" else "failure"
    if rec.get("recovers"):
        return "recovery"
    if rec.get("retry_of") is not None:
        return "retry"
    if verdicts is not None:
        if verdicts[0]:
            return "check_failed"
        if verdicts[1]:
            return "check_passed"
    return "ok"


#: Marker byte of a step whose frame cannot be read (not a kind: no jump ever lands on it).
UNREADABLE = 254


def index_markers(ep: Episode) -> bytes | None:
    """Every step's marker byte from the index alone (its ``step_marks`` and checks), with no step decoded: what
    the decoding scan gives for the same file. None when the index has no marks (files from before they were
    written, files whose index was rebuilt from their frames) or marks that do not fit the episode."""
    marks = ep.index.get("step_marks")
    n = len(ep)
    if not isinstance(marks, list) or len(marks) % 2:
        return None
    verdicts = check_verdicts(ep)
    plain = _plain_codes()
    codes = bytearray((plain[None],)) * n
    for step, verdict in verdicts.items():
        if 0 <= step < n:
            codes[step] = plain[verdict]
    pos = 0
    for k in range(0, len(marks), 2):
        pos += marks[k]
        flags = marks[k + 1]
        if not 0 <= pos < n or type(flags) is not int:
            return None
        if flags & MARK_EXCEPTION:
            kind = "exception"
        elif flags & MARK_FAILURE:
            kind = "failure"
        elif flags & MARK_RECOVERY:
            kind = "recovery"
        elif flags & MARK_RETRY:
            kind = "retry"
        else:
            return None
        codes[pos] = marker_code(kind, retry=bool(flags & MARK_RETRY), checked=pos in verdicts)
    return bytes(codes)


def scan_markers(path: str, *, cancelled: Cancelled, batch_seconds: float = 0.1,
                 on_damage: Callable[[int, int, str], None] | None = None,
                 between_frames: Callable[[], None] | None = None, use_index: bool = True
                 ) -> Iterator[tuple[int, bytes]]:
    """Yield ``(first_step, kind_codes)`` batches covering every step in order (one byte per step).

    A batch is cut every ``batch_seconds`` so the UI gets a bounded rate of messages. The steps of a frame
    that cannot be decoded get :data:`UNREADABLE` and ``on_damage(first, last, error)`` is called; the scan
    goes on with the next frame. Steps an earlier ``fsck --repair`` recorded as lost get :data:`UNREADABLE` at
    their own step numbers (no ``on_damage``: the file says so itself), so every later marker stays at its step. When the index has the steps' marks (:func:`index_markers`; ``use_index``), the
    first batch holds every step and the walk only looks for damage. ``between_frames()`` is called after each frame (~1,000 steps, a few ms): the
    viewer's waits there while a key is being answered, so the scan does not hold the GIL the UI thread needs.
    """
    with open_episode(path) as ep:
        fast = index_markers(ep) if use_index and ep.complete else None
        if fast is not None:
            # Every marker at once from the index; the walk below then only looks for damage (a frame that
            # cannot be decoded gets UNREADABLE markers, as in the decoding scan).
            yield 0, fast
            for first, count in ep.lost:  # steps fsck --repair recorded as lost: no frame of the reader holds them
                yield first, bytes((UNREADABLE,)) * ((len(ep) if count is None else first + count) - first)
            for fi in range(ep.frame_count):
                first, count = ep.frame_span(fi)
                try:
                    ep.frame_records(fi)
                except TrajrecError as exc:
                    if on_damage is not None:
                        on_damage(first, first + count - 1, str(exc))
                    yield first, bytes((UNREADABLE,)) * count
                if cancelled():
                    return
                if between_frames is not None:
                    between_frames()
            return
        verdicts = check_verdicts(ep)
        get_verdict = verdicts.get
        n = len(ep)
        plain = _plain_codes()
        start = 0
        codes = bytearray()
        last = time.monotonic()
        # Frame by frame, outside the reader's cache: each frame's records die as the walk passes them, so the
        # cyclic collector has nothing to walk (it used to triple the scan's time and, in full collections of
        # the app's heap, stall the UI thread's keys for 100+ ms).
        for fi in range(ep.frame_count):
            first, count = ep.frame_span(fi)
            if first > start + len(codes):  # steps recorded as lost before this frame: marked at their numbers
                codes.extend(bytes((UNREADABLE,)) * (first - start - len(codes)))
            try:
                recs = ep.frame_records(fi)
            except TrajrecError as exc:
                codes.extend(bytes((UNREADABLE,)) * count)
                if on_damage is not None:
                    on_damage(first, first + count - 1, str(exc))
            else:
                for i, rec in enumerate(recs, first):
                    get = rec.get
                    verdict = get_verdict(i)
                    own = get("checks")
                    if own:  # a file whose index does not list its steps' own checks: the record has them
                        # (those that target another step are drawn there, from the index's step_checks)
                        own = [c for c in own if isinstance(c, dict) and check_place(_Target(c), i, n) == i] \
                            if isinstance(own, list) else []
                        mine = verdicts_of(own)
                        if own:
                            verdict = mine if verdict is None else (verdict[0] or mine[0], verdict[1] or mine[1])
                    if get("failure") or get("retry_of") is not None or get("recovers") or own:
                        codes.append(marker_code(record_kind(rec, verdict), retry=get("retry_of") is not None,
                                                 checked=verdict is not None or bool(own)))
                    else:  # most steps: no marker field, drawn by the index's checks if any
                        codes.append(plain[verdict])
                del recs
            if cancelled():
                return
            if between_frames is not None:
                between_frames()
            now = time.monotonic()
            if now - last >= batch_seconds:
                yield start, bytes(codes)
                start += len(codes)
                codes.clear()
                last = now
        if start + len(codes) < len(ep):  # lost steps after the last readable frame
            codes.extend(bytes((UNREADABLE,)) * (len(ep) - start - len(codes)))
        if codes:
            yield start, bytes(codes)


def _plain_codes() -> dict[tuple[bool, bool] | None, int]:
    """The marker byte of a step without failure, retry, recovery or checks of its own, by its verdicts from the
    index (what :func:`record_kind` and ``marker_code`` give such a step)."""
    return {v: marker_code(record_kind({}, v), checked=v is not None)
            for v in (None, (False, False), (True, False), (False, True), (True, True))}


def searchable(value: object) -> str:
    """The text a search looks in: what the detail pane shows for ``value``, lower-cased."""
    if value is None:
        return ""
    return (value if isinstance(value, str) else value_text(value)).lower()


def find_text(path: str, query: str, start: int, *, direction: int = 1, cancelled: Cancelled,
              progress: Callable[[int, int], None] | None = None) -> tuple[int | None, bool]:
    """The first step after ``start`` (before it when ``direction`` is -1) whose action, observation or note
    contains ``query`` (any case), wrapping around the ends once.

    Returns ``(step or None, wrapped)``; None as well when cancelled. ``progress(done, total)`` is called
    about ten times a second.
    """
    needle = query.lower()
    with open_episode(path) as ep:
        n = len(ep)
        lost = bool(ep.lost)
        last = time.monotonic()
        for k in range(1, n + 1):
            i = (start + k * direction) % n
            if lost and ep.is_lost(i):  # steps fsck --repair recorded as lost: nothing to search
                continue
            rec = ep.record(i)
            if (needle in searchable(rec.get("action")) or needle in searchable(rec.get("observation"))
                    or needle in searchable(rec.get("note"))):
                return i, (i <= start) if direction > 0 else (i >= start)
            if k & 255 == 0:
                if cancelled():
                    return None, False
                now = time.monotonic()
                if progress is not None and now - last >= 0.1:
                    progress(k, n)
                    last = now
    return None, False
