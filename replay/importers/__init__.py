"""Import trajectories recorded by other tools as trajrec episodes: ``trajrec import FORMAT|auto PATH... --out RUN``.

One module per source format; each maps its fields onto the record (task, behavior, checks, provenance), keeps
what has no place under ``extra`` and reports both. Episodes are written with the project's own writer, so
``ls``, ``view``, ``label``, ``export`` and ``fsck`` work on them; ``replay`` refuses them (their env is not
trajrec's to rebuild). See ``docs/IMPORT.md``.

>>> sorted(IMPORTERS)
['atif', 'inspect', 'minari', 'mini-swe-agent', 'openhands', 'swe-agent']
"""

from __future__ import annotations

import difflib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from trajrec.recorder.errors import TrajrecUsageError

from .base import IMPORTER_VERSION, FieldReport, ImportedEpisode, ImportedStep, Importer, SourceFile, ensure_dir, \
    new_run_id, write_episode
from .jsonstream import ImportFormatError, JsonStream

__all__ = ["IMPORTERS", "IMPORTER_VERSION", "FieldReport", "ImportFormatError", "ImportReport", "ImportedEpisode",
           "ImportedStep", "Importer", "JsonStream", "detect", "get_importer", "import_paths"]


def _load(module: str, cls: str) -> Callable[[], type[Importer]]:
    def load() -> type[Importer]:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{module}"), cls)  # type: ignore[no-any-return]

    return load


#: FORMAT name -> loader of its Importer class (modules load on first use).
IMPORTERS: dict[str, Callable[[], type[Importer]]] = {
    "swe-agent": _load("sweagent", "SweAgentImporter"),
    "mini-swe-agent": _load("minisweagent", "MiniSweAgentImporter"),
    "inspect": _load("inspect_ai", "InspectImporter"),
    "atif": _load("atif", "AtifImporter"),
    "openhands": _load("openhands", "OpenHandsImporter"),
    "minari": _load("minari_ds", "MinariImporter"),
}

# Most specific first: an ATIF file or an mini-swe-agent file is also "some JSON".
_DETECT_ORDER = ("minari", "atif", "mini-swe-agent", "inspect", "swe-agent", "openhands")


def get_importer(name: str) -> type[Importer]:
    """The importer class of FORMAT ``name``; an unknown name raises with the nearest known one."""
    loader = IMPORTERS.get(name)
    if loader is None:
        near = difflib.get_close_matches(str(name), list(IMPORTERS), n=1, cutoff=0.4)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise TrajrecUsageError(f"unknown import format {name!r}{hint}; formats: auto, {', '.join(IMPORTERS)}")
    return loader()


def detect(path: str | os.PathLike[str]) -> tuple[str, str]:
    """``(format, reason)`` for a source file, from its name and first 64 KiB.

    Raises:
        ImportFormatError: no importer recognizes the file (the message lists what was looked for).
    """
    p = Path(path)
    if p.is_dir():
        if (p / "data").is_dir() and any(p.glob("**/*.json")) and any(p.glob("**/*.arrow")) or \
                any(p.glob("data/main_data.hdf5")):
            return "minari", "a folder with a Minari dataset layout (data/)"
        if any(q.stem.isdigit() for q in p.glob("*.json")):
            return "openhands", "a folder of numbered event files (OpenHands events/)"
        raise ImportFormatError(p, None, "is a folder; pass the trajectory files themselves (or a Minari dataset "
                                "folder), e.g. runs/*.traj")
    try:
        with p.open("rb") as fh:
            head = fh.read(1 << 16)
    except OSError as exc:
        raise ImportFormatError(p, None, f"cannot read: {exc.strerror or exc}") from exc
    for name in _DETECT_ORDER:
        if name == "minari":
            continue
        reason = get_importer(name).detect(p, head)
        if reason:
            return name, reason
    raise ImportFormatError(p, None, "format not recognized (looked for SWE-agent .traj, mini-swe-agent .traj.json, "
                            "Inspect .eval/.json, ATIF schema_version, OpenHands events); name the format: "
                            f"trajrec import FORMAT {p}")


@dataclass
class FileResult:
    """What importing one source file did."""

    path: str
    format: str
    detected: str | None
    sha256: str
    episodes: list[str] = field(default_factory=list)
    steps: int = 0
    error: str | None = None


@dataclass
class ImportReport:
    """What an import did: per file the format (and why ``auto`` chose it), the episodes written, and the fields
    mapped and kept as ``extra``."""

    out: str
    run_id: str
    files: list[FileResult] = field(default_factory=list)
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def episodes(self) -> int:
        return sum(len(f.episodes) for f in self.files)

    @property
    def steps(self) -> int:
        return sum(f.steps for f in self.files)

    @property
    def errors(self) -> list[FileResult]:
        return [f for f in self.files if f.error]

    def to_dict(self) -> dict[str, Any]:
        return {"out": self.out, "run_id": self.run_id, "episodes": self.episodes, "steps": self.steps,
                "seconds": round(self.seconds, 3),
                "files": [{"path": f.path, "format": f.format, "detected": f.detected, "sha256": f.sha256,
                           "episodes": f.episodes, "steps": f.steps, "error": f.error} for f in self.files],
                "fields": self.fields}


def import_paths(fmt: str, paths: Iterable[str | os.PathLike[str]], out: str | os.PathLike[str], *,
                 run_id: str | None = None, keep_going: bool = False,
                 on_episode: Callable[[Path, dict[str, Any]], None] | None = None) -> ImportReport:
    """Import the source files ``paths`` in format ``fmt`` (or ``"auto"``) into the run folder ``out``.

    Each episode is written under a temporary name and renamed when complete; a malformed source file raises
    :class:`ImportFormatError` naming the file and the field (with ``keep_going``, it is recorded in the report
    and the next file is imported). Memory stays flat in the size of a file: sources are streamed.

    Returns:
        An :class:`ImportReport`.
    """
    if fmt != "auto":
        get_importer(fmt)
    paths = [Path(p) for p in paths]
    if not paths:
        raise TrajrecUsageError("no files to import; pass one or more trajectory files")
    out_dir = ensure_dir(out)
    report = ImportReport(out=os.fspath(out_dir), run_id=run_id or new_run_id())
    t0 = time.perf_counter()
    by_format: dict[str, FieldReport] = {}
    for path in paths:
        detected = None
        name = fmt
        try:
            if fmt == "auto":
                name, detected = detect(path)
            importer = get_importer(name)()
            source = SourceFile(path, must_exist=not importer.accepts_ids)
            result = FileResult(os.fspath(path), name, detected, "")
            report.files.append(result)
            for episode in importer.read(source):
                final, summary = write_episode(importer, source, episode, out_dir, run_id=report.run_id)
                result.episodes.append(final.name)
                result.steps += int(summary.get("steps") or 0)
                if on_episode is not None:
                    on_episode(final, summary)
            result.sha256 = source.sha256 or ""
            by_format.setdefault(name, FieldReport()).merge(importer.fields)
        except ImportFormatError as exc:
            if not keep_going:
                raise
            if not report.files or report.files[-1].path != os.fspath(path):
                report.files.append(FileResult(os.fspath(path), name, detected, ""))
            report.files[-1].error = str(exc)
    report.fields = {k: v.to_dict() for k, v in by_format.items()}
    report.seconds = time.perf_counter() - t0
    return report
