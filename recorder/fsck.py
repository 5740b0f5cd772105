"""Checking and repairing episode files (``trajrec fsck``)."""

from __future__ import annotations

import os
import shutil
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from .errors import EmptyEpisodeError, TrajrecFormatError, TrajrecIOError
from .format import (FORMAT_VERSION, compress_frame, decompress_bounded, first_record_bytes, frame_extent,
                     iter_frames, lock_file, map_file, packb, salvage_records, write_index_to)
from .model import Gap, gaps
from .reader import header_lost, lost_steps, read_index, unverified_reset, unverified_steps
from .validate import check_problem, header_problem, reset_problem, step_problem
from .writer import pack_record


@dataclass
class FsckReport:
    """What :func:`fsck` found in one file."""

    path: str
    ok: bool
    #: the whole recording is readable: the file has its index (``closed``) and no step is lost (none to damage,
    #: recorded or found now, and no env step kept out by a failed write), as ``complete`` in ``ls --json``,
    #: ``--where`` and the exports (docs/EXPORT.md)
    complete: bool
    steps: int = 0
    damage: list[str] = field(default_factory=list)
    repaired: bool = False
    backup: str | None = None
    error: str | None = None
    #: the file holds nothing (its writer was killed at its first write); ``removed`` once repair deleted it
    empty: bool = False
    removed: bool = False
    #: a live Recorder holds the file's lock: it is being written, not damaged
    live: bool = False
    #: ``steps`` counts the readable steps; ``total_steps`` the steps the file numbers (lost ones included)
    total_steps: int = 0
    #: step ranges ``[first, last]`` that cannot be read (``last`` None: every step from ``first`` on, if any)
    lost: list[list[int | None]] = field(default_factory=list)
    #: every loss is already recorded in the file's index (an earlier ``--repair``): nothing more to repair
    recorded: bool = False
    #: step ranges ``[first, last]`` a repair salvaged from damaged frames: readable, but no checksum vouches
    unverified: list[list[int]] = field(default_factory=list)
    #: a repair salvaged the reset record from a damaged first frame: readable, but no checksum vouches for it
    unverified_reset: bool = False
    #: why the header record is lost to damaged bytes (the task and provenance it held are unknown), or None
    header_lost: str | None = None
    #: ``[k, n]`` per gap of env steps a failed write kept out of the file while recording: ``n`` of them right
    #: before step ``k`` (``k == steps``: after the last). Recorded in the file (the summary's ``lost_steps``):
    #: readable, not whole, and nothing to repair
    unwritten: list[list[int]] = field(default_factory=list)
    #: the file has its index: its writer closed it, or a repair rebuilt it (whatever steps it lost)
    closed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def fsck(path: str | os.PathLike[str], *, repair: bool = False) -> FsckReport:
    """Check one episode file; with ``repair``, rewrite a missing or damaged index.

    The check reads the index (or scans a file without one), then decompresses and verifies every frame (zstd
    checksums in format version 2) and every record's fields, listing the damaged steps.

    Repair keeps every readable record: whole frames are copied byte for byte, a frame the writer left open is
    closed by re-encoding its whole records, then the index is appended. A version-3 file whose header record (the
    first block of frame 0) is damaged gets frame 0 anew: a header marked lost (``format.lost_header``: the task and
    provenance absent), then what the blocks after it still yield, unverified. The new file replaces the old one
    atomically. When unreadable bytes had to be dropped, the original is kept beside it as ``FILE.orig``.
    Repair never writes through a symbolic link: a link at the episode's, the temporary file's or the backup's
    name is refused with :class:`TrajrecIOError`.
    """
    path = os.fspath(path)
    try:
        index = read_index(path)
    except EmptyEpisodeError as exc:
        report = FsckReport(path, ok=False, complete=False, error=str(exc), empty=True)
        if repair:
            with _unlocked(path, report) as free:
                if free:
                    os.unlink(path)
                    report.removed = report.repaired = True
        return report
    except (TrajrecFormatError, OSError) as exc:
        return FsckReport(path, ok=False, complete=False, error=_no_self_advice(str(exc), path))
    damage = list(index["damage"])
    found: list[dict[str, Any]] = []  # steps found unreadable now, that the index does not record yet
    new_damage = not index["complete"]
    if index["complete"]:
        more, found = _verify(path, index)
        damage.extend(more)
        new_damage = bool(more) and not all(m.startswith(_LOST_STATE) for m in more)
    damage = [_no_self_advice(d, path) for d in damage]  # fsck printed them: advice to run fsck would loop
    lost = [*lost_steps(index), *((f["first"], f["n"], f["why"]) for f in found)]
    total = int(index.get("steps", 0))
    unwritten = _unwritten(path, index)
    closed = bool(index["complete"])
    report = FsckReport(path, ok=closed and not damage and not unwritten, closed=closed,
                        complete=closed and not index.get("damaged") and not found and not lost and not unwritten,
                        steps=total - sum(n or 0 for _f, n, _w in lost), damage=damage, total_steps=total,
                        lost=[[f, None if n is None else f + n - 1] for f, n, _w in lost if n != 0],
                        recorded=index["complete"] and bool(damage or unwritten) and not new_damage,
                        unverified=[[f, f + n - 1] for f, n, _w in unverified_steps(index)],
                        unverified_reset=unverified_reset(index) is not None,
                        header_lost=(header_lost(index) or {}).get("why"),
                        unwritten=[[g.first, g.n] for g in unwritten])  # type: ignore[misc]
    if not report.ok and is_locked(path):
        report.live = True
        report.damage.insert(0, "a live Recorder is writing this file (it holds the file's lock): it is not "
                                "finished yet, not damaged")
    elif not report.ok and report.steps == 0 and not index.get("head_damaged") and (
            index.get("has_reset") is False
            or (total == 0 and not lost and any(d.startswith("the header/reset frame is damaged") for d in damage))):
        # Cut inside its first frame (the header, no reset record): no record of the episode to keep, so a repair
        # would only write an index over nothing and the next check would find the same (a loop).
        report.error = ("nothing of the episode can be read: the file ends inside its first frame, before the "
                        "reset record (the header only); --repair cannot help, record the episode again")
    if repair and not report.ok and not report.recorded and not report.error:
        with _unlocked(path, report) as free:
            if free:
                if found:
                    # The index is sound but frames are damaged: it keeps every frame (the damaged ones byte for
                    # byte too, so step numbers stay) and now records the lost steps.
                    index = {**index, "damaged": [*(index.get("damaged") or []), *found], "damage": damage}
                try:
                    report.backup = _repair(path, index)
                    report.repaired = True
                    after = fsck(path)  # what the repaired file now holds (salvage may have kept more)
                    report.steps, report.total_steps = after.steps, after.total_steps
                    report.lost, report.unverified = after.lost, after.unverified
                    report.unverified_reset, report.header_lost = after.unverified_reset, after.header_lost
                    report.unwritten = after.unwritten
                    report.closed, report.complete = after.closed, after.complete
                except TrajrecIOError as exc:  # a link or a file in the way of the temporary name
                    report.error = str(exc)
                except TrajrecFormatError as exc:  # bytes repair cannot read past: say so, the file is untouched
                    report.error = f"cannot repair {path}: {_no_self_advice(str(exc), path)}"
    return report


def _unwritten(path: str, index: dict[str, Any]) -> list[Gap]:
    """The gaps of env steps a failed write kept out of ``path`` (see :func:`.model.gaps`), each placed; a file
    whose summary only counts them (an older trajrec) is placed from its step records."""
    found = [g for g in gaps(index) if not g.numbered]
    if any(g.first is None for g in found):
        from .reader import Episode  # noqa: PLC0415  (as _verify)

        try:
            with Episode(path) as ep:
                found = [g for g in ep.gaps if not g.numbered]
        except TrajrecFormatError:  # the damage is reported by the check itself; the count stays, unplaced
            pass
    return found


#: How :func:`_verify` starts what follows from steps already recorded as lost (a state diffed against a lost
#: state, the reset record in a lost first frame): part of the recorded loss, nothing more to repair.
_LOST_STATE = "lost with them"


def _no_self_advice(message: str, path: str) -> str:
    """``message`` without advice to run fsck on ``path`` (fsck is what printed it: the advice would loop)."""
    for advice in (f"; run `trajrec fsck {path}` to list the damaged steps",
                   f"; run `trajrec fsck --repair {path}` to keep the readable part",
                   f"; run `trajrec fsck --repair {path}` to rebuild it",
                   f"; run `trajrec fsck --repair {path}` to rebuild the index",
                   f"; run `trajrec fsck {path}`"):
        message = message.replace(advice, "")
    return message


def is_locked(path: str | os.PathLike[str]) -> bool:
    """True when a live writer holds the lock of ``path`` (see :func:`trajrec.recorder.format.lock_file`)."""
    try:
        fd = os.open(os.fspath(path), os.O_RDONLY)
    except OSError:
        return False
    try:
        return not lock_file(fd)
    finally:
        os.close(fd)


def being_recorded(path: str | os.PathLike[str]) -> bool:
    """True when a live Recorder holds ``path`` (its lock): a file without its index because it is still being
    written, not one whose writer died. What ``show``, ``ls``, ``report``, ``fsck`` and the viewer call "being
    recorded"; False for a URL (a remote file has no lock to ask)."""
    from .storage import is_url

    return not is_url(os.fspath(path)) and is_locked(path)


@contextmanager
def _unlocked(path: str, report: FsckReport) -> Iterator[bool]:
    """Hold ``path``'s lock while repairing it; yield False (and set ``report.error``) when a live writer has it.

    Repair replaces the file: done under a live Recorder, every step it wrote afterwards would go to the
    replaced inode and be lost."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        report.error = f"cannot open {path} to repair it: {exc.strerror}"
        yield False
        return
    try:
        if not lock_file(fd):
            report.live = True
            report.error = (f"{path} is being written by a live Recorder (it holds the file's lock); "
                            "not repaired: run fsck --repair again once that process has finished or died")
            yield False
            return
        try:
            yield True
        except OSError as exc:  # a read-only or full file system: say so, keep the original
            report.error = f"cannot repair {path}: {exc.strerror or exc}"
            report.repaired = report.removed = False
    finally:
        os.close(fd)


def _verify(path: str, index: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """Decode every frame and record of an indexed file; describe each damaged range of steps.

    Returns the descriptions and the step ranges found unreadable that the index does not already record as
    lost (``{"first", "n", "offset", "why"}``, the index's ``damaged`` rows)."""
    from .reader import Episode  # noqa: PLC0415  (reader imports this module's neighbours)

    damage: list[str] = []
    found: list[dict[str, Any]] = []
    try:
        ep = Episode(path)
    except TrajrecFormatError as exc:
        return [str(exc)], found
    with ep:
        try:
            _ = ep.reset
        except TrajrecFormatError as exc:
            if ep.lost and ep._lost_at(0):
                damage.append(f"{_LOST_STATE}: the reset record (it is in the first frame, with step 0)")
            else:
                damage.append(f"the header/reset frame is damaged: {exc}")
        try:
            has_state = ep.has_state
        except TrajrecFormatError:
            has_state = False
        for fi, frame in enumerate(ep._frames):
            first, n = frame[1], frame[2]
            try:
                ep._frame_steps(fi)
            except TrajrecFormatError as exc:
                why = _no_self_advice(str(exc), path)
                damage.append(f"steps {first}..{first + n - 1} unreadable: {why}")
                found.append({"first": first, "n": n, "offset": frame[0], "why": why})
                continue
            if has_state:
                try:  # the frame's state diffs apply, in turn, to the state they were recorded against
                    ep.state_at(first + n - 1)
                except TrajrecFormatError as exc:
                    if ep.lost and "were lost to damaged bytes" in str(exc):
                        damage.append(f"{_LOST_STATE}: the states of steps {first}..{first + n - 1} (each state is "
                                      "a diff against the one before)")
                    else:
                        damage.append(f"steps {first}..{first + n - 1}: state cannot be rebuilt: {exc}")
        # Frames the index does not list (checks and the end record) are checked by walking the whole file; the
        # walk steps over frames holding steps (checked above) when they are damaged.
        start = index.get("index_offset")
        buf = map_file(ep._fh)
        try:
            declared = {r.get("offset") for r in index.get("damaged") or () if isinstance(r, dict)}
            rows = {f[0]: f[3] for f in index["frames"] if f[2] > 0 or f[0] == 0 or f[0] in declared}
            pos = 0
            while True:
                try:
                    for _offset, _stop, _complete, _records, _left in iter_frames(buf, path, pos, start):
                        pass
                    break
                except TrajrecFormatError as exc:
                    if exc.offset not in rows or rows[exc.offset] <= pos:
                        damage.append(f"a frame not holding steps is damaged: {_no_self_advice(str(exc), path)}")
                        break
                    pos = rows[exc.offset]
        except BaseException as exc:
            _release_views(exc)
            raise
        finally:
            if hasattr(buf, "close"):
                buf.close()
    return damage, found


def _release_views(exc: BaseException) -> None:
    """Clear the finished frames of ``exc``'s tracebacks (its causes' too), so the memoryviews of a mapped file
    their locals hold are released: an mmap cannot be closed while any view of it is alive (``BufferError``)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        traceback.clear_frames(e.__traceback__)
        todo += [e.__cause__, e.__context__]


def _open_new(name: str) -> Any:
    """Create ``name`` for writing; refuse an existing file or a symbolic link there (never write through one)."""
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except FileExistsError as exc:
        kind = "a symbolic link" if os.path.islink(name) else "a file"
        raise TrajrecIOError(f"refusing to write {name}: {kind} is already there (fsck --repair never writes "
                             "through links or over files it did not make); remove it and run again") from exc
    except OSError as exc:
        raise TrajrecIOError(f"cannot create {name}: {exc.strerror}") from exc
    return os.fdopen(fd, "wb")


def _repair(path: str, index: dict[str, Any]) -> str | None:
    if os.path.islink(path):
        raise TrajrecIOError(f"refusing to repair {path}: it is a symbolic link; repair the file it points to "
                             f"({os.path.realpath(path)}) by its own name")
    tmp = f"{path}.fsck-tmp"
    out = _open_new(tmp)  # refuses a link or a file already there: not ours, so never unlinked below
    try:
        return _rewrite(path, tmp, out, index)
    except BaseException:
        try:
            os.unlink(tmp)  # a half-written copy must not be left behind (the original is untouched)
        except OSError:
            pass
        raise


def _source_frames(buf: Any, path: str, index: dict[str, Any], end: int, drops: list[int] | None = None
                   ) -> Iterator[tuple[int, int, bool, list[dict[str, Any]], int, int | None, dict[str, Any] | None]]:
    """The frames of ``buf[:end]`` to carry over, in order: ``(offset, stop, complete, records, leftover,
    lost_n, damaged)``. A frame row of steps the index declares lost comes whole (``complete``, no records,
    ``lost_n`` its step count, ``damaged`` its row for the new index): its bytes are copied as they are. Before
    it, the records salvaged from its blocks before the damage, if any, come as an unclosed frame (re-encoded)
    with a ``damaged`` row marking them unverified (see :func:`_salvage`). Every other frame is decoded and
    checked (``lost_n`` and ``damaged`` None). A damaged frame holding no steps whose extent cannot be walked is
    left out; its offset is appended to ``drops``."""
    lost = lost_steps(index)
    entries = [row for row in index.get("damaged") or () if isinstance(row, dict)]
    lost_offsets = {row.get("offset") for row in entries}
    rows = {row[0]: row for row in index["frames"]
            if (row[2] > 0 and any(f <= row[1] and (n is None or row[1] < f + n) for f, n, _w in lost))
            or (row[2] == 0 and row[0] in lost_offsets and row[0] != 0)}
    pos = 0
    if index.get("head_damaged"):
        # The header record (frame 0's first block) is damaged and the index keeps no copy: frame 0 is written anew,
        # opening with the header the reader made (format.lost_header: what is known, the rest marked lost), then
        # what the blocks after the header's still yield, unverified; the damaged frame follows, byte for byte.
        row = index["frames"][0]
        head = {"t": "header", **index["header"]}
        why = str((header_lost(index) or {}).get("why"))
        lost_head = {"first": 0, "n": 0, "header": True, "why": why}  # a row of no steps: the header's loss
        kept = _salvage(buf, row, index, head_lost=True)[1:]
        k = sum(1 for r in kept if r.get("t") == "step")
        marks = [lost_head]
        if kept:
            marks.append({"first": 0, "n": k, "unverified": True, "reset": True,
                          "why": "salvaged from the damaged frame at byte 0 (the blocks after its damaged header "
                                 "block); the frame's checksum failed, so these records are not verified"})
        yield 0, row[3], False, [head, *kept], 0, None, marks  # type: ignore[misc]
        entry = next((e for e in entries if e.get("first") == row[1] and not e.get("unverified")),
                     {"first": row[1], "n": row[2], "why": "damaged bytes"})
        yield 0, row[3], True, [], 0, row[2] - k, {**entry, "first": row[1] + k, "n": row[2] - k, "salvaged": True}
        pos = row[3]
    while pos < end:
        row = rows.get(pos)
        if row is not None:
            entry = next((e for e in entries if e.get("first") == row[1] and not e.get("unverified")),
                         {"first": row[1], "n": row[2], "why": "damaged bytes"})
            kept = _salvage(buf, row, index, lambda: _state_before(path, row[1])) if not entry.get("salvaged") else []
            k = sum(1 for r in kept if r.get("t") == "step")
            if kept:
                # ``reset``: the reset record is among them (frame 0), as unverified as the steps: readers say so.
                yield pos, row[3], False, kept, 0, None, {
                    "first": row[1], "n": k, "unverified": True,
                    "reset": any(r.get("t") == "reset" for r in kept),
                    "why": f"salvaged from the damaged frame at byte {pos} (its blocks before the damage); the "
                           f"frame's checksum failed, so these records are not verified: {entry.get('why')}"}
            yield pos, row[3], True, [], 0, row[2] - k, {**entry, "first": row[1] + k, "n": row[2] - k,
                                                         "salvaged": True}
            pos = row[3]
            continue
        try:
            for offset, stop, complete, records, leftover in iter_frames(buf, path, pos, end):
                if offset in rows:
                    pos = offset
                    break
                yield offset, stop, complete, records, leftover, None, None
            else:
                return
        except TrajrecFormatError as exc:
            if exc.offset in rows and exc.offset != pos:
                pos = exc.offset
                continue
            # A damaged frame holding no steps (checks, the end record: the index keeps their contents): its bytes
            # are copied when its block headers still walk, as a row of no steps the new index declares damaged.
            try:
                stop, whole = frame_extent(memoryview(buf), exc.offset, end) if exc.offset is not None else (0, False)
            except (ValueError, IndexError):
                whole = False
            if (exc.offset is not None and exc.offset >= pos and (not whole or stop <= exc.offset)
                    and not any(row[0] == exc.offset and row[2] > 0 for row in index["frames"])):
                # Its block headers do not walk either, so where it ends is unknown: drop its bytes up to the next
                # frame the index lists (none: up to the index). No steps are in them, and the index keeps what
                # such frames hold (checks, the end record's summary); the original is kept as FILE.orig.
                after = [row[0] for row in index["frames"] if row[0] > exc.offset]
                if drops is not None:
                    drops.append(exc.offset)
                if not after:
                    return
                pos = min(after)
                continue
            if not whole or exc.offset is None or stop <= exc.offset:
                raise
            yield exc.offset, stop, True, [], 0, 0, {"first": -1, "n": 0, "why": _no_self_advice(str(exc), path)}
            pos = stop


def _salvage(buf: Any, row: list[int], index: dict[str, Any], state_before: Any = None, *, head_lost: bool = False
             ) -> list[dict[str, Any]]:
    """The records of the damaged frame ``row`` that decode before its damage and pass every check a reader
    makes, in order (steps numbered from the row's first step on, at most the row's count); empty when none.

    They are not verified (the frame's checksum failed; see :func:`trajrec.recorder.format.salvage_records`): the
    new index marks them ``unverified`` and readers say so. Frame 0 must start with the header the index holds
    (byte for byte the same record) and the reset record, or nothing of it is kept. A salvaged record may carry
    the damaged byte itself: the salvage also ends at a step whose state diff does not apply to the state before
    it, rebuilt as ``state_at`` rebuilds it (from the frame's snapshot, else ``state_before()``: the state before
    the frame's first step, or :data:`_NO_CHAIN` when it cannot be had), so every step kept has a state.

    ``head_lost``: frame 0's first block, the header record, is the damaged one (the index's header is the one the
    reader made, see :func:`trajrec.recorder.format.lost_header`): the records are decoded from the second block
    on, and the list starts with that header (the reset record, when kept, follows it).
    """
    offset, first, n, stop = row[:4]
    records, _why = salvage_records(memoryview(buf)[offset:stop], skip_first_block=head_lost)
    if head_lost:
        records = [{"t": "header", **index["header"]}, *records]
    version = (index.get("header") or {}).get("version", FORMAT_VERSION)
    # A key no record of the file's version has is a damaged key (the value under the real one would read as its
    # default, shown as if recorded): the record is not kept. A newer version may add keys: not checked then.
    known = _RECORD_KEYS if isinstance(version, int) and version <= FORMAT_VERSION else None
    kept: list[dict[str, Any]] = []
    expect = first
    state: Any = None  # the state after the last step kept; None: not rebuilt yet
    for k, rec in enumerate(records):
        t = rec.get("t")
        if offset == 0 and k < 2:  # frame 0 opens with the header and the reset record
            if k == 0 and not head_lost and (
                    t != "header" or header_problem(rec)
                    or {key: v for key, v in rec.items() if key != "t"} != index.get("header")):
                return []
            if k == 1 and (t != "reset" or reset_problem(rec) or (known and not rec.keys() <= known["reset"])):
                return []
            if k == 1:  # the chain of frame 0 starts from the reset's state (as state_at(-1) reads it)
                state_before = (lambda reset=rec: reset["state"] if "state" in reset else _NO_CHAIN)
        elif t == "step":
            if expect >= first + n or step_problem(rec, expect) or (known and not rec.keys() <= known["step"]):
                break
            state = _state_after(rec, state, state_before)
            if state is _BROKEN_CHAIN:
                break
            expect += 1
        elif t != "check" or check_problem(rec, "check record"):
            break  # anything else (an end record, a second reset) is not what a damaged step frame may hold
        kept.append(rec)
    return kept if expect > first or (offset == 0 and len(kept) == 2) else []


#: The keys a reset and a step record may have in the format versions this trajrec writes (docs/FORMAT.md,
#: "Records"): a salvaged record with any other key has a damaged key and is not kept (see :func:`_salvage`).
_RECORD_KEYS = {
    "reset": frozenset(("t", "seed", "options", "observation", "info", "state", "time", "duration", "failure",
                        "recorder_errors")),
    "step": frozenset(("t", "i", "action", "observation", "reward", "terminated", "truncated", "info", "time",
                       "duration", "note", "failure", "retry_of", "recovers", "diff", "checks", "snapshot",
                       "recorder_errors")),
}

#: :func:`_salvage`'s state chain: the state before the frame cannot be had (nothing to check diffs against), or a
#: step's diff did not apply (the salvage ends before that step).
_NO_CHAIN = object()
_BROKEN_CHAIN = object()


def _state_after(rec: dict[str, Any], state: Any, state_before: Any) -> Any:
    """The state after step record ``rec`` as ``Episode.state_at`` rebuilds it, given the state after the step
    before it in the frame (None: the frame's first step); :data:`_BROKEN_CHAIN` when its diff does not apply."""
    from .diff import ROWS_DO_NOT_FIT, apply_forward, copy_state  # noqa: PLC0415  (the state diff imports numpy)

    if "snapshot" in rec:
        try:
            return copy_state(rec["snapshot"])
        except Exception:  # noqa: BLE001  (a damaged snapshot that cannot be copied: no state to rebuild from)
            return _BROKEN_CHAIN
    if state is None:
        state = state_before() if state_before is not None else _NO_CHAIN
        if state is not _NO_CHAIN:
            try:
                state = copy_state(state)  # the diffs change it in place; the reset record's stays as read
            except Exception:  # noqa: BLE001  (a damaged reset state that cannot be copied)
                state = _NO_CHAIN
    diff = rec.get("diff")
    if state is _NO_CHAIN or not diff:
        return state
    try:
        return apply_forward(state, diff, copy_values=True)
    except ROWS_DO_NOT_FIT:  # as state_at
        return _BROKEN_CHAIN


def _state_before(path: str, first: int) -> Any:
    """The state right before step ``first`` (after step ``first - 1``, or the reset's), read from the file being
    repaired; :data:`_NO_CHAIN` when the episode records no state or that state cannot be rebuilt."""
    from .reader import Episode  # noqa: PLC0415  (reader imports this module's neighbours)

    try:
        with Episode(path) as ep:
            return ep.state_at(first - 1) if ep.has_state else _NO_CHAIN
    except Exception:  # noqa: BLE001  (a damaged reset or earlier frame: that loss is recorded on its own)
        return _NO_CHAIN


def _head_bytes(frame: memoryview) -> bytes | None:
    """The header record's packed bytes from frame 0 (a version-3 index carries their CRC-32); from the blocks
    before the damage when frame 0 is damaged (the header is a block of its own); None when it cannot be read."""
    try:
        return first_record_bytes(decompress_bounded(frame)[0])
    except Exception:  # zstd or msgpack rejects the bytes (several unrelated types): try the blocks before
        records, _why = salvage_records(frame)
        if records and records[0].get("t") == "header":
            return pack_record(packb, records[0])
        return None


def _rewrite(path: str, tmp: str, out: Any, index: dict[str, Any]) -> str | None:
    frames: list[list[int]] = []
    version = (index.get("header") or {}).get("version", FORMAT_VERSION)
    # The original is kept as FILE.orig when any of its bytes is not carried over: bytes after the last whole
    # block or record, unreadable bytes at the end, a damaged index. Damaged frames between readable ones are
    # copied byte for byte (their steps keep their numbers and the index declares them lost).
    end = index["index_offset"] if index.get("complete") else index["readable_end"]
    head: bytes | None = None  # the header record's packed bytes: a version-3 index carries their CRC-32
    with open(path, "rb") as src:
        buf = map_file(src)
        dropped = end < (index["index_offset"] if index.get("complete") else len(buf))
        try:
            with out:
                tail = [e for e in index.get("damaged") or () if isinstance(e, dict) and e.get("n") is None]
                damaged: list[dict[str, Any]] = []
                drops: list[int] = []
                for offset, stop, complete, records, leftover, lost_n, row in _source_frames(buf, path, index, end,
                                                                                             drops):
                    new_offset = out.tell()
                    dropped = dropped or bool(leftover) or bool(drops)
                    first = frames[-1][1] + frames[-1][2] if frames else 0
                    if isinstance(row, list):  # a frame made anew after a lost header: that loss, and the salvage
                        damaged.extend(row)
                    elif row is not None:  # the index rows of lost and salvaged steps, at their new offsets
                        damaged.append({**row, "offset": new_offset, "first": first} if lost_n is not None else row)
                    if complete:
                        out.write(bytes(memoryview(buf)[offset:stop]))
                        if not frames and isinstance(version, int) and version >= 3:
                            head = _head_bytes(memoryview(buf)[offset:stop])
                    else:
                        raws = [pack_record(packb, r) for r in records]
                        out.write(compress_frame(raws))  # one block per record: the header is a block of its own
                        if not frames:
                            head = raws[0]
                    n = lost_n if lost_n is not None else sum(1 for r in records if r.get("t") == "step")
                    frames.append([new_offset, first, n, out.tell()])
                out.flush()
                dropped = dropped or bool(drops)
                repaired = {
                    "version": version,
                    "steps": index["steps"],
                    "frames": frames,
                    "header": index["header"],
                    "summary": index["summary"],
                    "checks": index.get("checks", []),
                    "step_checks": index.get("step_checks", []),
                    "repaired": {"time": time.time(), "damage": index["damage"]},
                }
                if damaged or tail:  # the steps lost to damage (readers skip them and say so), those salvaged
                    repaired["damaged"] = damaged + tail
                # A file keeps its version's index layout (versions 1 and 2: the whole index, header copy included).
                write_index_to(path, repaired, out.fileno(), pack=lambda idx: pack_record(packb, idx),
                               head=head if isinstance(version, int) and version >= 3 else None)
                out.flush()
                os.fsync(out.fileno())
        except BaseException as exc:
            _release_views(exc)
            raise
        finally:
            if hasattr(buf, "close"):
                buf.close()
    backup = None
    if dropped:
        backup = f"{path}.orig"
        k = 1
        while os.path.lexists(backup) and not os.path.islink(backup):  # an earlier repair's backup: keep it too
            backup = f"{path}.orig.{k}"
            k += 1
        with open(path, "rb") as src, _open_new(backup) as dst:
            shutil.copyfileobj(src, dst)
    os.replace(tmp, path)
    return backup
