"""Checking and repairing episode files (``trajrec fsck``)."""

from __future__ import annotations

import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from .errors import EmptyEpisodeError, TrajrecFormatError, TrajrecIOError
from .format import (FORMAT_VERSION, compress_frame, decompress_bounded, first_record_bytes, iter_frames, lock_file,
                     map_file, packb, write_index_to)
from .reader import read_index
from .writer import pack_record


@dataclass
class FsckReport:
    """What :func:`fsck` found in one file."""

    path: str
    ok: bool
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

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def fsck(path: str | os.PathLike[str], *, repair: bool = False) -> FsckReport:
    """Check one episode file; with ``repair``, rewrite a missing or damaged index.

    The check reads the index (or scans a file without one), then decompresses and verifies every frame (zstd
    checksums in format version 2) and every record's fields, listing the damaged steps.

    Repair keeps every readable record: whole frames are copied byte for byte, a frame the writer left open is
    closed by re-encoding its whole records, then the index is appended. The new file replaces the old one
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
        return FsckReport(path, ok=False, complete=False, error=str(exc))
    damage = list(index["damage"])
    if index["complete"]:
        damage.extend(_verify(path, index))
    report = FsckReport(path, ok=index["complete"] and not damage, complete=index["complete"],
                        steps=int(index.get("steps", 0)), damage=damage)
    if not report.ok and is_locked(path):
        report.live = True
        report.damage.insert(0, "a live Recorder is writing this file (it holds the file's lock): it is not "
                                "finished yet, not damaged")
    if repair and not report.ok:
        with _unlocked(path, report) as free:
            if free:
                if index["complete"]:
                    # The index is sound but frames are damaged: rebuild from what a scan can read.
                    index = _scan(path)
                try:
                    report.backup = _repair(path, index)
                    report.repaired = True
                except TrajrecIOError as exc:  # a link or a file in the way of the temporary name
                    report.error = str(exc)
    return report


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


def _verify(path: str, index: dict[str, Any]) -> list[str]:
    """Decode every frame and record of an indexed file; describe each damaged range of steps."""
    from .reader import Episode  # noqa: PLC0415  (reader imports this module's neighbours)

    damage: list[str] = []
    try:
        ep = Episode(path)
    except TrajrecFormatError as exc:
        return [str(exc)]
    with ep:
        try:
            _ = ep.reset
        except TrajrecFormatError as exc:
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
                damage.append(f"steps {first}..{first + n - 1} unreadable: {exc}")
                continue
            if has_state:
                try:  # the frame's state diffs apply, in turn, to the state they were recorded against
                    ep.state_at(first + n - 1)
                except TrajrecFormatError as exc:
                    damage.append(f"steps {first}..{first + n - 1}: state cannot be rebuilt: {exc}")
        # Frames the index does not list (checks and the end record) are checked by walking the whole file.
        start = index.get("index_offset")
        buf = map_file(ep._fh)
        try:
            listed = {f[0] for f in ep._frames} | {0}
            for _offset, _stop, _complete, _records, _left in iter_frames(buf, path, 0, start):
                pass
        except TrajrecFormatError as exc:
            if exc.offset not in listed:
                damage.append(f"a frame not holding steps is damaged: {exc}")
        finally:
            if hasattr(buf, "close"):
                buf.close()
    return damage


def _scan(path: str) -> dict[str, Any]:
    from .reader import scan_file  # noqa: PLC0415

    with open(path, "rb") as fh:
        result = scan_file(path, fh, closed=True)
    result["complete"] = False
    return result


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


def _rewrite(path: str, tmp: str, out: Any, index: dict[str, Any]) -> str | None:
    frames: list[list[int]] = []
    dropped = any("unreadable" in d for d in index["damage"])
    version = (index.get("header") or {}).get("version", FORMAT_VERSION)
    head: bytes | None = None  # the header record's packed bytes: a version-3 index carries their CRC-32
    with open(path, "rb") as src:
        buf = map_file(src)
        try:
            with out:
                for offset, stop, complete, records, _leftover in iter_frames(buf, path, 0, index["readable_end"]):
                    new_offset = out.tell()
                    if complete:
                        out.write(bytes(memoryview(buf)[offset:stop]))
                        if not frames and isinstance(version, int) and version >= 3:
                            head = first_record_bytes(decompress_bounded(memoryview(buf)[offset:stop])[0])
                    else:
                        raws = [pack_record(packb, r) for r in records]
                        out.write(compress_frame(raws))  # one block per record: the header is a block of its own
                        if not frames:
                            head = raws[0]
                    n = sum(1 for r in records if r.get("t") == "step")
                    first = frames[-1][1] + frames[-1][2] if frames else 0
                    frames.append([new_offset, first, n, out.tell()])
                out.flush()
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
                # A file keeps its version's index layout (versions 1 and 2: the whole index, header copy included).
                write_index_to(path, repaired, out.fileno(), pack=lambda idx: pack_record(packb, idx),
                               head=head if isinstance(version, int) and version >= 3 else None)
                out.flush()
                os.fsync(out.fileno())
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
