"""Whole-episode scans that run in thread workers: the marker index and text search.

Each scan opens its own :class:`trajrec.recorder.Episode`: a reader keeps one file handle and an LRU of decoded
frames, neither safe to share with the UI thread's reader. Scans walk the file frame by frame, so they hold
at most the reader's frame cache (8 frames) whatever the episode's length.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Iterator, Mapping

from trajrec.recorder import Episode, TrajrecError, open_episode
from trajrec.replay.render import value_text

from .markers import marker_code

Cancelled = Callable[[], bool]


def check_verdicts(ep: Episode) -> dict[int, tuple[bool, bool]]:
    """Per step with checks: (some check failed, some check passed), from the episode's index alone."""
    out: dict[int, tuple[bool, bool]] = {}
    for check in ep.checks:
        if isinstance(check.target, int):
            failed, passed = out.get(check.target, (False, False))
            out[check.target] = (failed or check.passed is False, passed or check.passed is True)
    return out


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


def scan_markers(path: str, *, cancelled: Cancelled, batch_seconds: float = 0.1,
                 on_damage: Callable[[int, int, str], None] | None = None,
                 between_frames: Callable[[], None] | None = None,
                 frames: tuple[int, int] | None = None) -> Iterator[tuple[int, bytes]]:
    """Yield ``(first_step, kind_codes)`` batches covering every step in order (one byte per step).

    A batch is cut every ``batch_seconds`` so the UI gets a bounded rate of messages. The steps of a frame
    that cannot be decoded get :data:`UNREADABLE` and ``on_damage(first, last, error)`` is called; the scan
    goes on with the next frame. ``between_frames()`` is called after each frame (~1,000 steps, a few ms): the
    viewer's waits there while a key is being answered, so the scan does not hold the GIL the UI thread needs.
    ``frames``: only frames ``a`` to ``b - 1`` (their steps, in order); the default is every frame.
    """
    with open_episode(path) as ep:
        verdicts = check_verdicts(ep)
        get_verdict = verdicts.get
        plain = _plain_codes()
        lo, hi = frames if frames is not None else (0, ep.frame_count)
        start = ep.frame_span(lo)[0] if lo < hi else 0
        codes = bytearray()
        last = time.monotonic()
        # Frame by frame, outside the reader's cache: each frame's records die as the walk passes them, so the
        # cyclic collector has nothing to walk (it used to triple the scan's time and, in full collections of
        # the app's heap, stall the UI thread's keys for 100+ ms).
        for fi in range(lo, hi):
            first, count = ep.frame_span(fi)
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
                    if get("failure") or get("retry_of") is not None or get("recovers") or get("checks"):
                        codes.append(marker_code(record_kind(rec, verdict), retry=get("retry_of") is not None,
                                                 checked=verdict is not None or bool(get("checks"))))
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
        if codes:
            yield start, bytes(codes)


#: Episodes of at least this many steps are scanned by worker processes (:func:`scan_markers_in_processes`):
#: starting one costs ~0.4 s (an interpreter and trajrec's imports), a thread scans ~150,000 steps a second.
PROCESS_SCAN_STEPS = 200_000


def _frames_codes(path: str, lo: int, hi: int) -> tuple[bytes, list[tuple[int, int, str]]]:
    """In a worker process: the marker codes of frames ``lo`` to ``hi - 1`` and the damaged step ranges."""
    damage: list[tuple[int, int, str]] = []
    codes = b"".join(c for _, c in scan_markers(path, cancelled=lambda: False, batch_seconds=1e9, frames=(lo, hi),
                                                on_damage=lambda a, b, e: damage.append((a, b, e))))
    return codes, damage


def _quiet_worker() -> None:
    # A worker process shares the viewer's terminal: anything it printed (a warning about a damaged index, say)
    # would land in the middle of the screen. Its output goes nowhere; what it found comes back as values.
    import warnings

    warnings.simplefilter("ignore")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)


def scan_markers_in_processes(path: str, *, cancelled: Cancelled, workers: int = 2, pieces_per_worker: int = 8,
                              on_damage: Callable[[int, int, str], None] | None = None
                              ) -> Iterator[tuple[int, bytes]]:
    """:func:`scan_markers` split across ``workers`` processes (so it neither waits for the GIL nor takes it
    from the UI thread): the frames are cut into ``workers * pieces_per_worker`` pieces, scanned in parallel and
    yielded in order as they complete, with the same codes and damage reports.

    If the processes cannot be started or die, the pieces not scanned yet are scanned here, in this thread.
    Cancelling drops the pieces not started; the ones running finish in their process, unobserved.
    """
    import concurrent.futures as cf
    import multiprocessing

    with open_episode(path) as ep:
        count = ep.frame_count
        size = max(1, -(-count // max(1, workers * pieces_per_worker)))
        pieces = [(lo, min(count, lo + size)) for lo in range(0, count, size)]
        starts = [ep.frame_span(lo)[0] for lo, _hi in pieces]
    try:
        # "spawn": a fresh interpreter, never a fork of the viewer's threads and terminal state.
        pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                      initializer=_quiet_worker)
        futures = [pool.submit(_frames_codes, path, lo, hi) for lo, hi in pieces]
    except (OSError, RuntimeError, ValueError):
        pool, futures = None, []
    try:
        for k, (lo, hi) in enumerate(pieces):
            result = None
            if k < len(futures):
                while result is None:
                    try:
                        result = futures[k].result(timeout=0.05)
                    except cf.TimeoutError:
                        if cancelled():
                            return
                    except Exception:  # noqa: BLE001  (a broken pool: this piece and the rest, here)
                        futures = futures[:k]
                        break
            if result is None:
                damage: list[tuple[int, int, str]] = []
                for start, codes in scan_markers(path, cancelled=cancelled, frames=(lo, hi),
                                                 on_damage=lambda a, b, e: damage.append((a, b, e))):
                    yield start, codes
                if cancelled():
                    return
            else:
                codes, damage = result
                if codes:
                    yield starts[k], codes
            if on_damage is not None:
                for a, b, e in damage:
                    on_damage(a, b, e)
            if cancelled():
                return
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


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
        last = time.monotonic()
        for k in range(1, n + 1):
            i = (start + k * direction) % n
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
