"""Reading episode files: :func:`open_episode` and :class:`Episode`.

The reader holds the frame table and summaries, never the steps: ``ep[i]`` decompresses the one frame that
holds step ``i`` (a small LRU keeps the last few), so any step of a million-step episode is milliseconds away.
Files whose writer died have no index; they are read by scanning their frames once.
"""

from __future__ import annotations

import bisect
import io
import operator
import os
import shlex
import warnings
from collections import OrderedDict
from typing import Any, Iterator, Sequence, overload

from .gcpause import gc_paused
from .errors import EmptyEpisodeError, ResetLostError, StepIndexError, TrajrecFormatError, TrajrecUsageError
from .format import (MAGIC, TAIL_MAGIC, ZSTD_MAGIC, decode_frame, frame_extent, frame_has_checksum, is_skippable,
                     iter_frames, map_file, read_span, read_tail_index, skippable_end)
from .model import WRITE_FAILED, Check, Gap, ResetRecord, Step, SummaryBuilder, gap_order, gaps, lost_steps
from .storage import open_binary
from .validate import check_problem, header_problem, index_problem, reset_problem, step_problem, steps_problem

_FRAME_CACHE = 8
_WHOLE_READ = 4 << 20  # read_records reads files up to this size with one read


class ScanResult(dict):
    """An index rebuilt by scanning a file, plus what the scan found wrong (``damage``) and where it stopped."""


def unverified_steps(index: dict[str, Any]) -> list[tuple[int, int, str]]:
    """The step ranges ``(first, n, why)`` that ``fsck --repair`` salvaged from damaged frames: readable, but no
    checksum vouches for them (the index's ``damaged`` rows marked ``unverified``)."""
    return [(row["first"], row["n"], str(row.get("why") or "")) for row in index.get("damaged") or ()
            if isinstance(row, dict) and row.get("unverified") and isinstance(row.get("first"), int)
            and isinstance(row.get("n"), int) and row["n"] > 0]


def unverified_reset(index: dict[str, Any]) -> str | None:
    """Why the reset record is unverified (``fsck --repair`` salvaged it from a damaged first frame: readable, but
    no checksum vouches for it), or None when it is not.

    The index's ``unverified`` row of a salvaged first frame says so with ``reset: true``. A file repaired before
    rows carried ``reset`` is judged by its layout: a salvage of frame 0 puts the salvaged records at byte 0 and
    the damaged frame's copy right after them, and its ``unverified`` row starts at step 0."""
    rows = [row for row in index.get("damaged") or () if isinstance(row, dict)]
    frames = index.get("frames") or []
    for row in rows:
        if not row.get("unverified"):
            continue
        if row.get("reset") is True:
            return str(row.get("why") or "salvaged from a damaged frame")
        if ("reset" not in row and row.get("first") == 0 and len(frames) > 1 and isinstance(frames[1], list)
                and any(r.get("salvaged") and not r.get("unverified") and r.get("offset") == frames[1][0]
                        for r in rows)):
            return str(row.get("why") or "salvaged from a damaged frame")
    return None


def lost_spans(ep: "Episode") -> str:
    """``"1024..2047, 2500..2999"``: the step ranges of ``ep`` the index declares lost ("" when none)."""
    n = len(ep)
    return ", ".join(f"{f}..{(n if k is None else f + k) - 1}" for f, k in ep.lost)


def header_lost(index: dict[str, Any]) -> dict[str, Any] | None:
    """What the header record's loss to damaged bytes left on record (``why``, the damaged bytes, where the fields
    kept came from: see :func:`trajrec.recorder.format.lost_header`), or None when the header is sound."""
    header = index.get("header")
    lost = header.get("lost") if isinstance(header, dict) else None
    return lost if isinstance(lost, dict) else None


def describe_lost(index: dict[str, Any], path: str = "FILE") -> list[str]:
    """One line per declared lost or unverified range, led by the readable count (empty when there is none); a
    lost header record first (of ``path``, for the advice to repair it)."""
    head = header_lost(index)
    lines = [] if head is None else [f"the header record lost: {head.get('why')}" + (
        f"; run `trajrec fsck --repair {path}` to keep the readable part" if index.get("head_damaged")
        else " (fsck --repair kept the readable records after it)")]
    # The index row that records the header's loss (``header``: no steps in it) is said by the line above.
    rows = [r for r in index.get("damaged") or () if not (isinstance(r, dict) and r.get("header"))]
    return lines + _describe_steps(index, lost_steps({"damaged": rows}))


def _describe_steps(index: dict[str, Any], lost: list[tuple[int, int | None, str]]) -> list[str]:
    unverified = unverified_steps(index)
    reset = unverified_reset(index)
    if not lost and not unverified and reset is None:
        return []
    total = int(index.get("steps", 0))
    readable = total - sum(n or 0 for _f, n, _w in lost)
    doubt = sum(n for _f, n, _w in unverified)
    lines = [f"{readable} readable step{'s' if readable != 1 else ''} of {total} numbered"
             + (f" ({doubt} of them unverified)" if doubt else "") + ": fsck --repair kept every readable frame "
             "and recorded the lost steps (the original file may be kept as FILE.orig)"]
    if reset is not None:
        lines.append(f"the reset record unverified: {reset}")
    for first, n, why in unverified:
        lines.append(f"steps {first}..{first + n - 1} unverified: {why}")
    # A damaged frame every step of which was salvaged: fsck --repair keeps its bytes after the salvaged records,
    # as a row of no steps. Not "a frame holding no steps lost": it held the steps salvaged just above.
    whole = {row.get("first") for row in index.get("damaged") or ()
             if isinstance(row, dict) and row.get("salvaged") and row.get("n") == 0 and not row.get("unverified")}
    for first, n, why in lost:
        if n == 0 and first in whole:
            before = next((f for f, k, _w in unverified if f + k == first), None)
            held = f"steps {before}..{first - 1}" if before is not None else f"the steps before {first}"
            lines.append(f"no step lost from the damaged frame of {held}: every one was salvaged (unverified, "
                         f"above), and the frame's damaged bytes are kept as they were: {why}")
            continue
        span = (f"any steps from {first} on" if n is None else f"steps {first}..{first + n - 1}" if n
                else "a frame holding no steps")
        lines.append(f"{span} lost: {why}")
    return lines


#: The first damage of a file whose writer did not close it (no index frame at its end).
NO_INDEX = "no index frame at the end (the writer did not close the file)"


def scan_file(path: str, fh: Any, *, closed: bool = False) -> ScanResult:
    """Rebuild an episode's index by decoding every frame; tolerate a cut last frame and a cut last record.

    ``closed``: the file ends with an index frame (damaged, or it would not be scanned), so its writer finished:
    no frame may be cut, and a frame that looks cut is damage. Records of a cut frame are never checksum-verified,
    so they are kept only where a crash explains them.
    """
    buf = map_file(fh)
    size = len(buf)
    frames: list[list[int]] = []
    checks: list[dict[str, Any]] = []
    step_checks: list[dict[str, Any]] = []
    summary = SummaryBuilder()
    header: dict[str, Any] | None = None
    damage: list[str] = []
    steps = 0
    ended = False
    has_reset = False
    good_end = 0
    lost: list[dict[str, Any]] = []
    pos = 0
    while True:  # once more after each damaged frame the scan can step over (see _resync)
        try:
            for offset, stop, complete, records, leftover in iter_frames(buf, path, pos):
                if closed and not complete:
                    raise TrajrecFormatError(path, offset, "the zstd frame here is cut short, in a file that was "
                                             "closed (it has an index frame): damaged bytes")
                if header is None:
                    if not records and not complete:
                        raise EmptyEpisodeError(path, f"{size} bytes, no complete header record")
                    if not records or records[0].get("t") != "header":
                        raise TrajrecFormatError(path, offset, "not a trajrec episode: the first record is not a "
                                                 "header (a zstd file of something else?)")
                    problem = header_problem(records[0])
                    if problem:
                        raise TrajrecFormatError(path, offset, f"the header record is malformed: {problem}")
                    if records[0].get("version", 1) >= 2 and not frame_has_checksum(buf, 0):
                        raise TrajrecFormatError(path, 0, "the first zstd frame carries no checksum, which the "
                                                 "header's format version requires (damaged frame header)")
                    header = records[0]
                # Check the whole frame before counting any of it: a frame is kept or dropped as a unit.
                expect = steps
                for rec in records:
                    t = rec.get("t")
                    if t == "step":
                        problem = step_problem(rec, expect)
                        expect += 1
                    elif t == "check":
                        problem = check_problem(rec, "check record")
                    elif t == "reset":
                        problem = reset_problem(rec)
                    else:
                        problem = None
                    if problem:
                        raise TrajrecFormatError(path, offset, f"{problem} (in the frame starting here)")
                first, n = steps, 0
                for rec in records:
                    t = rec.get("t")
                    if t == "step":
                        n += 1
                        steps += 1
                        summary.add_step(rec)
                        for c in rec.get("checks") or ():
                            step_checks.append({**c, "step": rec.get("i")})
                    elif t == "check":
                        check = {k: v for k, v in rec.items() if k != "t"}
                        checks.append(check)
                        summary.add_check(check)
                    elif t == "reset":
                        summary.add_reset(rec)
                        has_reset = True
                    elif t == "end":
                        ended = True
                frames.append([offset, first, n, stop])
                good_end = stop
                if leftover:
                    damage.append(f"a record cut short at the end of the frame at byte {offset} ({leftover} bytes "
                                  "lost)")
                if not complete:
                    damage.append(f"the last zstd frame (at byte {offset}) is not closed: the writer stopped mid-frame")
            break
        except TrajrecFormatError as exc:
            if header is None or not frames:  # the frame holding the header and reset is itself damaged
                raise
            bad = exc.offset if exc.offset is not None else good_end
            resume = _resync(buf, path, max(bad, good_end), steps, bool(header.get("version", 1) >= 2))
            if resume is None:
                damage.append(f"unreadable bytes from byte {bad}: {exc}")
                if not ended:  # after the end record no step can follow: only bytes (a damaged index) were lost
                    lost.append({"first": steps, "n": None, "why": f"unreadable bytes from byte {bad} to the end "
                                 f"({exc})"})
                break
            # Frames after the damage are whole and verified: keep them, and the damaged bytes as a frame row of the
            # steps they held (numbered by the next good frame), declared lost.
            nxt, nfirst = resume
            start = max(bad, good_end)
            frames.append([start, steps, nfirst - steps, nxt])
            lost.append({"first": steps, "n": nfirst - steps, "offset": start, "why": str(exc)})
            damage.append(f"steps {steps}..{nfirst - 1} unreadable (bytes {start}..{nxt}): {exc}")
            steps, pos, good_end = nfirst, nxt, nxt
    if header is None:
        raise TrajrecFormatError(path, 0, "no records found: the file holds no complete zstd block")
    if good_end < size and not any("unreadable" in d for d in damage):
        tail = size - good_end
        damage.append(f"{tail} bytes after the last whole block (from byte {good_end}) are incomplete and ignored")
    if not closed:  # a closed file's first damage is what was wrong with its index (see _load_index)
        damage.insert(0, NO_INDEX)
    result = ScanResult(
        version=header.get("version"),
        steps=steps,
        frames=frames,
        header={k: v for k, v in header.items() if k != "t"},
        summary=summary.to_dict(finished=ended),
        checks=checks,
        step_checks=step_checks,
    )
    result["damage"] = damage
    result["readable_end"] = good_end
    result["has_reset"] = has_reset  # False: cut inside the first frame, after the header (nothing to keep)
    if lost:
        result["damaged"] = lost
    if hasattr(buf, "close"):
        buf.close()
    return result


#: How many candidate frame starts (zstd magic numbers) a scan tries after a damaged frame before it gives up.
_RESYNC_TRIES = 256


def _resync(buf: Any, path: str, bad: int, steps: int, checksum: bool) -> tuple[int, int] | None:
    """Where the scan can go on after the damaged frame at byte ``bad``: ``(offset, first step)`` of the next
    frame that is whole, verified (its checksum, when the file's version has them) and holds steps numbered from
    ``steps`` on; None when no such frame follows (the damage runs to the end).

    Candidates are the end of the damaged frame when its block headers still walk, then each later zstd magic
    number. A candidate is taken only if the whole frame decodes and every step record in it passes the reader's
    checks, numbered consecutively: a magic number inside compressed bytes is not mistaken for a frame.
    """
    view = memoryview(buf)
    size = len(buf)
    candidates: list[int] = []
    try:
        stop, whole = frame_extent(view, bad, size)
        if whole and stop > bad:
            candidates.append(stop)
    except (ValueError, IndexError):
        pass
    pos = bad + 1
    while len(candidates) < _RESYNC_TRIES:
        pos = buf.find(ZSTD_MAGIC, pos)
        if pos < 0:
            break
        candidates.append(pos)
        pos += 1
    for at in candidates:
        while at < size and is_skippable(view, at):  # the index frame (or another skippable frame)
            at = skippable_end(view, at)
        if at >= size or bytes(view[at:at + 4]) != ZSTD_MAGIC:
            continue
        try:
            stop, whole = frame_extent(view, at, size)
            if not whole:
                continue
            records, _leftover, _done = decode_frame(view[at:stop], path=path, offset=at, checksum=checksum)
        except (TrajrecFormatError, ValueError, IndexError):
            continue
        step_recs = [r for r in records if r.get("t") == "step"]
        if not step_recs or not isinstance(step_recs[0].get("i"), int) or step_recs[0]["i"] < steps:
            continue
        first = step_recs[0]["i"]
        if any(step_problem(r, first + j) for j, r in enumerate(step_recs)):
            continue
        return at, first
    return None


def _check_magic(path: str, fh: Any, size: int) -> None:
    if size == 0:
        raise EmptyEpisodeError(path, "0 bytes")
    head = fh.read(4)
    if size < len(ZSTD_MAGIC) and ZSTD_MAGIC.startswith(head):
        raise EmptyEpisodeError(path, f"{size} bytes")
    if head != ZSTD_MAGIC:
        raise TrajrecFormatError(path, 0, f"not a trajrec episode: expected a zstd frame (bytes 28 b5 2f fd), found "
                                 f"{head.hex(' ')}; episode files are the *.msgpack.zst files a Recorder writes")


def _load_index(path: str, fh: Any, size: int) -> tuple[dict[str, Any], bool, list[str]]:
    """``(index, complete, damage)`` for an open episode file of ``size`` bytes: its checked index, or a scan
    when it has none or the index is damaged or inconsistent (frames outside the file, counts that do not add up,
    wrong types)."""
    try:
        _check_magic(path, fh, size)
        bad_magic: TrajrecFormatError | None = None
    except EmptyEpisodeError:
        raise
    except TrajrecFormatError as exc:
        # Not a zstd frame at byte 0: another file, or a trajrec file whose first bytes (frame 0's, the header
        # record's) are damaged. Only a sound version-3 index at the end tells the second (format.lost_header);
        # a file that does not even end like one fails here, at its first bytes, as before.
        fh.seek(max(0, size - len(TAIL_MAGIC)))
        if fh.read(len(TAIL_MAGIC)) != TAIL_MAGIC:
            raise
        bad_magic = exc
    damage: list[str] = []
    try:
        index, start = read_tail_index(fh, size, path)
        if bad_magic is not None and (index is None or not index.get("head_damaged")):
            raise bad_magic
        if index is not None:
            problem = index_problem(index, start)
            if problem is None and index["header"].get("magic") == MAGIC:
                index.setdefault("step_checks", [])
                index["index_offset"] = start
                return index, True, describe_lost(index, path)  # steps an earlier repair found lost, if any
            raise TrajrecFormatError(path, start, f"the index is inconsistent: "
                                     f"{problem or 'its header has no trajrec magic'}; "
                                     f"run `trajrec fsck --repair {path}` to rebuild it")
    except TrajrecFormatError as exc:
        if bad_magic is not None:
            raise bad_magic from None  # no sound index: what is at byte 0 is what the reader can say
        damage.append(str(exc))
    result = scan_file(path, fh, closed=bool(damage))
    return result, False, damage + result["damage"]


def read_index(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The index of an episode file (header, summary, frame table, checks) without reading its steps.

    Cheap for a closed file (one read at the end, checked before it is trusted); a file without an index, or
    with a damaged one, is scanned. The result has ``complete`` (a sound index was found) and ``damage``
    (problems found).

    Raises:
        TrajrecFormatError: the file is not an episode, or is damaged before its first step can be read.
        OSError: the file cannot be opened.
    """
    path = os.fspath(path)
    fh, size = open_binary(path)
    with fh:
        index, complete, damage = _load_index(path, fh, size)
    index["complete"] = complete
    index["damage"] = damage
    index["file_size"] = size
    return index


def open_error(path: str, exc: OSError) -> TrajrecUsageError:
    """The error for an episode file that cannot be opened, with the fix where there is an obvious one."""
    if isinstance(exc, IsADirectoryError):
        return TrajrecUsageError(f"cannot open episode {path}: it is a folder; give one of its episode files "
                                 f"(`trajrec ls {shlex.quote(path)}` lists them)")
    return TrajrecUsageError(f"cannot open episode {path}: {exc.strerror or exc}")


def read_records(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """An episode's index (as :func:`read_index` gives it) and an iterator over its raw step records, for scans
    that visit every step of many files once (reports, statistics).

    A closed file of up to 4 MiB is read with one read and its frames decoded from memory; a bigger file, or one
    without an index, is read through :class:`Episode`, a frame at a time. The records are the stored dicts (see
    :meth:`Episode.iter_records`).

    Raises:
        TrajrecFormatError: the file is not an episode or is damaged (with the file and offset).
        TrajrecUsageError: the file cannot be opened.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            data = fh.read() if size <= _WHOLE_READ else b""
    except OSError as exc:
        raise open_error(path, exc) from exc
    if data:
        # The same checks as every reader: the index before it is trusted, then checksums and records per frame.
        index, complete, _damage = _load_index(path, io.BytesIO(data), size)
        header = index.get("header") or {}
        if complete and header.get("magic") == MAGIC and not index.get("damaged"):
            index["complete"] = True
            index["damage"] = []
            index["file_size"] = size
            checksums = isinstance(header.get("version", 1), int) and header.get("version", 1) >= 2
            return index, _memory_records(path, data, index["frames"], checksums)
    ep = Episode(path)  # no index, a damaged one, or a big file: the reader scans and warns as it always does
    return ep.index, _episode_records(ep)


def _episode_records(ep: Episode) -> Iterator[dict[str, Any]]:
    with ep:
        yield from ep.iter_records()


def _memory_records(path: str, data: bytes, frames: list[list[int]], checksums: bool) -> Iterator[dict[str, Any]]:
    view = memoryview(data)
    for frame in frames:
        offset, first, n, stop = frame[:4]
        if n <= 0:
            continue
        with gc_paused(promote=True):  # a frame's new containers hold no cycles: collections would find nothing
            records, _leftover, _done = decode_frame(view[offset:stop if stop >= 0 else len(data)], path=path,
                                                     offset=offset, checksum=checksums)
        steps = [r for r in records if r.get("t") == "step"]
        if len(steps) != n:
            raise TrajrecFormatError(path, offset, f"the frame here holds {len(steps)} steps where the index "
                                     f"lists {n}; run `trajrec fsck {path}`")
        del records
        found = steps_problem(steps, first)
        if found:
            raise TrajrecFormatError(path, offset, f"{found[1]} (in the frame starting here); "
                                     f"run `trajrec fsck {path}`")
        yield from steps
        del steps  # not alive while the next frame is decoded (see Episode.iter_records)


class Episode(Sequence[Step]):
    """A recorded episode, read lazily.

    >>> import gymnasium as gym, tempfile
    >>> from trajrec.recorder import Recorder
    >>> env = Recorder(gym.make("CartPole-v1"), tempfile.mkdtemp())
    >>> _ = env.reset(seed=1)
    >>> for a in (0, 1, 0):
    ...     _ = env.step(a)
    >>> env.close()
    >>> ep = open_episode(env.episode_path)
    >>> len(ep), ep[1].action, ep.summary["steps"], ep.task["env_id"]
    (3, 1, 3, 'CartPole-v1')
    """

    def __init__(self, path: str | os.PathLike[str], *, index: dict[str, Any] | None = None) -> None:
        self.path = os.fspath(path)
        try:
            self._fh, size = open_binary(self.path)
        except OSError as exc:
            raise open_error(self.path, exc) from exc
        self._size = size
        try:
            if index is not None and index.get("complete") is True and index.get("file_size") == size:
                # A sound index :func:`read_index` just read from this same file (same size): not read twice.
                complete, damage = True, list(index.get("damage") or ())
            else:
                index, complete, damage = _load_index(self.path, self._fh, size)
            #: The file has its index (its writer closed it, or ``fsck --repair`` rebuilt it): False when the
            #: frames were scanned instead (:attr:`index_state`). It does NOT say that every step is there: an
            #: episode that lost steps (to damage, or env steps a failed write kept out) is ``complete`` here and
            #: lists them in :attr:`gaps`. "The whole recording" (``complete`` in ``ls --json``, ``show --json``,
            #: ``fsck --json``, ``--where`` and the exports) is ``ep.complete and not ep.gaps``
            #: (:func:`trajrec.replay.query.index_facts`' ``complete`` from the index alone).
            self.complete = complete
        except BaseException:
            self._fh.close()
            raise
        if damage and not self.complete and damage[0] != NO_INDEX:
            warnings.warn(f"{damage[0]}; reading by scanning the frames instead", RuntimeWarning, stacklevel=2)
        self.damage: list[str] = damage
        self._index = index
        header = index.get("header") or {}
        if header.get("magic") != MAGIC:
            self._fh.close()
            raise TrajrecFormatError(self.path, 0, f"not a trajrec episode: header magic is "
                                     f"{str(header.get('magic'))[:40]!r}, expected {MAGIC!r}")
        version = header.get("version", 1)
        #: Frames of a version-2 file must carry checksums; a file written by a newer trajrec keeps the rule.
        self._checksums = version >= 2
        self.header: dict[str, Any] = header
        self.summary: dict[str, Any] = index.get("summary") or {}
        self._n = int(index.get("steps", 0))
        all_frames = index["frames"]
        self._frame0 = all_frames[0]
        #: Step ranges the index declares lost (``fsck --repair`` kept the frames around them): ``(first, n)``.
        self.lost: list[tuple[int, int | None]] = [(f, n) for f, n, _why in lost_steps(index) if n != 0]
        self._frames = [f for f in all_frames if f[2] > 0 and not self._lost_at(f[1])]
        self._firsts = [f[1] for f in self._frames]
        self._standalone = [Check.from_record(c) for c in index.get("checks") or ()]
        self._step_checks = [Check.from_record(c) for c in index.get("step_checks") or ()]
        self._by_step: dict[int, list[Check]] = {}
        for c in self._standalone:
            if isinstance(c.target, int):
                self._by_step.setdefault(c.target, []).append(c)
        self._cache: OrderedDict[int, list[dict[str, Any]]] = OrderedDict()
        self._reset: ResetRecord | None = None
        self._state_recorded = False
        self._reset_rec: dict[str, Any] | None = None  # kept when the first frame is decoded for its steps

    # -- metadata -----------------------------------------------------------------------------------------------

    @property
    def index_state(self) -> str:
        """Why the file was read: ``"ok"`` (its index), ``"missing"`` (no index frame: the writer did not close
        the file) or ``"damaged"`` (an index frame whose checksum or contents are wrong: the frames were scanned
        instead; ``trajrec fsck --repair`` rebuilds it)."""
        if self.complete:
            return "ok"
        return "missing" if self.damage and self.damage[0] == NO_INDEX else "damaged"

    def incomplete_text(self) -> str:
        """A few words on why :attr:`complete` is False (``""`` when it is True), for one line of a screen."""
        return {"ok": "", "missing": "no index: the writer did not close the file",
                "damaged": "index damaged: read by scanning the frames (`trajrec fsck --repair` rebuilds it)"
                }[self.index_state]

    @property
    def index(self) -> dict[str, Any]:
        """The index this reader uses (as :func:`read_index` returns it: header, summary, frames, checks,
        ``complete``); read, never modify."""
        self._index.setdefault("complete", self.complete)
        self._index.setdefault("damage", self.damage)
        self._index.setdefault("step_checks", [])
        self._index.setdefault("file_size", self._size)
        return self._index

    @property
    def episode_id(self) -> str:
        return str(self.header.get("episode_id", os.path.basename(self.path)))

    @property
    def task(self) -> dict[str, Any]:
        return self.header.get("task") or {}

    @property
    def provenance(self) -> dict[str, Any]:
        return self.header.get("provenance") or {}

    @property
    def checks(self) -> list[Check]:
        """Every recorded check: those the env reported with a step, then those added with ``Recorder.check``."""
        return [*self._step_checks, *self._standalone]

    def checks_by_step(self) -> dict[int, list[Check]]:
        """The checks each step carries as its :attr:`Step.checks`, from the index alone (no step decoded).

        A step carries the checks the env reported in that step's info, whatever their target (the built-in
        envs' terminal check, target ``"episode"``, rides on the last step), then the ``Recorder.check`` checks
        whose target is that step: the same two sources :meth:`__getitem__` builds ``Step.checks`` from. Steps
        without checks are left out. An index without ``step_checks`` (a file from before they were indexed)
        gives only the second kind: the step records hold the first.
        """
        out: dict[int, list[Check]] = {}
        for c in self._step_checks:
            step = c.extra.get("step")
            if type(step) is int:
                out.setdefault(step, []).append(c)
        for step, checks in self._by_step.items():
            out.setdefault(step, []).extend(checks)
        return out

    @property
    def reset(self) -> ResetRecord:
        if self._reset is None:
            try:
                if self._reset_rec is None and self._frames and self._frames[0] is self._frame0:
                    self._frame_steps(0)  # decodes the first frame once, for its steps and its reset record
                records = [self._reset_rec] if self._reset_rec is not None else self._decode(self._frame0)
            except TrajrecFormatError as exc:
                if self.lost and self._lost_at(0) is not None:  # fsck --repair recorded this loss: nothing to fix
                    raise ResetLostError(self.path, None, "the reset record was lost to damaged bytes with step 0 "
                                         f"(fsck --repair recorded the loss; {self.readable_steps} readable steps "
                                         f"of {self._n}): the episode has no first observation") from exc
                raise
            for rec in records:
                if rec.get("t") == "reset":
                    problem = reset_problem(rec)
                    if problem:
                        raise TrajrecFormatError(self.path, 0, f"{problem}; run `trajrec fsck {self.path}`")
                    self._reset = ResetRecord.from_record(rec)
                    # A state of None at reset is a recorded state (the steps' diffs start from it): the key
                    # says whether states were recorded, not the value.
                    self._state_recorded = "state" in rec
                    break
            else:
                if self.header_lost is not None and not self._index.get("head_damaged"):
                    # fsck --repair wrote frame 0 anew after a lost header, and the reset could not be salvaged.
                    raise ResetLostError(self.path, None, "the reset record was lost to damaged bytes with the header "
                                         f"record (fsck --repair recorded the loss; {self.readable_steps} readable "
                                         f"steps of {self._n}): the episode has no first observation")
                raise TrajrecFormatError(self.path, 0, "the first frame holds no reset record: nothing of the "
                                         "episode can be read (the file ends inside its first frame); `trajrec fsck "
                                         "--repair` cannot help, record the episode again")
        return self._reset

    @property
    def header_lost(self) -> dict[str, Any] | None:
        """What is on record of the header record's loss to damaged bytes (``why``, the damaged bytes, ``from``:
        where each field kept came from), or None when the header is sound. The task and the provenance, which only
        the header held, are then absent (:attr:`task` and :attr:`provenance` are empty): nothing is made up. The
        file is not whole: ``ls`` marks it, the exports leave it out unless ``--keep-partial``. See
        :func:`trajrec.recorder.format.lost_header`."""
        return header_lost(self._index)

    @property
    def reset_unverified(self) -> str | None:
        """Why :attr:`reset` is unverified, or None: ``fsck --repair`` salvaged the reset record from a damaged first
        frame, so its fields are readable but no checksum vouches for them (see :func:`unverified_reset`).
        ``trajrec show`` and ``fsck`` say so, and the exports leave the episode out unless ``--keep-partial``."""
        return unverified_reset(self._index)

    @property
    def readable_steps(self) -> int:
        """How many steps can be read: ``len(self)`` less the steps the index declares lost (see :attr:`lost`)."""
        return self._n - sum(n or 0 for _f, n in self.lost)

    @property
    def gaps(self) -> list[Gap]:
        """Every gap of the recording (see :class:`Gap`): steps lost to damage (:attr:`lost`) and env steps a
        failed write kept out of the file, each placed before the step written after it. Empty: no step is
        lost (:attr:`complete` still says whether the writer closed the file).

        From the index; a file from a trajrec that did not place the unwritten steps in its summary is scanned
        once for the steps that say so (their ``recorder_errors``).
        """
        found = self.__dict__.get("_gaps")
        if found is None:
            found = gaps(self._index)
            if any(g.first is None for g in found):
                found = [g for g in found if g.first is not None] + self._unwritten_from_steps(
                    next(g.n or 0 for g in found if g.first is None))
                found.sort(key=gap_order)
            self.__dict__["_gaps"] = found
        return found

    def _unwritten_from_steps(self, total: int) -> list[Gap]:
        """The unwritten gaps the step records tell (``recorder_errors`` where ``"write"``), and the rest of
        ``total`` after the last step."""
        out: list[Gap] = []
        for rec in self.iter_records():
            errors = rec.get("recorder_errors")
            if errors and type(errors) is list:
                for e in errors:
                    if type(e) is dict and e.get("where") == "write" and type(e.get("lost_steps")) is int:
                        if e["lost_steps"] > 0:
                            out.append(Gap(rec["i"], e["lost_steps"], WRITE_FAILED, False))
        rest = total - sum(g.n or 0 for g in out)
        if rest > 0:
            out.append(Gap(self._n, rest, WRITE_FAILED, False))
        return out

    def is_lost(self, i: int) -> bool:
        """True when step ``i`` is in a range the index declares lost (reading it raises)."""
        return bool(self.lost) and self._lost_at(i) is not None

    def _lost_at(self, i: int) -> tuple[int, int | None] | None:
        """The declared lost range holding step ``i``, or None."""
        for first, n in self.lost:
            if first <= i and (n is None or i < first + n):
                return first, n
        return None

    def _lost_error(self, i: int, what: str) -> TrajrecFormatError:
        first, n = self._lost_at(i) or (i, 1)
        span = f"steps {first}..{first + n - 1}" if n else f"the steps from {first} on"
        return TrajrecFormatError(self.path, None, f"{what}: {span} were lost to damaged bytes (fsck --repair kept "
                                  f"the {self.readable_steps} readable steps around them); `trajrec fsck {self.path}` "
                                  "lists the lost ranges")

    @property
    def has_state(self) -> bool:
        """Whether the episode records the env's state (its reset record has one, even ``None``). When the reset
        record was lost to damage (:class:`ResetLostError`), the steps say it: in an episode with state, the first
        step of every frame carries a snapshot, so the states of the frames kept are still rebuilt."""
        try:
            self.reset  # noqa: B018  (decodes the reset record once)
        except ResetLostError:
            return bool(self._frames) and "snapshot" in self._frame_steps(0)[0]
        return self._state_recorded

    # -- steps --------------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        """The number of steps (the reset is not a step: an episode whose reset failed has 0). From the index,
        or from the scan of a file without one; a damaged file counts only the steps it still holds."""
        return self._n

    @overload
    def __getitem__(self, i: int) -> Step: ...
    @overload
    def __getitem__(self, i: slice) -> list[Step]: ...

    def __getitem__(self, i: int | slice) -> Step | list[Step]:
        """Step ``i`` as a :class:`Step` (action, observation, reward, terminated, truncated, info, note, time,
        duration, failure, retry_of, recovers, diff, checks, recorder_errors), or a list of them for a slice.

        Indices follow Python: ``ep[-1]`` is the **last step** (not the reset; the reset is :attr:`reset`). Note
        that :meth:`state_at` differs: ``ep.state_at(-1)`` is the state right after reset, and the last step's
        state is ``ep.state_at(len(ep) - 1)``. Only the frame holding the step is decoded (and cached).

        Raises:
            StepIndexError: ``i`` is out of range (an IndexError, so ``for``/``in`` and slicing work as usual).
            TrajrecFormatError: the frame holding the step is damaged, or the step was lost (``trajrec fsck``).
        """
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._n))]
        rec = self._record(operator.index(i))
        return Step.from_record(rec, self._by_step.get(rec["i"], ()))

    # Walks over every frame leave the LRU alone: frames it held alive would outlive their use and keep Python's
    # cyclic collector walking them (a third of the decode rate). And no name holds a frame's list while the next
    # is decoded: two frames alive at once need fresh memory from the system for every frame (its pages faulted
    # in, then handed back when the older one dies), which cost a third of the walk.

    def __iter__(self) -> Iterator[Step]:
        """Every step in order, as :class:`Step` objects, decoding one frame at a time (without filling the
        frame cache, so a walk over a long episode holds one frame at a time).

        Raises:
            TrajrecFormatError: a frame is damaged (the steps before it have been yielded).
        """
        by_step = self._by_step
        from_record = Step.from_record
        for fi in range(len(self._frames)):
            if by_step:
                for rec in self.frame_records(fi):
                    yield from_record(rec, by_step.get(rec["i"], ()))
            else:  # no checks outside the records (the usual case): no lookup per step
                for rec in self.frame_records(fi):
                    yield from_record(rec)

    def iter_records(self) -> Iterator[dict[str, Any]]:
        """The raw stored step records in order (dicts shared with the cache: do not modify). Skips building
        :class:`Step` objects, for exports and scans that touch every step."""
        for fi in range(len(self._frames)):
            yield from self.frame_records(fi)

    def record(self, i: int) -> dict[str, Any]:
        """The raw stored record of step ``i`` (a dict; shared with the cache, do not modify)."""
        return self._record(i)

    def state_at(self, i: int) -> Any:
        """The env state right after step ``i``; ``i == -1`` is the state right after **reset** (before step 0).

        Unlike ``ep[-1]`` (the last step), ``-1`` here does not count from the end, and no other negative index is
        accepted: state ``i`` is "after step i", so -1 is the one before the first step. The last step's state is
        ``state_at(len(ep) - 1)``. Rebuilt from the nearest snapshot (or the reset state) by applying the
        recorded diffs forward.

        Returns:
            A fresh copy of the state (yours to change), as ``state_fn``/``state_dict()`` returned it.

        Raises:
            TrajrecUsageError: the episode records no state.
            StepIndexError: ``i`` is below -1 or not below ``len(ep)``.
            TrajrecFormatError: a diff does not apply (damaged file), or step ``i``'s records were lost.
        """
        from .diff import ROWS_DO_NOT_FIT, apply_forward, copy_state  # here: the diff imports numpy, reading need not

        i = operator.index(i)
        if not self.has_state:
            raise TrajrecUsageError(f"{self.path} has no recorded state: record with Recorder(state_fn=...) or an env "
                                    "that has state_dict()")
        if i < -1 or i >= self._n:
            raise StepIndexError(f"state_at({i}): {self.path} has " + (f"steps 0..{self._n - 1} (and -1 for the reset state)" if self._n else "no steps: only -1, the reset state"))
        if i == -1:
            return copy_state(self.reset.state)
        if self.lost and self._lost_at(i):
            raise self._lost_error(i, f"state_at({i}): the state after step {i} cannot be rebuilt")
        fi = bisect.bisect_right(self._firsts, i) - 1
        recs = self._frame_steps(fi)
        first = self._frames[fi][1]
        j = i - first
        start = j
        while start >= 0 and "snapshot" not in recs[start]:
            start -= 1
        if start >= 0:
            state = copy_state(recs[start]["snapshot"])
            begin = start + 1
        elif fi > 0:
            state = self.state_at(first - 1)
            begin = 0
        else:
            state = copy_state(self.reset.state)
            begin = 0
        for rec in recs[begin:j + 1]:
            diff = rec.get("diff")
            if diff:
                try:
                    state = apply_forward(state, diff, copy_values=True)
                except ROWS_DO_NOT_FIT as exc:
                    # Rows that do not fit the state before them: damaged bytes in a file without checksums.
                    raise TrajrecFormatError(self.path, self._frames[fi][0], f"the state diff of step {rec['i']} does "
                                             f"not apply to the state before it ({type(exc).__name__}: {exc}); "
                                             f"run `trajrec fsck {self.path}`") from exc
        return state

    @property
    def frame_count(self) -> int:
        """How many frames hold steps (for walks that go frame by frame, see :meth:`frame_records`)."""
        return len(self._frames)

    def frame_span(self, fi: int) -> tuple[int, int]:
        """``(first step, number of steps)`` of frame ``fi``, from the index (no decoding)."""
        frame = self._frames[fi]
        return frame[1], frame[2]

    def frame_records(self, fi: int) -> list[dict[str, Any]]:
        """The raw step records of frame ``fi`` (checked; shared with the cache when it holds them: do not modify).

        Decodes without filling the reader's cache: a walk over every frame then holds one frame at a time, and
        Python's cyclic collector is not kept walking frames the walk is done with.

        Raises:
            TrajrecFormatError: the frame is damaged.
        """
        cached = self._cache.get(fi)
        return cached if cached is not None else self._load_steps(fi)

    def frame_of(self, i: int) -> int:
        """Index of the frame holding step ``i`` (for callers that batch by frame)."""
        return bisect.bisect_right(self._firsts, i) - 1

    # -- internals ----------------------------------------------------------------------------------------------

    def _record(self, i: int) -> dict[str, Any]:
        n = self._n
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise StepIndexError(f"step {i} is out of range: {self.path} has " + (f"{n} steps (0..{n - 1})" if n else "no steps"))
        if self.lost and self._lost_at(i):
            raise self._lost_error(i, f"step {i} is unreadable")
        fi = bisect.bisect_right(self._firsts, i) - 1
        recs = self._frame_steps(fi)
        rec = recs[i - self._frames[fi][1]]
        if rec.get("i") != i:
            raise TrajrecFormatError(self.path, self._frames[fi][0], f"expected step {i} in this frame, found step "
                                     f"{rec.get('i')}; run `trajrec fsck {self.path}`")
        return rec

    def _frame_steps(self, fi: int) -> list[dict[str, Any]]:
        cached = self._cache.get(fi)
        if cached is not None:
            self._cache.move_to_end(fi)
            return cached
        steps = self._load_steps(fi)
        self._cache[fi] = steps
        if len(self._cache) > _FRAME_CACHE:
            self._cache.popitem(last=False)
        return steps

    def _load_steps(self, fi: int) -> list[dict[str, Any]]:
        """The checked step records of frame ``fi``, decoded now (not cached)."""
        frame = self._frames[fi]
        with gc_paused(promote=True):  # a frame's thousands of new containers hold no cycles: never walk them
            records = self._decode(frame)
        steps = [r for r in records if r.get("t") == "step"]
        if frame is self._frame0 and self._reset_rec is None:
            self._reset_rec = next((r for r in records if r.get("t") == "reset"), None)
        if len(steps) != frame[2]:
            raise TrajrecFormatError(self.path, frame[0], f"the frame here holds {len(steps)} steps where the index "
                                     f"lists {frame[2]}; run `trajrec fsck {self.path}`")
        found = steps_problem(steps, frame[1])
        if found:
            raise TrajrecFormatError(self.path, frame[0], f"{found[1]} (in the frame starting here); "
                                     f"run `trajrec fsck {self.path}`")
        return steps

    def _decode(self, frame: list[int]) -> list[dict[str, Any]]:
        offset, _first, _n, stop = frame[:4]
        if self._fh.closed:
            self._fh, self._size = open_binary(self.path)
        if stop < 0:
            try:
                stop = os.fstat(self._fh.fileno()).st_size  # a file still being written grows
            except (OSError, ValueError):
                stop = self._size  # a remote object: no fileno, and it does not grow

        data = read_span(self._fh, offset, stop)
        if len(data) != stop - offset:
            raise TrajrecFormatError(self.path, offset, f"the file ends at byte {offset + len(data)}, inside the frame "
                                     f"that should end at byte {stop} (truncated since it was opened?)")
        # A scanned file's last frame may be cut by a crash: the scan already decoded it, keep its whole blocks.
        records, _leftover, _done = decode_frame(data, path=self.path, offset=offset, checksum=self._checksums,
                                                 complete=self.complete)
        return records

    def close(self) -> None:
        """Release the episode's file handle. ``with open_episode(path) as ep:`` does it on the way out.

        The Episode stays usable: :attr:`reset`, :attr:`summary` and cached frames answer from memory, and a step
        or state that needs the file again (``ep[i]``, iteration, :meth:`state_at`) reopens it for that read.
        Closing twice is harmless. Call it (or use ``with``) when holding many episodes, so as not to keep one
        open file per episode.
        """
        self._fh.close()

    def __enter__(self) -> Episode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        fh = getattr(self, "_fh", None)
        if fh is not None:
            fh.close()

    def __repr__(self) -> str:
        return f"<Episode {self.episode_id} steps={self._n} outcome={self.summary.get('outcome')} path={self.path!r}>"


def open_episode(path: str | os.PathLike[str], *, index: dict[str, Any] | None = None) -> Episode:
    """Open an episode file for reading. Raises :class:`TrajrecFormatError` for files that are not episodes.

    ``index``: what :func:`read_index` returned for this file, so it is not read again (used when the file is
    unchanged: a complete index and the same size; anything else reads the file's own index).

    Raises:
        TrajrecUsageError: ``path`` is not a path (a str or ``os.PathLike``).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TrajrecUsageError(f"open_episode takes the path of an episode file (a str or pathlib.Path), got "
                                f"{type(path).__name__} {path!r}")
    return Episode(path, index=index)
