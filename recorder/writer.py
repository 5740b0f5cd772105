"""The streaming episode writer: records in, a crash-safe indexed file out.

The :class:`~trajrec.recorder.Recorder` wrapper drives it; it can also be used directly to write episodes produced
elsewhere (``fsck --repair`` and the replay ``--record`` path do).
"""

from __future__ import annotations

import os
import time
import warnings
import zlib
from typing import Any, Callable

from .codec import Unencodable, bounded_repr, fallback_payload, sanitize
from .errors import TrajrecIOError, TrajrecUsageError
from .format import (_FLUSH_BLOCK, _FLUSH_FINISH, FORMAT_VERSION, MAGIC, MAX_FRAME_BYTES_SETTING, MAX_RECORD_BYTES,
                     FrameWriter, compact_index_frame, packb, remove_new)
from .model import SummaryBuilder, truthy

#: The usual step's write in C (``recorder/_cdiff.c``: ``usual_write``, set up below the classes it serves): None
#: where the extension was not built (no C compiler at install, or no writev) or ``TRAJREC_PURE_PYTHON=1`` is set
#: (the switch ``recorder/diff.py`` reads); write_usual_step's Python code then writes the same bytes.
_usual_write: Any = None


#: Flags of a step in the index's ``step_marks`` (what a viewer draws as the step's marker).
MARK_FAILURE = 1  # a failure other than an exception (a tool error, a failure_fn's kind)
MARK_EXCEPTION = 2  # env.step raised
MARK_RECOVERY = 4  # the step recovers from a failure (recovers is set)
MARK_RETRY = 8  # the step repeats a failed operation (retry_of is set)
_MARK_FIELDS = frozenset(("failure", "recovers", "retry_of"))


def step_mark(record: dict[str, Any]) -> int:
    """The ``MARK_*`` flags of a step record (0 for most steps)."""
    flags = 0
    failure = record.get("failure")
    if failure:
        flags |= MARK_EXCEPTION if isinstance(failure, dict) and failure.get("kind") == "exception" else MARK_FAILURE
    if record.get("recovers"):
        flags |= MARK_RECOVERY
    if record.get("retry_of") is not None:
        flags |= MARK_RETRY
    return flags


class EpisodeWriter:
    """Writes one episode file.

    Each record is flushed as its own zstd block, so it is readable as soon as the call returns. A frame is
    closed every ``frame_steps`` steps or ``frame_bytes`` uncompressed bytes, which bounds what the reader
    decompresses to reach any step. The first step of each frame carries a full state snapshot, so the state
    at any step is one frame's work away. :meth:`close` appends the index.

    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> w = EpisodeWriter(os.path.join(d, "e.msgpack.zst"), {"episode_id": "e", "task": {}, "provenance": {}})
    >>> w.write_reset({"seed": 0, "observation": "hi", "info": {}, "time": 0.0, "duration": 0.0})
    >>> w.write_step({"i": 0, "action": "ls", "observation": "a.txt", "reward": 0.0, "terminated": True,
    ...               "truncated": False, "info": {}, "time": 0.0, "duration": 0.0})
    >>> w.close()["steps"]
    1
    """

    # The fields the usual step's C write (recorder/_cdiff.c: usual_write) reads and stores in place, as slots at
    # offsets it takes once (Python reads and writes the same fields); the rest live in the instance's dict.
    __slots__ = ("_fw", "_packer", "frame_steps", "frame_bytes", "frames", "steps", "summary", "step_marks",
                 "_last_mark", "_frame_steps", "_frame_open", "_frame_allow", "_pending", "__dict__", "__weakref__")

    def __init__(self, path: str | os.PathLike[str], header: dict[str, Any], *, level: int = 3,
                 frame_steps: int = 1024, frame_bytes: int = 1 << 20, fsync: bool = False,
                 compressor: Any = None) -> None:
        self.path = os.fspath(path)
        if not 0 < frame_bytes <= MAX_FRAME_BYTES_SETTING:
            # Readers refuse frames bigger than this bound allows (format.MAX_FRAME_RAW): a bomb guard.
            raise TrajrecUsageError(f"frame_bytes must be 1..{MAX_FRAME_BYTES_SETTING}, got {frame_bytes}")
        self._fw = FrameWriter(self.path, level=level, fsync=fsync, compressor=compressor)
        try:
            self._packer = self._fw.pack_function
            self.frame_steps = frame_steps
            self.frame_bytes = frame_bytes
            self.header = {"t": "header", "magic": MAGIC, "version": FORMAT_VERSION, **header}
            self.frames: list[list[int]] = [[0, 0, 0, -1]]  # [offset, first step, steps in frame, end offset]
            self.steps = 0
            self.summary = SummaryBuilder()
            self.checks: list[dict[str, Any]] = []  # checks written as their own records; the index repeats them
            self.step_checks: list[dict[str, Any]] = []  # checks the env reported with a step, with that step
            # Steps with a failure, retry or recovery, for viewers that draw markers without decoding every step:
            # flat [steps since the previous marked step, MARK_* flags] pairs (see docs/FORMAT.md, "step_marks").
            self.step_marks: list[int] = []
            self._last_mark = 0
            self.closed = False
            self._frame_steps = 0
            self._frame_open = True
            # Bytes of the frame's opening state snapshot, which do not count against frame_bytes: a state bigger than
            # frame_bytes would otherwise close every frame after one step, storing the whole state every step.
            self._frame_allow = 0
            # The header goes out in the same write as the first record (the reset), as a zstd block of its own:
            # readers of the index decompress only that block to get it (format version 3 keeps no copy in the index).
            self._head = self._pack(self.header)
            self._pending: bytes | None = self._head
            #: A write failed before anything reached the file (see :attr:`unstarted`).
            self._first_write_failed = False
            #: The end frame and index a failed :meth:`close` could not write (a second close() writes them).
            self._tail: bytes | None = None
        except BaseException:
            # A stop (Ctrl-C) or an error before this writer exists for its caller: the new file, empty, goes.
            remove_new(self.path, self._fw._fd)
            self._fw._fd = None
            raise

    # The writer keeps the frame table itself rather than asking FrameWriter, so a frame is listed before
    # its first byte goes out: a crash between the two leaves an index-less file, which scanning handles.
    def _start_frame(self) -> None:
        if self._fw.cut_pending:  # a failed write cut the last frame short: close it first (may raise)
            self._fw.finish_cut_frame()
            self.frames[-1][3] = self._fw.offset
        self.frames.append([self._fw.offset, self.steps, 0, -1])
        self._frame_steps = 0
        self._frame_open = True
        self._frame_allow = 0

    def _end_frame(self) -> None:
        if self._frame_open:
            self._fw.end_frame()
            self.frames[-1][3] = self._fw.offset
            self._frame_open = False

    def _pack(self, record: dict[str, Any]) -> bytes:
        try:
            raw = self._packer(record)  # the fast path of pack_record, without its call
        except Exception:  # noqa: BLE001  (pack_record's slow path decides what to keep)
            raw = pack_record(self._packer, record)
        if len(raw) > MAX_RECORD_BYTES:  # readers bound a frame by this (format.MAX_FRAME_RAW)
            raw = pack_record(self._packer, _shrink(record))
        return raw

    @property
    def unstarted(self) -> bool:
        """Nothing was written or tried yet: the file was created and a stop (Ctrl-C) came before its first
        record. (A first write that failed leaves the empty stub readers skip and ``fsck --repair`` removes.)"""
        return (self._pending is not None and self._fw.offset == 0 and not self._fw.cut_pending
                and not self._first_write_failed and not self.closed)

    @property
    def broken(self) -> str | None:
        """Why the file takes no more writes (a write failed and could not be rolled back), else None."""
        return self._fw.broken

    def _write(self, record: dict[str, Any], *, end_frame: bool = False, defer: bool = False,
               opens_with_snapshot: bool = False) -> None:
        if not self._frame_open:
            self._start_frame()
        raw = self._pack(record)
        if opens_with_snapshot:
            # At most MAX_RECORD_BYTES: a frame stays within frame_bytes plus two records (format.MAX_FRAME_RAW).
            self._frame_allow = len(raw)
        try:
            self._fw.write_raw(raw, finish=end_frame, head=self._pending, defer=defer)
        except TrajrecIOError:
            self._write_failed()
            raise
        self._pending = None
        if end_frame:
            self.frames[-1][3] = self._fw.offset
            self._frame_open = False
        elif self._fw.frame_raw - self._frame_allow >= self.frame_bytes:
            # Closing as soon as a frame is full, whatever the record, bounds a frame by frame_bytes plus its
            # opening snapshot and one write: the bound readers enforce (format.MAX_FRAME_RAW).
            self._end_frame()

    def _write_failed(self) -> None:
        """Bring the frame table in line after a write failed (the caller raises the error on)."""
        if self._pending is not None:
            self._first_write_failed = True
        if self._frame_open and not self._fw.in_frame:
            # The frame writer cut the file back and closed the frame at its last whole block (or dropped
            # the frame when none of it was on disk): the next record opens a new frame, whose first step
            # carries a full state snapshot, so the lost record leaves no gap in the state either.
            if self._fw.offset <= self.frames[-1][0]:
                self.frames.pop()
            else:
                self.frames[-1][3] = self._fw.offset
            self._frame_open = False

    def write_reset(self, record: dict[str, Any]) -> None:
        record = {"t": "reset", **record}
        self.summary.add_reset(record)
        self._write(record)

    def write_step(self, record: dict[str, Any], snapshot: Any = None, has_state: bool = False, *,
                   force_snapshot: bool = False, bare: bool = False) -> None:
        """Write step ``record``; ``snapshot`` (the state after this step) is stored when the step opens a frame
        or ``force_snapshot`` says the diff chain broke. ``bare``: the caller knows the record holds none of the
        optional fields (failure, retry_of, recovers, note, checks, recorder_errors), so the summary, the step
        marks and the index's step checks skip looking for them (~0.7 µs a step)."""
        if "t" not in record:
            record = {"t": "step", **record}
        frame_open = self._frame_open
        opens = not frame_open or self._frame_steps == 0
        if has_state and (force_snapshot or opens):
            record["snapshot"] = snapshot
        in_frame = self._frame_steps if frame_open else 0
        # A step that ends the episode or fills the frame closes it in the same write (one flush, not two).
        term, trunc = record.get("terminated"), record.get("truncated")
        last = ((term is True or (term is not False and truthy(term)))
                or (trunc is True or (trunc is not False and truthy(trunc))) or in_frame + 1 >= self.frame_steps)
        if frame_open and self._pending is None and not (has_state and opens):
            # The usual step (its frame is open, the header is out, no snapshot opens the frame).
            self._append_usual(record, last)
        else:
            self._write(record, end_frame=last, opens_with_snapshot=has_state and opens)
        self.frames[-1][2] += 1
        self._frame_steps = in_frame + 1
        self.steps += 1
        self.summary.add_step(record, bare)
        if bare:
            return
        if not record.keys().isdisjoint(_MARK_FIELDS):
            flags = step_mark(record)
            if flags:
                self._mark_last_step(flags)
        if "checks" in record:
            self.step_checks.extend({**c, "step": record["i"]} for c in record["checks"])

    def _append_usual(self, record: dict[str, Any], last: bool) -> None:
        """:meth:`_write` for a step in an open frame, the header out and no snapshot opening the frame: the record
        appended as the frame's next block (``last``: and the frame finished), the frame closed when full."""
        try:  # _pack inline
            raw = self._packer(record)
        except Exception:  # noqa: BLE001  (pack_record's slow path decides what to keep)
            raw = pack_record(self._packer, record)
        if len(raw) > MAX_RECORD_BYTES:
            raw = pack_record(self._packer, _shrink(record))
        fw = self._fw
        try:
            fw.append(raw, last)
        except TrajrecIOError:
            self._write_failed()
            raise
        if last:
            self.frames[-1][3] = fw.offset
            self._frame_open = False
        elif fw.frame_raw - self._frame_allow >= self.frame_bytes:
            self._end_frame()

    def _resume_usual(self, last: bool, raw: bytes, data: bytes, n: int, err: int) -> None:
        """:meth:`_append_usual` from where ``_cdiff.usual_write`` stopped: ``raw`` packed and compressed to ``data``
        (the compressor has it), of which one write took ``n`` bytes, or none when it failed with errno ``err``;
        nothing else changed. Goes on as :meth:`FrameWriter.append` does after its ``os.write``: the rest written,
        or the file cut back to the last whole block and :class:`TrajrecIOError` raised."""
        fw = self._fw
        fw.frame_raw += len(raw)
        start = fw.offset
        try:
            try:
                if err:
                    raise OSError(err, os.strerror(err))  # what os.write raises (the errno's OSError subclass)
                fw.offset = start + n
                if n < len(data):
                    fw._write_rest(fw._fd, data, n)
            except OSError as exc:
                fw._write_error(start, exc, True)
        except TrajrecIOError:
            self._write_failed()
            raise
        if last:
            fw._co = None
            fw._frame_chunks = []
            self.frames[-1][3] = fw.offset
            self._frame_open = False
        else:
            fw._frame_chunks.append(raw)
            if fw.frame_raw - self._frame_allow >= self.frame_bytes:  # (never: usual_write leaves such a record)
                self._end_frame()

    def write_usual_step(self, record: dict[str, Any], snapshot: Any = None, has_state: bool = False,
                         flags: int = 0, done: Any = None) -> None:
        """``write_step(record, snapshot, has_state, bare=not flags)`` for the usual step, in fewer operations: the
        same bytes, frame table, step marks and summary (``tests/recorder/test_usual_step.py`` compares the two).

        ``record`` must hold ``"t"`` and none of the optional fields but those ``flags`` (``step_mark(record)``)
        tells of: ``failure`` (a failure that is no exception: ``MARK_FAILURE``), ``retry_of`` (``MARK_RETRY``)
        and ``recovers`` (``MARK_RECOVERY``); never note, checks or recorder_errors (a ``diff`` may be there).
        Anything but the usual case (no open frame, the header not out yet, a frame to open with a state
        snapshot, flags or a reward that are not exactly bool and float, an exception's mark) goes to
        :meth:`write_step`.

        With the C extension, ``_cdiff.usual_write`` (:data:`_usual_write`) writes the usual step in one call; a step
        it does not take (see recorder/_cdiff.c) is written by the Python below, and a write it began that stopped
        short (a full disk) goes on in :meth:`_resume_usual`, as :meth:`FrameWriter.append` would. ``done``: its
        answer for this record when the caller asked it already (the Recorder does, a Python call less a step):
        False (not taken) or a tuple (the write stopped short); None: not asked yet.
        """
        if done is None and _usual_write is not None:
            done = _usual_write(self, record, has_state, flags)
            if done is True:
                return
        term = record["terminated"]
        trunc = record["truncated"]
        reward = record["reward"]
        in_frame = self._frame_steps
        # (A tuple from the C write: it found the usual case, and the compressor holds the record already.)
        if not done and (not self._frame_open or self._pending is not None or (has_state and in_frame == 0)
                         or type(term) is not bool or type(trunc) is not bool or type(reward) is not float
                         or flags & MARK_EXCEPTION):
            self.write_step(record, snapshot, has_state, bare=not flags)
            return
        last = term or trunc or in_frame + 1 >= self.frame_steps
        frame = self.frames[-1]
        if done:  # (raw, data, n, errno): the C write stopped short
            self._resume_usual(last, *done)
        else:
            self._append_usual(record, last)
        frame[2] += 1
        self._frame_steps = in_frame + 1
        self.steps += 1
        # SummaryBuilder.add_step(record, bare=not flags) for exact bools and a float reward, without its call.
        summary = self.summary
        summary.steps += 1
        summary.last_step = record["i"]
        summary.ret += reward
        summary.terminated = term
        summary.truncated = trunc
        summary.end_time = record["time"]
        if flags:
            # What SummaryBuilder._add_optional counts and write_step marks for these three fields.
            if flags & MARK_FAILURE:
                summary.failures += 1
            if flags & MARK_RETRY:
                summary.retries += 1
            if flags & MARK_RECOVERY:
                summary.recoveries += 1
            self._mark_last_step(flags)

    def _mark_last_step(self, flags: int) -> None:
        """Add the step just written, with its ``MARK_*`` ``flags``, to the index's step marks."""
        pos = self.steps - 1
        self.step_marks += (pos - self._last_mark, flags)
        self._last_mark = pos

    def write_check(self, check: dict[str, Any]) -> None:
        record = {"t": "check", **check}
        self._write(record)
        self.checks.append(check)
        self.summary.add_check(check)

    def index(self, *, finished: bool = True, summary: dict[str, Any] | None = None) -> dict[str, Any]:
        """The index as readers see it (``read_index``); ``summary``: already made by the caller."""
        header = {k: v for k, v in self.header.items() if k != "t"}
        frames = [f for f in self.frames if f[2] or f[0] == 0]
        return {
            "version": FORMAT_VERSION,
            "steps": self.steps,
            "frames": frames,
            "header": header,
            "summary": summary if summary is not None else self.summary.to_dict(finished=finished),
            "checks": self.checks,
            "step_checks": self.step_checks,
            "step_marks": self.step_marks,
        }

    def _compact_index(self, summary: dict[str, Any]) -> dict[str, Any]:
        """``format.compact_index(self.index(summary=summary), head)`` built from the writer's own lists, without
        the index dict (and its header copy) in between: the same dict, key for key (a test compares them)."""
        flat: list[int] = []
        end = 0
        for offset, _first, n, stop in self.frames:
            if n or offset == 0:
                flat += (offset - end, n, stop - offset)
                end = stop
        head = self._head
        out: dict[str, Any] = {"v": FORMAT_VERSION, "f": flat, "hc": zlib.crc32(head), "hl": len(head), "s": summary}
        if self.checks:
            out["c"] = self.checks
        if self.step_checks:
            out["sc"] = self.step_checks
        out["m"] = self.step_marks
        return out

    def _pack_index(self, compact: dict[str, Any]) -> bytes:
        return pack_record(self._packer, compact)

    def close(self) -> dict[str, Any]:
        """Write the end record and the index; return the summary. Safe to call twice.

        A file already :attr:`broken` by a failed write (the caller got that error) is closed without an index
        and with a warning, not a second error: what it holds reads as a crashed file does.

        When writing the end record and index fails (a full disk, a file-size limit), the file is cut back to its
        last step and closed, and :class:`TrajrecIOError` says so. Calling ``close()`` again retries that one
        write, the same bytes at the same place (nothing else is written again): once there is room, the file is
        byte for byte what a first close that succeeded would have made (:attr:`close_failed` until then).
        """
        if self.closed:
            if self._tail is not None:
                self._write_tail_again()
            return self.summary.to_dict(finished=True)
        summary = self.summary.to_dict(finished=True)
        if self._pending is not None and self._fw.offset == 0 and not self._fw.cut_pending:
            # Nothing ever reached the file (its first write, the header and reset, failed and was cut back): it
            # stays the empty stub readers skip and `fsck --repair` removes, not a header with no reset in it.
            self.closed = True
            self._close_fd()
            return summary
        if self.broken:
            self.closed = True
            self._close_fd()
            warnings.warn(f"episode file {self.path} was closed without its index after a failed write "
                          f"({self.broken}); its records are readable, `trajrec fsck --repair {self.path}` adds "
                          "the index", RuntimeWarning, stacklevel=2)
            return summary
        tail = None
        try:
            # The summary is in the index (version 3 no longer repeats it here: ~200 bytes a file).
            # Written with the index, in one system call (a file's fixed cost counts on short episodes).
            end = {"t": "end", "time": time.time()}
            if self._frame_open or self._fw.cut_pending or self._pending is not None:
                self._write(end, end_frame=True, defer=True)  # (a header that could not go out goes with it)
            else:  # the usual case (the last step closed its frame): the end record's frame in one call
                self.frames.append([self._fw.offset, self.steps, 0, -1])
                self._fw.defer_frame(self._pack(end))
                self.frames[-1][3] = self._fw.offset
            self._fw.end_frame()  # (none is open: the end record closed its frame)
            tail = self._fw.take_deferred() + compact_index_frame(self._compact_index(summary), self._pack_index)
            self._fw.write_tail(tail)
        except TrajrecIOError as exc:
            if tail is not None and not self.broken:
                # Cut back to where the tail goes: a second close() writes these same bytes there.
                self._tail = tail
            raise self._close_error(exc) from exc
        finally:
            self.closed = True
            self._close_fd()
        return summary

    @property
    def close_failed(self) -> bool:
        """:meth:`close` could not write the end record and index; calling it again retries that write."""
        return self._tail is not None

    def _write_tail_again(self) -> None:
        assert self._tail is not None
        try:
            self._fw.write_tail_again(self._tail)
        except TrajrecIOError as exc:
            if "changed since" in str(exc):
                self._tail = None  # not ours to write any more: said once
                raise
            raise self._close_error(exc) from exc
        self._tail = None

    def _close_error(self, exc: TrajrecIOError) -> TrajrecIOError:
        again = ("call close() again once there is space (it writes only those), or "
                 if self._tail is not None else "")
        return TrajrecIOError(f"{str(exc).split(' Free disk space')[0]} The file is closed without its end record and "
                              f"index; every step recorded is readable: {again}`trajrec fsck --repair {self.path}` "
                              "adds the index once there is space")

    def _close_fd(self) -> None:
        try:
            self._fw.close()
        except OSError as exc:
            raise TrajrecIOError(f"cannot close episode file {self.path}: {exc.strerror}") from exc

    def abort(self) -> None:
        """Close the file without an index (used when writing already failed)."""
        self.closed = True
        self._close_fd()


if not os.environ.get("TRAJREC_PURE_PYTHON"):
    try:
        from . import _cdiff
    except ImportError:  # pragma: no cover  (installed without a C compiler)
        _cdiff = None  # type: ignore[assignment]
    if _cdiff is not None and getattr(_cdiff, "usual_setup", None) is not None and _cdiff.usual_setup(
            EpisodeWriter, FrameWriter, SummaryBuilder, os.write, _FLUSH_BLOCK, _FLUSH_FINISH, MAX_RECORD_BYTES):
        _usual_write = _cdiff.usual_write


def _shrink(record: dict[str, Any]) -> dict[str, Any]:
    """Replace the largest fields of a record over the format's record limit by marked fallbacks."""
    from .codec import CodecWarning  # noqa: PLC0415  (a rare path)

    sizes = sorted(((len(pack_record(packb, v)), k) for k, v in record.items() if k not in ("t", "i")), reverse=True)
    out = dict(record)
    total = sum(n for n, _ in sizes)
    for n, key in sizes:
        if total <= MAX_RECORD_BYTES - (1 << 20):
            break
        value = record[key]
        out[key] = Unencodable(f"{type(value).__module__}.{type(value).__qualname__}",
                               f"<{n} bytes: over the episode format's {MAX_RECORD_BYTES >> 20} MiB record limit>")
        total -= n
        warnings.warn(f"trajrec: field {key!r} of a {record.get('t')} record packs to {n} bytes, over the format's "
                      f"{MAX_RECORD_BYTES >> 20} MiB record limit; stored as a marked fallback", CodecWarning,
                      stacklevel=4)
    return out


def pack_record(pack: Callable[[Any], bytes], record: Any) -> bytes:
    """Pack ``record``; when it holds something msgpack refuses, pack it again with only those parts replaced.

    The fast path is one ``pack``. On failure (a lone surrogate, a self-reference, a value whose conversion
    raises), :func:`~trajrec.recorder.codec.sanitize` keeps every encodable part exactly, stores strings with
    lone surrogates losslessly and marks only the rest as fallbacks. A record can therefore always be written.
    """
    try:
        return pack(record)
    except Exception:  # noqa: BLE001  (msgpack and user objects raise many unrelated types; the slow path decides)
        pass
    try:
        return pack(sanitize(record))
    except Exception as exc:  # noqa: BLE001  (the last resort must not fail: it keeps what it can, field by field)
        out: dict[str, Any] = {}
        for key, value in (record.items() if isinstance(record, dict) else [("value", record)]):
            key = key if type(key) is str else bounded_repr(key)
            try:
                pack(sanitize(value))
                out[key] = sanitize(value)
            except Exception:  # noqa: BLE001
                out[key] = Unencodable(*fallback_payload(value, f"a value that could not be encoded ({exc})"))
        return pack(out)
