"""Checking and repairing episode files (``trajrec fsck``)."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import TrajrecFormatError
from .format import FORMAT_VERSION, compress_frame, iter_frames, map_file, write_index_to
from .reader import read_index


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
    except (TrajrecFormatError, OSError) as exc:
        return FsckReport(path, ok=False, complete=False, error=str(exc))
    report = FsckReport(path, ok=index["complete"] and not index["damage"], complete=index["complete"],
                        steps=int(index.get("steps", 0)), damage=list(index["damage"]))
    if repair and not report.ok:
        report.backup = _repair(path, index)
        report.repaired = True
    return report


def _repair(path: str, index: dict[str, Any]) -> str | None:
    tmp = f"{path}.fsck-tmp"
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
                        from .format import packb  # noqa: PLC0415

                        out.write(compress_frame([packb(r) for r in records]))
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
                write_index_to(path, repaired, out.fileno())
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
