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
    is_gzip, new_run_id, read_head, write_episode
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


_FOLDER_HINT = ("is a folder; pass the trajectory files themselves (or a Minari dataset folder, an OpenHands "
                "events/ folder, a folder of ATIF files), e.g. runs/*.traj")


def folder_sources(fmt: str, path: Path) -> list[Path] | None:
    """The files a folder passed as a source stands for, or None (not a folder, a folder that is a source itself:
    a Minari dataset, an OpenHands ``events/`` folder; or a folder with none of the format's files, which the
    import then refuses naming the folder, as :func:`check_folder` says).

    A folder of ATIF files (what ``trajrec export --format atif --out DIR/`` writes) stands for its
    ``*.json``/``*.jsonl`` files (not hidden ones), in name order; with ``auto`` when the folder's first such file
    is detected as ATIF.
    """
    if not path.is_dir():
        return None
    if fmt == "auto":
        try:
            detect(path)
            return None  # a folder that is a source (Minari, OpenHands events/)
        except ImportFormatError:
            detected = "atif"
    else:
        detected = fmt
    importer = get_importer(detected)
    if importer.reads_folders:
        return None
    files = sorted({q for pattern in importer.folder_files for q in path.glob(pattern)
                    if q.is_file() and not q.name.startswith(".")})
    if fmt == "auto" and files:
        try:
            ok = detect(files[0])[0] == detected
        except ImportFormatError:
            ok = False
        files = files if ok else []
    return files or None


def check_folder(importer: type[Importer], path: Path) -> None:
    """Refuse a folder as a source of a format that reads files (the message ``auto`` gives, not an OS error).

    Raises:
        ImportFormatError: naming the folder and saying to pass the files.
    """
    if path.is_dir() and not importer.reads_folders:
        what = f" (no {importer.description} in it)" if importer.folder_files else ""
        raise ImportFormatError(path, None, _FOLDER_HINT + what)


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
        raise ImportFormatError(p, None, _FOLDER_HINT)
    head = read_head(p)
    gz = is_gzip(p)
    # A gzip file is detected by what it holds, under its name without ".gz" (x.traj.json.gz is a .traj.json).
    inner = p.with_name(p.name.removesuffix(".gz")) if gz else p
    for name in _DETECT_ORDER:
        if name == "minari":
            continue
        reason = get_importer(name).detect(inner, head)
        if reason:
            return name, (f"gzip-compressed; {reason}" if gz else reason)
    raise ImportFormatError(p, None, "format not recognized (looked for SWE-agent .traj, mini-swe-agent .traj.json, "
                            "Inspect .eval/.json, ATIF schema_version, OpenHands events); name the format: "
                            f"trajrec import FORMAT {p}")


@dataclass
class FileResult:
    """What importing one source file did: ``skipped`` says why it was not imported (already imported into the
    run, per its SHA-256), ``error`` why it failed (then none of its episodes were kept)."""

    path: str
    format: str
    detected: str | None
    sha256: str
    episodes: list[str] = field(default_factory=list)
    steps: int = 0
    error: str | None = None
    skipped: str | None = None


@dataclass
class ImportReport:
    """What an import did: per file the format (and why ``auto`` chose it), the episodes written, and the fields
    mapped and kept as ``extra``."""

    out: str
    run_id: str
    files: list[FileResult] = field(default_factory=list)
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0
    removed: int = 0  # episode files deleted first (``overwrite``)

    @property
    def episodes(self) -> int:
        return sum(len(f.episodes) for f in self.files)

    @property
    def steps(self) -> int:
        return sum(f.steps for f in self.files)

    @property
    def errors(self) -> list[FileResult]:
        return [f for f in self.files if f.error]

    @property
    def skipped(self) -> list[FileResult]:
        return [f for f in self.files if f.skipped]

    def to_dict(self) -> dict[str, Any]:
        return {"out": self.out, "run_id": self.run_id, "episodes": self.episodes, "steps": self.steps,
                "seconds": round(self.seconds, 3), "removed": self.removed,
                "files": [{"path": f.path, "format": f.format, "detected": f.detected, "sha256": f.sha256,
                           "episodes": f.episodes, "steps": f.steps, "error": f.error, "skipped": f.skipped}
                          for f in self.files],
                "fields": self.fields}


def imported_sources(out: str | os.PathLike[str]) -> tuple[list[Path], dict[str, str]]:
    """The episode files directly in ``out`` (sorted) and, of those imported, ``{source sha256: episode file}``
    (from ``provenance.imported_from.sha256``). A file that cannot be read counts as a file but gives no source."""
    from trajrec.recorder import SUFFIX, read_index
    from trajrec.recorder.errors import TrajrecError

    folder = Path(out)
    if not folder.is_dir():
        return [], {}
    files = sorted(p for p in folder.glob(f"*{SUFFIX}") if p.is_file() and not p.is_symlink())
    shas: dict[str, str] = {}
    for path in files:
        try:
            prov = (read_index(os.fspath(path)).get("header") or {}).get("provenance") or {}
        except (TrajrecError, OSError):
            continue
        sha = (prov.get("imported_from") or {}).get("sha256") if isinstance(prov, dict) else None
        if isinstance(sha, str):
            shas.setdefault(sha, path.name)
    return files, shas


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _stopped(exc: ImportFormatError, report: ImportReport) -> ImportFormatError:
    done = [f for f in report.files if f.episodes]
    if done:
        names = ", ".join(Path(f.path).name for f in done[:3]) + (" ..." if len(done) > 3 else "")
        before = (f"already imported and kept in {report.out}: {_plural(len(done), 'file')} "
                  f"({_plural(report.episodes, 'episode')}): {names}; fix or leave out this file and rerun with "
                  "--resume to import the rest")
    else:
        before = "no file was imported"
    return ImportFormatError(exc.path, exc.field, f"{exc.reason} [import stopped at this file, none of its episodes "
                             f"kept; {before}; --keep-going skips bad files]", exc.offset)


def import_paths(fmt: str, paths: Iterable[str | os.PathLike[str]], out: str | os.PathLike[str], *,
                 run_id: str | None = None, keep_going: bool = False, resume: bool = False, overwrite: bool = False,
                 on_episode: Callable[[Path, dict[str, Any]], None] | None = None) -> ImportReport:
    """Import the source files ``paths`` in format ``fmt`` (or ``"auto"``) into the run folder ``out``.

    Like ``trajrec record``, a folder that already holds episode files is only imported into with ``resume``
    (sources whose SHA-256 an episode's ``provenance.imported_from`` records are skipped) or ``overwrite`` (its
    episode files are deleted first; label files stay). A source given twice (same content) is imported once.

    Each file is imported all or nothing: its episodes are written under temporary names and renamed when
    complete, and when the file turns out malformed the episodes already written from it are removed. Then
    :class:`ImportFormatError` is raised naming the file, the field and the files imported before it (they stay);
    with ``keep_going`` the error is recorded in the report and the next file is imported. Memory stays flat in
    the size of a file: sources are streamed.

    Returns:
        An :class:`ImportReport`.

    Raises:
        ImportFormatError: a malformed source file (without ``keep_going``).
        TrajrecUsageError: no paths, an unknown format, or ``out`` holds episodes and neither ``resume`` nor
            ``overwrite`` was given.
    """
    if fmt != "auto":
        get_importer(fmt)
    if resume and overwrite:
        raise TrajrecUsageError("pass --resume or --overwrite, not both")
    paths = [Path(p) for p in paths]
    # A folder of files (ATIF documents an export wrote) stands for its files, each imported and reported as one.
    paths = [q for p in paths for q in (folder_sources(fmt, p) or [p])]
    if not paths:
        raise TrajrecUsageError("no files to import; pass one or more trajectory files")
    files, done = imported_sources(out)
    removed = 0
    if files:
        if overwrite:
            for f in files:
                os.remove(f)
            removed, done = len(files), {}
        elif not resume:
            raise TrajrecUsageError(
                f"{out} already holds {_plural(len(files), 'episode file')}; importing into it again could add "
                "duplicates. Pass --resume to import only the sources not imported yet (matched by SHA-256), "
                "--overwrite to delete those files first, or another folder")
    created = [p for p in (Path(out), *Path(out).parents) if not p.exists()]  # deepest first
    out_dir = ensure_dir(out)
    try:
        report = _import_into(fmt, paths, out_dir, done, run_id, keep_going, removed, on_episode)
    except BaseException:
        _remove_empty(created)  # a failed import leaves no empty folder behind
        raise
    if not report.episodes:
        _remove_empty(created)
    return report


def _remove_empty(created: list[Path]) -> None:
    """Remove the folders an import created (deepest first) that are still empty; a folder holding anything stays."""
    for folder in created:
        try:
            folder.rmdir()
        except OSError:
            return


def _import_into(fmt: str, paths: list[Any], out_dir: Path, done: dict[str, str], run_id: str | None,
                 keep_going: bool, removed: int, on_episode: Any) -> ImportReport:
    report = ImportReport(out=os.fspath(out_dir), run_id=run_id or new_run_id(), removed=removed)
    t0 = time.perf_counter()
    by_format: dict[str, FieldReport] = {}
    try:
        _import_files(fmt, paths, out_dir, done, keep_going, on_episode, report, by_format)
    except KeyboardInterrupt as exc:
        # What is in the folder now: the files of the sources imported whole (one cut short left nothing).
        exc.imported = sum(len(f.episodes) for f in report.files)  # type: ignore[attr-defined]
        raise
    report.fields = {k: v.to_dict() for k, v in by_format.items()}
    report.seconds = time.perf_counter() - t0
    return report


def _import_files(fmt: str, paths: list[Any], out_dir: Path, done: dict[str, str], keep_going: bool,
                  on_episode: Any, report: ImportReport, by_format: dict[str, FieldReport]) -> None:
    for path in paths:
        result = FileResult(os.fspath(path), fmt, None, "")
        report.files.append(result)
        try:
            if fmt == "auto":
                result.format, result.detected = detect(path)
            cls = get_importer(result.format)
            check_folder(cls, Path(path))
            importer = cls()
            source = SourceFile(path, must_exist=not importer.accepts_ids)
            sha = source.sha256
            if sha is not None and sha in done:
                result.sha256 = sha
                result.skipped = f"already imported (same SHA-256 as {done[sha]})"
                continue
            try:
                try:
                    for episode in importer.read(source):
                        final, summary = write_episode(importer, source, episode, out_dir, run_id=report.run_id,
                                                       written=result.episodes)
                        result.steps += int(summary.get("steps") or 0)
                        if on_episode is not None:
                            on_episode(final, summary)
                except UnicodeDecodeError as exc:  # a reader the importer did not guard
                    raise ImportFormatError(path, None, f"not UTF-8 text: expected {importer.description}") from exc
            except BaseException:
                for name in result.episodes:  # all or nothing per file: --resume then imports it whole
                    try:
                        os.unlink(out_dir / name)
                    except OSError:
                        pass
                result.episodes, result.steps = [], 0
                raise
            result.sha256 = sha or ""
            if sha is not None:
                done[sha] = result.episodes[0] if result.episodes else os.fspath(path)
            by_format.setdefault(result.format, FieldReport()).merge(importer.fields)
        except ImportFormatError as exc:
            if not keep_going:
                report.files.pop()
                raise _stopped(exc, report) from exc
            result.error = str(exc)
