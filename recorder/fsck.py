"""Checking and repairing episode files (``trajrec fsck``)."""

from __future__ import annotations

import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from .errors import EmptyEpisodeError, TrajrecFormatError
from .format import FORMAT_VERSION, compress_frame, iter_frames, lock_file, map_file, packb, write_index_to
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

    Repair keeps every readable record: whole frames are copied byte for byte, a frame the writer left open is
    closed by re-encoding its whole records, then the index is appended. The new file replaces the old one
    atomically. When unreadable bytes had to be dropped, the original is kept beside it as ``FILE.orig``.
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
    report = FsckReport(path, ok=index["complete"] and not index["damage"], complete=index["complete"],
                        steps=int(index.get("steps", 0)), damage=list(index["damage"]))
    if not report.ok and is_locked(path):
        report.live = True
        report.damage.insert(0, "a live Recorder is writing this file (it holds the file's lock): it is not "
                                "finished yet, not damaged")
    if repair and not report.ok:
        with _unlocked(path, report) as free:
            if free:
                report.backup = _repair(path, index)
                report.repaired = True
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


def _repair(path: str, index: dict[str, Any]) -> str | None:
    tmp = f"{path}.fsck-tmp"
    try:
        return _rewrite(path, tmp, index)
    except BaseException:
        try:
            os.unlink(tmp)  # a half-written copy must not be left behind (the original is untouched)
        except OSError:
            pass
        raise


def _rewrite(path: str, tmp: str, index: dict[str, Any]) -> str | None:
    frames: list[list[int]] = []
    dropped = any("unreadable" in d for d in index["damage"])
    with open(path, "rb") as src:
        buf = map_file(src)
        try:
            with open(tmp, "wb") as out:
                for offset, stop, complete, records, _leftover in iter_frames(buf, path, 0, index["readable_end"]):
                    new_offset = out.tell()
                    if complete:
                        out.write(bytes(memoryview(buf)[offset:stop]))
                    else:
                        out.write(compress_frame([pack_record(packb, r) for r in records]))
                    n = sum(1 for r in records if r.get("t") == "step")
                    first = frames[-1][1] + frames[-1][2] if frames else 0
                    frames.append([new_offset, first, n, out.tell()])
                out.flush()
                repaired = {
                    "version": FORMAT_VERSION,
                    "steps": index["steps"],
                    "frames": frames,
                    "header": index["header"],
                    "summary": index["summary"],
                    "checks": index.get("checks", []),
                    "step_checks": index.get("step_checks", []),
                    "repaired": {"time": time.time(), "damage": index["damage"]},
                }
                write_index_to(path, repaired, out.fileno(), pack=lambda idx: pack_record(packb, idx))
                out.flush()
                os.fsync(out.fileno())
        finally:
            if hasattr(buf, "close"):
                buf.close()
    backup = None
    if dropped:
        backup = f"{path}.orig"
        shutil.copy2(path, backup)
    os.replace(tmp, path)
    return backup
