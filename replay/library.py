"""The episode library: episode files under folders, one summary row each, a summary cache, and filters.

Nothing here draws anything: ``trajrec view`` builds its library screen on :func:`scan` (batches of
:class:`EpisodeEntry`, for a thread worker to stream into the table), :func:`parse_filter` and
:func:`sort_entries`.

Summaries come from :func:`trajrec.recorder.read_index`, which reads only a file's tail. A folder's summaries are also
kept in ``<folder>/.trajrec/catalog.msgpack`` keyed by relative path, mtime and size, so reopening a big run
on a cold disk reads one file instead of ten thousand tails. The cache is a pure accelerator: a damaged or
unwritable cache is ignored (and said so), never trusted over a file that changed.

>>> f = parse_filter("env:shell faulty -outcome:passed")
>>> f.matches(EpisodeEntry(path="a", episode_id="a", env_id="trajrec/Shell-v0", failures=2, outcome="failed"))
True
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterable, Iterator, Sequence

from trajrec.recorder import SUFFIX, EmptyEpisodeError, TrajrecError, TrajrecUsageError, read_index
from trajrec.recorder.format import packb, unpackb
from trajrec.recorder.writer import pack_record

from .query import QUERY_HELP, Query, QueryError, index_facts, parse_query

#: The outcome of a file that holds nothing (its writer was killed at its first write); scans skip it.
EMPTY = "empty"

CATALOG_DIR = ".trajrec"
CATALOG_NAME = "catalog.msgpack"
CATALOG_VERSION = 2

#: ``labeled_fraction(episode_id, n_steps) -> float | None``: the share of an episode's steps that carry a label.
LabeledFraction = Callable[[str, int], "float | None"]


@dataclass(slots=True)
class EpisodeEntry:
    """One episode as a library row: what :func:`trajrec.recorder.read_index` says about it.

    ``error`` is set (and the counts left at zero) for a file that cannot be read; ``labeled`` is filled by a
    labels provider and never cached.

    >>> EpisodeEntry(path="runs/a.msgpack.zst", episode_id="a", steps=3).name
    'a.msgpack.zst'
    """

    path: str
    episode_id: str
    env_id: str = ""
    task_id: str = ""
    task_text: str = ""
    steps: int = 0
    ret: float | None = None
    outcome: str = ""
    failures: int = 0
    retries: int = 0
    recoveries: int = 0
    checks_passed: int = 0
    checks_failed: int = 0
    complete: bool = True
    error: str | None = None
    split: str = ""
    agent: str = ""
    model: str = ""
    run_id: str = ""
    labeled: float | None = None

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    def facts(self) -> dict[str, Any]:
        """What the filter grammar (:mod:`trajrec.replay.query`) reads of this entry."""
        text = " ".join(x for x in (self.episode_id, self.name, self.env_id, self.task_id, self.task_text) if x)
        return {
            "episode": self.episode_id, "env": self.env_id or None, "task": self.task_id or None,
            "split": self.split or None, "agent": self.agent or None, "model": self.model or None,
            "run": self.run_id or None, "outcome": self.outcome or ("incomplete" if not self.complete else None),
            "steps": self.steps, "return": self.ret, "failures": self.failures, "retries": self.retries,
            "recoveries": self.recoveries, "checks": self.checks_passed + self.checks_failed,
            "complete": self.complete and self.error is None,
            "labeled": None if self.labeled is None else self.labeled > 0, "labeled_fraction": self.labeled,
            "text": text.lower(),
        }

    @classmethod
    def from_index(cls, path: str, index: dict[str, Any]) -> EpisodeEntry:
        f = index_facts(path, index)
        s = index.get("summary") if isinstance(index.get("summary"), dict) else {}
        checks = s.get("checks") if isinstance(s.get("checks"), dict) else {}
        header = index.get("header") if isinstance(index.get("header"), dict) else {}
        task = header.get("task") if isinstance(header.get("task"), dict) else {}
        return cls(
            path=path,
            episode_id=f["episode"],
            env_id=f["env"] or "",
            task_id=f["task"] or "",
            task_text=str(task.get("text") or ""),
            steps=int(f["steps"] or 0),
            ret=float(f["return"]) if f["return"] is not None else None,
            outcome=str(s.get("outcome") or ""),
            failures=int(f["failures"] or 0),
            retries=int(f["retries"] or 0),
            recoveries=int(f["recoveries"] or 0),
            checks_passed=_int(checks.get("passed")),
            checks_failed=_int(checks.get("failed")),
            complete=f["complete"],
            split=f["split"] or "",
            agent=f["agent"] or "",
            model=f["model"] or "",
            run_id=f["run"] or "",
        )

    @classmethod
    def unreadable(cls, path: str, error: str) -> EpisodeEntry:
        return cls(path=path, episode_id=os.path.basename(path), outcome="unreadable", complete=False, error=error)

    def to_record(self) -> list[Any]:
        # A positional list, not a map: 10,000 entries with repeated keys would double the cache's size.
        return [getattr(self, f) for f in _CACHED_FIELDS]

    @classmethod
    def from_record(cls, path: str, rec: Sequence[Any]) -> EpisodeEntry:
        return cls(path, *rec)


def _int(x: Any) -> int:
    return int(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and x == x else 0


# Every field but ``path`` (the cache key) and ``labeled`` (labels change without the file changing).
_CACHED_FIELDS = tuple(f.name for f in fields(EpisodeEntry) if f.name not in ("path", "labeled"))


# -- finding files ----------------------------------------------------------------------------------------------

def find_episode_files(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Episode files named directly, or found recursively under folders (sorted by path within each folder).

    Raises:
        TrajrecUsageError: a path does not exist.
    """
    found: list[str] = []
    for raw in paths:
        p = os.fspath(raw)
        if os.path.isdir(p):
            found.extend(sorted(_walk(p)))
        elif os.path.isfile(p):
            found.append(p)
        else:
            raise TrajrecUsageError(f"{p}: no such file or folder; pass an episode file (*{SUFFIX}) or a folder "
                                    "of them")
    return found


def _walk(root: str) -> Iterator[str]:
    # os.scandir reuses the directory entries' types: no stat per file, ~4x faster than Path.rglob on 10k files.
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue  # an unreadable subfolder hides its files, as `find` would; the rest still lists
        with it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    if e.name != CATALOG_DIR:
                        stack.append(e.path)
                elif e.name.endswith(SUFFIX) and e.is_file():
                    yield e.path


# -- the summary cache ------------------------------------------------------------------------------------------

class Catalog:
    """The cached summaries of one folder's episodes, keyed by relative path, mtime and size.

    >>> import tempfile
    >>> cat = Catalog(tempfile.mkdtemp())
    >>> cat.get(os.path.join(cat.root, "x" + SUFFIX), os.stat(cat.root)) is None
    True
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.fspath(root)
        self.path = os.path.join(self.root, CATALOG_DIR, CATALOG_NAME)
        self.problem: str | None = None  # why the cache on disk was ignored or not saved
        self._old: dict[str, list[Any]] = {}
        self._new: dict[str, list[Any]] = {}
        self.hits = 0

    @classmethod
    def load(cls, root: str | os.PathLike[str]) -> Catalog:
        """Read ``<root>/.trajrec/catalog.msgpack``; a missing, foreign or damaged cache gives an empty catalog."""
        cat = cls(root)
        try:
            with open(cat.path, "rb") as fh:
                data = unpackb(fh.read())
        except FileNotFoundError:
            return cat
        except (OSError, ValueError, TrajrecError) as exc:
            cat.problem = f"ignored the summary cache {cat.path}: {exc}"
            return cat
        if (isinstance(data, dict) and data.get("version") == CATALOG_VERSION
                and data.get("fields") == list(_CACHED_FIELDS) and isinstance(data.get("entries"), dict)):
            cat._old = data["entries"]
        else:
            cat.problem = f"ignored the summary cache {cat.path}: written by another trajrec version"
        return cat

    def _key(self, path: str) -> str:
        return os.path.relpath(path, self.root)

    def get(self, path: str, st: os.stat_result) -> EpisodeEntry | None:
        """The cached entry of ``path`` if the file has not changed since (same mtime and size)."""
        key = self._key(path)
        row = self._old.get(key)
        if row is None or row[0] != st.st_mtime_ns or row[1] != st.st_size:
            return None
        try:
            entry = EpisodeEntry.from_record(path, row[2])
        except TypeError:
            return None  # a row of another shape: read the file instead
        self._new[key] = row
        self.hits += 1
        return entry

    def put(self, path: str, st: os.stat_result, entry: EpisodeEntry) -> None:
        self._new[self._key(path)] = [st.st_mtime_ns, st.st_size, entry.to_record()]

    @property
    def changed(self) -> bool:
        return self._new.keys() != self._old.keys() or self.hits != len(self._new)

    def save(self) -> bool:
        """Write the entries seen in this scan (files gone since are dropped), atomically. False if it could not."""
        data = {"version": CATALOG_VERSION, "fields": list(_CACHED_FIELDS), "entries": self._new}
        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(tmp, "wb") as fh:
                fh.write(pack_record(packb, data))  # summaries may hold any text (lone surrogates too)
            os.replace(tmp, self.path)  # readers see the old or the new cache, never half of one
        except OSError as exc:
            self.problem = f"could not save the summary cache {self.path}: {exc.strerror or exc}"
            try:
                os.unlink(tmp)
            except OSError:
                pass  # the temp file was never created
            return False
        self._old = dict(self._new)
        self.hits = len(self._new)
        return True


# -- reading summaries ------------------------------------------------------------------------------------------

@dataclass(slots=True)
class ScanBatch:
    """Entries read since the last batch, with progress: ``done`` of ``total`` files."""

    entries: list[EpisodeEntry]
    done: int
    total: int
    problems: list[str] = field(default_factory=list)


def read_entry(path: str) -> EpisodeEntry:
    """The library row of one file; an unreadable file gives an entry with ``error`` set, never an exception."""
    try:
        return EpisodeEntry.from_index(path, read_index(path))
    except EmptyEpisodeError as exc:
        entry = EpisodeEntry.unreadable(path, str(exc))
        entry.outcome = EMPTY
        return entry
    except (TrajrecError, OSError, ValueError) as exc:
        return EpisodeEntry.unreadable(path, str(exc))


def scan(paths: Iterable[str | os.PathLike[str]], *, use_catalog: bool = True,
         labeled_fraction: LabeledFraction | None = None, first_batch: int = 64, batch_seconds: float = 0.1,
         cancelled: Callable[[], bool] | None = None) -> Iterator[ScanBatch]:
    """Read the summaries of every episode under ``paths``, in batches.

    The first batch is small (``first_batch`` entries) so a caller can show a first screen at once; later
    batches are cut every ``batch_seconds``, so a UI gets a bounded rate of updates whatever the folder size.
    Folders' summaries are cached (see :class:`Catalog`) unless ``use_catalog`` is False.

    >>> import tempfile
    >>> [b.total for b in scan([tempfile.mkdtemp()])]
    [0]
    """
    groups: list[tuple[Catalog | None, list[str]]] = []
    for raw in paths:
        p = os.fspath(raw)
        files = find_episode_files([p])
        groups.append((Catalog.load(p) if use_catalog and os.path.isdir(p) else None, files))
    total = sum(len(files) for _cat, files in groups)
    done = 0
    batch: list[EpisodeEntry] = []
    problems: list[str] = []
    limit = first_batch
    last = time.monotonic()
    for cat, files in groups:
        if cat is not None and cat.problem:
            problems.append(cat.problem)
        for path in files:
            if cancelled is not None and cancelled():
                return
            entry = None
            st = None
            if cat is not None:
                try:
                    st = os.stat(path)
                    entry = cat.get(path, st)
                except OSError:
                    st = None  # gone since listing: read_entry reports it as unreadable
            if entry is None:
                entry = read_entry(path)
                if cat is not None and st is not None:
                    cat.put(path, st, entry)
            if entry.outcome == EMPTY:  # a writer killed at its first write: nothing recorded, nothing to show
                problems.append(f"skipped {path}: empty episode, nothing recorded")
                done += 1
                continue
            if labeled_fraction is not None:
                entry.labeled = labeled_fraction(entry.episode_id, entry.steps)
            batch.append(entry)
            done += 1
            now = time.monotonic()
            if len(batch) >= limit or now - last >= batch_seconds:
                yield ScanBatch(batch, done, total, problems)
                batch, problems, last, limit = [], [], now, 1 << 30
        if cat is not None and cat.changed and not cat.save():
            problems.append(cat.problem or "")
    yield ScanBatch(batch, done, total, problems)


# -- filters ----------------------------------------------------------------------------------------------------

#: The library filter's help text: the grammar of :mod:`trajrec.replay.query`, shared with ``--where``.
FILTER_HELP = QUERY_HELP

#: Raised for a filter that does not parse (an alias of :class:`trajrec.replay.query.QueryError`).
FilterError = QueryError


@dataclass(frozen=True)
class Filter:
    """A parsed library filter (the grammar of :mod:`trajrec.replay.query`); the empty filter matches everything."""

    query: Query = field(default_factory=Query)

    def matches(self, entry: EpisodeEntry) -> bool:
        return self.query.matches(entry.facts())

    def __bool__(self) -> bool:
        return bool(self.query)


def parse_filter(query: str) -> Filter:
    """Parse a filter query (see :mod:`trajrec.replay.query`).

    Raises:
        FilterError: an unknown field, or a value the field does not take.

    >>> parse_filter("evn:shell")
    Traceback (most recent call last):
    ...
    trajrec.replay.query.QueryError: in 'evn:shell': unknown field 'evn' (did you mean 'env'?); fields: ...
    """
    return Filter(parse_query(query))


# -- sorting ----------------------------------------------------------------------------------------------------

#: Columns the library sorts by, and the entry attribute each reads.
SORT_COLUMNS: dict[str, str] = {
    "episode": "episode_id",
    "env": "env_id",
    "task": "task_id",
    "steps": "steps",
    "return": "ret",
    "outcome": "outcome",
    "failures": "failures",
    "retries": "retries",
    "recoveries": "recoveries",
    "labeled": "labeled",
    "path": "path",
}


def sort_entries(entries: Sequence[EpisodeEntry], column: str | None, *, reverse: bool = False) -> list[EpisodeEntry]:
    """Entries ordered by ``column`` (a key of :data:`SORT_COLUMNS`; None keeps the path order), ties by path.

    Missing values (no return, no labels) go last in both directions.

    >>> es = [EpisodeEntry(path=p, episode_id=p, steps=s) for p, s in (("a", 3), ("b", 1), ("c", 2))]
    >>> [e.path for e in sort_entries(es, "steps")], [e.path for e in sort_entries(es, "steps", reverse=True)]
    (['b', 'c', 'a'], ['a', 'c', 'b'])
    """
    if column is None:
        return sorted(entries, key=lambda e: e.path, reverse=reverse)
    try:
        attr = SORT_COLUMNS[column]
    except KeyError:
        raise TrajrecUsageError(f"cannot sort by {column!r}; columns: {', '.join(SORT_COLUMNS)}") from None
    # Two stable sorts: by path, then by the column; Nones are split off so they stay last either way.
    by_path = sorted(entries, key=lambda e: e.path)
    present = [e for e in by_path if getattr(e, attr) is not None]
    missing = [e for e in by_path if getattr(e, attr) is None]
    if attr in ("episode_id", "env_id", "task_id", "outcome"):
        present.sort(key=lambda e: getattr(e, attr).lower(), reverse=reverse)
    else:
        present.sort(key=lambda e: getattr(e, attr), reverse=reverse)
    return present + missing
