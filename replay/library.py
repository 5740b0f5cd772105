"""The episode library: episode files under folders, one summary row each, a summary cache, and filters.

Nothing here draws anything: ``trajrec view`` builds its library screen on :func:`scan` (batches of
:class:`EpisodeEntry`, for a thread worker to stream into the table), :func:`parse_filter` and
:func:`sort_entries`; a plain ``trajrec ls`` prints from :func:`list_columns` (the same rows as columns, no
object per episode).

Summaries come from :func:`trajrec.recorder.read_index`, which reads only a file's tail. A folder's summaries are also
kept in ``<folder>/.trajrec/catalog/`` (one columnar shard per sub-folder, see :class:`Catalog`), so reopening a
big run reads a few files instead of a million tails, and an unchanged folder is not even listed (what is
trusted and what is checked: :class:`Catalog`). The cache is a pure accelerator: a damaged or unwritable shard
is ignored (and said so) and rebuilt from the files.

>>> f = parse_filter("env:shell faulty -outcome:passed")
>>> f.matches(EpisodeEntry(path="a", episode_id="a", env_id="trajrec/Shell-v0", failures=2, outcome="failed"))
True
"""

from __future__ import annotations

import functools
import math
import operator
import os
import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence, Union

try:  # what hashlib.blake2b is, without hashlib's loading OpenSSL's hashes (~3.5 MB for every `trajrec ls`)
    from _blake2 import blake2b
except ImportError:  # another Python
    from hashlib import blake2b

from trajrec.recorder import SUFFIX, EmptyEpisodeError, TrajrecError, TrajrecUsageError, read_index
from trajrec.recorder.codec import bounded_repr
from trajrec.recorder.format import packb, unpackb
from trajrec.recorder.gcpause import gc_paused
from trajrec.recorder.storage import find_remote, is_url
from trajrec.recorder.writer import pack_record

from .run_folder import create_new, private_dir
from .query import LABEL_FIELDS, QUERY_HELP, Query, QueryError, index_facts, parse_query, usage_facts

#: The outcome of a file that holds nothing (its writer was killed at its first write); scans skip it.
EMPTY = "empty"

CATALOG_DIR = ".trajrec"
CATALOG_SHARDS = "catalog"
CATALOG_VERSION = 9  # 8: files that lost steps to a failed write are not complete; 9: salvaged steps leave one complete

#: ``labeled_fraction(episode_path, episode_id, n_steps) -> float | None``: the share of an episode's steps that
#: carry a label (labels of the file's own folder: a same-id copy elsewhere has its own).
LabeledFraction = Callable[[str, str, int], "float | None"]

#: ``label_facts(episode_path, episode_id, n_steps) -> facts``: the label fields of the filter grammar
#: (:data:`trajrec.replay.query.LABEL_FIELDS`) for an episode, from its own folder's labels
#: (:func:`trajrec.replay.run.label_facts` of them: what ``trajrec ls --where`` reads).
LabelFacts = Callable[[str, str, int], Mapping[str, Any]]


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
    model_usage: dict[str, Any] | None = None  # the summary's model-call totals (tokens, seconds, cost), if any
    ended: bool = True  # ran to its end and lost no step (trajrec.recorder.model.ran_to_end; false: `incomplete`)
    #: When the episode started (the summary's ``start_time``: Unix seconds of its ``reset()``), None if unknown:
    #: the recording order, where file names (``<env>-<second>-<random hex>``) order episodes of one second at random.
    started: float | None = None
    labeled: float | None = None
    #: A live Recorder holds the file (``trajrec.recorder.fsck.being_recorded``): no index yet because it is being
    #: written, not because its writer died. Asked at each listing, never cached (the recording ends).
    live: bool = False

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @property
    def tokens(self) -> int | float | None:
        """The model tokens of the episode's model calls (None: no calls, or no usable total)."""
        return usage_facts({"model": self.model_usage} if self.model_usage else {})["tokens"]

    @property
    def cost(self) -> int | float | None:
        """The model cost of the episode's model calls (None: no calls, or none priced)."""
        return usage_facts({"model": self.model_usage} if self.model_usage else {})["cost"]

    def facts(self) -> dict[str, Any]:
        """What the filter grammar (:mod:`trajrec.replay.query`) reads of this entry."""
        return {key: fact(self) for key, fact in _FACTS.items()}

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
            model_usage=s.get("model") if isinstance(s.get("model"), dict) else None,
            ended=f["ended"],
            started=finite_time(s.get("start_time")),
        )

    @classmethod
    def unreadable(cls, path: str, error: str) -> EpisodeEntry:
        return cls(path=path, episode_id=os.path.basename(path), outcome="unreadable", complete=False, error=error,
                   ended=False)

    def to_record(self) -> list[Any]:
        # A positional list, not a map: 10,000 entries with repeated keys would double the cache's size.
        return [getattr(self, f) for f in _CACHED_FIELDS]

    @classmethod
    def from_record(cls, path: str, rec: Sequence[Any]) -> EpisodeEntry:
        return cls(path, *rec)


def _int(x: Any) -> int:
    return int(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and x == x else 0


def finite_time(x: Any) -> float | None:
    """``x`` as a float time (Unix seconds) when it is a finite number (not a bool), else None."""
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


# Every field but ``path`` (the cache key), ``labeled`` (labels change without the file changing) and ``live``.
_CACHED_FIELDS = tuple(f.name for f in fields(EpisodeEntry) if f.name not in ("path", "labeled", "live"))
_COMPLETE = _CACHED_FIELDS.index("complete")
_ERROR = _CACHED_FIELDS.index("error")
_OUTCOME = _CACHED_FIELDS.index("outcome")


# -- finding files ----------------------------------------------------------------------------------------------

def find_episode_files(paths: Iterable[str | os.PathLike[str]], skipped: list[str] | None = None) -> list[str]:
    """Episode files named directly, or found recursively under folders (sorted by path within each folder).

    Symbolic links inside folders: a link to an episode file is listed; a link to a folder is not followed (a
    link cannot loop or lead out of the run) and a dangling ``*.msgpack.zst`` link has nothing to read: each of
    those is noted in ``skipped`` (``"skipped PATH: why"``) when a list is given.

    Raises:
        TrajrecUsageError: a path does not exist.
    """
    found: list[str] = []
    for raw in paths:
        p = os.fspath(raw)
        if is_url(p):
            found.extend(find_remote(p, SUFFIX))
        elif os.path.isdir(p):
            found.extend(sorted(_walk(p, skipped)))
        elif os.path.isfile(p):
            found.append(p)
        else:
            raise TrajrecUsageError(f"{p}: no such file or folder; pass an episode file (*{SUFFIX}) or a folder "
                                    "of them")
    return found


def skipped_link(e: os.DirEntry[str]) -> str | None:
    """Why a folder entry that is a symbolic link is not listed (a link to a folder, or a dangling episode-file
    link), or None for any other entry (a link to an episode file is listed like the file)."""
    if not e.is_symlink():
        return None
    return _link_note(e.path, e.is_dir(), e.name.endswith(SUFFIX) and not e.is_file())


def _link_note(path: str, to_dir: bool, dangling: bool) -> str | None:
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    if to_dir:
        return (f"skipped {path}: a symbolic link to the folder {target} (links to folders are not followed; "
                "pass the folder itself to include it)")
    if dangling:
        return f"skipped {path}: a symbolic link to {target}, which does not exist (a dangling link)"
    return None


def _walk(root: str, skipped: list[str] | None = None) -> Iterator[str]:
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
                elif skipped is not None and (why := skipped_link(e)) is not None:
                    skipped.append(why)


# -- the summary cache ------------------------------------------------------------------------------------------

#: A folder modified less than this long before it was listed is listed again next time, whatever its mtime
#: says: a file added in the same clock tick as the listing would leave the folder's mtime as it was recorded.
RACY_NS = 2_000_000_000


@dataclass(slots=True)
class Shard:
    """One folder's cached listing: its sub-folders and episode files, and a summary row per file.

    Attributes:
        stat: ``(inode, mtime_ns, ctime_ns)`` of the folder when it was listed, or None when that listing is not
            to be trusted (the folder had changed less than :data:`RACY_NS` before).
        names: the episode files' names, sorted (a row each, in this order).
        dirs: the sub-folders' names, sorted.
        notes: names of symbolic links that are not listed (a link to a folder, a dangling episode-file link).
        inode, mtime, size: per file: what the row was read from.
        cols: per :data:`_CACHED_FIELDS` field, a list with the files' values (columnar: a few dozen lists per
            shard instead of a map per episode).
        links: rows whose file is a symbolic link (their target may change without the folder changing).
    """

    stat: tuple[int, int, int] | None
    names: list[str] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    inode: list[int] = field(default_factory=list)
    mtime: list[int] = field(default_factory=list)
    size: list[int] = field(default_factory=list)
    cols: list[list[Any]] = field(default_factory=lambda: [[] for _ in _CACHED_FIELDS])
    links: list[int] = field(default_factory=list)

    def volatile(self) -> list[int]:
        """Rows that may change while the folder does not: files still being written (no index yet), files
        that could not be read, and symbolic links; a listing that trusts the folder still checks these."""
        complete, errors = self.cols[_COMPLETE], self.cols[_ERROR]
        if False not in complete and errors.count(None) == len(errors):  # the usual shard, checked in C
            return list(self.links)
        out = {i for i, (ok, err) in enumerate(zip(complete, errors)) if not ok or err is not None}
        return sorted(out.union(self.links))


def _encode(col: list[Any]) -> list[Any] | dict[str, list[Any]]:
    """A column as it is, or dictionary-encoded (``{"values": distinct values, "codes": an index per row}``) when
    it holds text that repeats: an env id, outcome or task shared by a whole folder is then one string, not one per row
    (decoded, a million rows share a few objects instead of holding a million copies)."""
    # Text only: numbers that compare equal would merge (0.0 and -0.0, 1 and True); numbers decode fast anyway.
    if len(col) < 8 or not set(map(type, col)) <= {str, type(None)}:
        return col
    values = list(dict.fromkeys(col))
    if len(values) > len(col) // 4:
        return col
    index = {v: i for i, v in enumerate(values)}
    return {"values": values, "codes": [index[v] for v in col]}


def _decode(col: Any) -> list[Any]:
    """The inverse of :func:`_encode`.

    Raises:
        ValueError: a code that indexes no value (a damaged shard).
    """
    if isinstance(col, list):
        return col
    values, codes = col["values"], col["codes"]
    if codes and not (0 <= min(codes) and max(codes) < len(values)):
        raise ValueError("a column code out of range")
    return list(map(values.__getitem__, codes))


class Catalog:
    """The cached summaries of one folder's episodes: ``<folder>/.trajrec/catalog/<digest>.msgpack``.

    The cache is sharded, one :class:`Shard` per sub-folder (the digest names the sub-folder), and each shard is
    columnar (a list per field: a million rows decode as a few hundred lists, not a million maps).

    What a listing trusts (the trade-off that makes a warm listing of a million episodes take seconds):

    - A folder whose inode, mtime and ctime are those recorded in its shard has the same children: adding,
      removing or renaming a file changes its folder's mtime, so the folder is not listed again (no
      ``scandir``, no ``stat`` per file). A folder modified within :data:`RACY_NS` of its listing is never
      trusted (a change in the same clock tick could leave its mtime as recorded).
    - A row is reused while its file keeps its inode: a complete episode file is never rewritten in place (the
      writer creates it with O_EXCL and appends, ``fsck --repair`` replaces it by rename, which gives a new
      inode and changes the folder's mtime).
    - Files that may change in place are checked on every listing (``stat``, and read again when their inode,
      size or mtime moved): files still being written (no index yet: the writer appends to them under its
      lock), unreadable files, and symbolic links.

    A file overwritten in place by another tool keeps its inode and its folder's mtime, so it is not seen:
    ``scan(..., verify=True)`` (``trajrec ls --rescan``) lists every folder and compares every file's inode,
    size and mtime (a rewrite changes the mtime) and rewrites the stale rows; ``scan(..., use_catalog=False)``
    (``trajrec view --no-cache``) reads every file and leaves the cache alone.

    >>> import tempfile
    >>> Catalog(tempfile.mkdtemp()).shard("") is None
    True
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.fspath(root)
        self.dir = os.path.join(self.root, CATALOG_DIR, CATALOG_SHARDS)
        self.problems: list[str] = []  # why shards on disk were ignored or not saved

    @property
    def problem(self) -> str | None:
        return self.problems[-1] if self.problems else None

    def _path(self, reldir: str) -> str:
        digest = blake2b(reldir.encode("utf-8", "surrogatepass"), digest_size=10).hexdigest()
        return os.path.join(self.dir, digest + ".msgpack")

    def shard(self, reldir: str) -> Shard | None:
        """The cached listing of sub-folder ``reldir`` ("" for the root, else ending in ``/``), or None when
        there is no usable shard (a damaged or foreign one is noted in :attr:`problems`)."""
        path = self._path(reldir)
        try:
            with open(path, "rb") as fh:
                data = unpackb(fh.read())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TrajrecError) as exc:
            self.problems.append(f"ignored the summary cache {path}: {exc}")
            return None
        try:
            version = data.get("version")
            if isinstance(version, int) and not isinstance(version, bool) and version < CATALOG_VERSION:
                return None  # an older trajrec's shard: rebuilt without a word (nothing is wrong with it)
            if (version != CATALOG_VERSION or data.get("fields") != list(_CACHED_FIELDS)
                    or data.get("dir") != reldir):
                raise ValueError("written by another trajrec version")
            stat = data["stat"]
            shard = Shard(None if stat is None else (int(stat[0]), int(stat[1]), int(stat[2])),
                          data["names"], data["dirs"], data["notes"], data["inode"], data["mtime"], data["size"],
                          [_decode(c) for c in data["cols"]], data["links"])
            n = len(shard.names)
            if not (len(shard.cols) == len(_CACHED_FIELDS) and all(len(c) == n for c in shard.cols)
                    and len(shard.inode) == len(shard.mtime) == len(shard.size) == n
                    and all(isinstance(i, int) and 0 <= i < n for i in shard.links)):
                raise ValueError("columns of different lengths")
            if not set(map(type, shard.names + shard.dirs + shard.notes)) <= {str}:
                raise ValueError("a name that is not text")
        except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
            self.problems.append(f"ignored the summary cache {path}: {exc}")
            return None
        return shard

    def save(self, reldir: str, shard: Shard) -> bool:
        """Write one sub-folder's shard atomically (readers see the old or the new one). False if it could not."""
        data = {"version": CATALOG_VERSION, "fields": list(_CACHED_FIELDS), "dir": reldir,
                "stat": None if shard.stat is None else list(shard.stat), "names": shard.names, "dirs": shard.dirs,
                "notes": shard.notes,
                "inode": shard.inode, "mtime": shard.mtime, "size": shard.size,
                "cols": [_encode(c) for c in shard.cols],
                "links": shard.links}
        path = self._path(reldir)
        tmp = f"{path}.{os.getpid()}.tmp"
        made = False
        try:
            private_dir(self.root, CATALOG_DIR, CATALOG_SHARDS)  # never through a link planted in the run folder
            fd = create_new(tmp)
            made = True
            with os.fdopen(fd, "wb") as fh:
                fh.write(pack_record(packb, data))  # summaries may hold any text (lone surrogates too)
            os.replace(tmp, path)  # readers see the old or the new shard, never half of one
        except OSError as exc:  # TrajrecIOError (a link) included
            self.problems.append(f"could not save the summary cache {path}: {getattr(exc, 'strerror', None) or exc}")
            if made:
                os.unlink(tmp)
            return False
        return True


# -- reading summaries ------------------------------------------------------------------------------------------

@dataclass(slots=True)
class ScanBatch:
    """Entries read since the last batch, with progress: ``done`` of ``total`` files (``total`` is None while
    a cached folder is still being walked)."""

    entries: list[EpisodeEntry]
    done: int
    total: int | None
    problems: list[str] = field(default_factory=list)
    skipped: int = 0
    """Files of this batch left out: empty episodes (a writer killed at its first write), counted in ``done``."""


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


def _row(path: str) -> list[Any]:
    return read_entry(path).to_record()


_first = operator.itemgetter(0)
_PATH = operator.attrgetter("path")

#: What :func:`_listing` yields: ``(folder, file names, columns)`` (the columns of :data:`_CACHED_FIELDS`, one
#: value per name) for a run of episode files in path order, or a problem to say.
Chunk = Union[tuple[str, list[str], list[list[Any]]], str]


def _list_folder(d: str, dstat: tuple[int, int, int] | None, old: Shard | None,
                 verify: bool = False) -> tuple[Shard, bool]:
    """List folder ``d`` with ``scandir``, reusing ``old`` rows whose file kept its inode (and, for files that
    may change in place or with ``verify`` for every file, its size and mtime); ``(shard, whether any row was
    read again)``."""
    with os.scandir(d) as it:
        children = [(e.name + "/" if e.is_dir(follow_symlinks=False) else e.name, e) for e in it]
    children.sort(key=_first)  # a trailing "/" on folders sorts them as their whole paths would
    old = old if old is not None else Shard(None)
    index = dict(zip(old.names, range(len(old.inode))))
    volatile = set(old.volatile())
    new = Shard(dstat)
    # Each row's summary: picks[k] >= 0 takes old row picks[k], -1 - i takes fresh[i]; the columns are built at
    # the end a column at a time (in C when every row is reused), not twenty appends per row.
    picks: list[int] = []
    fresh: list[list[Any]] = []
    reread = False
    for key, e in children:
        if key[-1] == "/":
            if e.name != CATALOG_DIR:
                new.dirs.append(e.name)
            continue
        if not key.endswith(SUFFIX) or not e.is_file():
            if skipped_link(e) is not None:
                new.notes.append(e.name)
            continue
        link = e.is_symlink()
        j = index.get(key)
        if j is not None and not verify and not link and j not in volatile and old.inode[j] == e.inode():
            # A closed, readable file is immutable while its inode stays (see Catalog): no stat needed.
            ino, mtime, size = old.inode[j], old.mtime[j], old.size[j]
        else:
            try:
                st = e.stat()
            except OSError:
                continue  # gone since it was listed
            ino, mtime, size = st.st_ino, st.st_mtime_ns, st.st_size
            if j is None or (old.inode[j], old.mtime[j], old.size[j]) != (ino, mtime, size):
                fresh.append(_row(e.path))
                j = -len(fresh)
                reread = True
        if link:
            new.links.append(len(picks))
        picks.append(j)
        new.names.append(key)
        new.inode.append(ino)
        new.mtime.append(mtime)
        new.size.append(size)
    if not fresh:
        new.cols = [list(map(col.__getitem__, picks)) for col in old.cols]
    else:
        new.cols = [[col[j] if j >= 0 else fresh[-1 - j][k] for j in picks] for k, col in enumerate(old.cols)]
    return new, reread


def _recheck(d: str, shard: Shard) -> bool | None:
    """Check the rows of a trusted listing that may change in place (:meth:`Shard.volatile`), reading a file
    again when it moved; True if a row changed, None if a file is gone (the listing is stale after all)."""
    changed = False
    names = None
    for i in shard.volatile():
        if names is None:
            names = shard.names
        path = os.path.join(d, names[i])
        try:
            st = os.stat(path)
        except OSError:
            return None
        if (st.st_ino, st.st_mtime_ns, st.st_size) != (shard.inode[i], shard.mtime[i], shard.size[i]):
            for col, v in zip(shard.cols, _row(path)):
                col[i] = v
            shard.inode[i], shard.mtime[i], shard.size[i] = st.st_ino, st.st_mtime_ns, st.st_size
            changed = True
    return changed


def _listing(cat: Catalog, d: str, rel: str = "", verify: bool = False) -> Iterator[Chunk]:
    """The episodes under folder ``d`` in path order, from the catalog where it is valid (see :class:`Catalog`),
    as chunks (see :data:`Chunk`); problems: skipped links, a shard that could not be saved. ``verify``: list
    every folder and compare every file's inode, size and mtime (a file rewritten in place is read again)."""
    try:
        st = os.stat(d)
    except OSError:
        return  # an unreadable or vanished subfolder hides its files, as `find` would; the rest still lists
    now = time.time_ns()
    dstat = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
    old = cat.shard(rel)
    shard: Shard | None = None
    save = False
    if not verify and old is not None and old.stat is not None and old.stat == dstat:
        changed = _recheck(d, old)
        if changed is not None:
            shard, save = old, changed
    if shard is None:
        try:
            shard, reread = _list_folder(d, dstat if st.st_mtime_ns < now - RACY_NS else None, old, verify)
        except OSError:
            return
        save = (reread or old is None or old.stat != shard.stat or old.names != shard.names
                or old.dirs != shard.dirs or old.notes != shard.notes or old.links != shard.links)
    if save and not cat.save(rel, shard):
        yield cat.problem or "could not save the summary cache"
    for name in shard.notes:
        why = _skipped_path(os.path.join(d, name))
        if why is not None:
            yield why
    names = shard.names
    if not shard.dirs:  # the usual folder: files only, one chunk
        if names:
            yield d, names, shard.cols
        return
    # Path order: a folder sorts as its whole paths would, i.e. as its name with a trailing "/".
    keys = sorted([(n, i) for i, n in enumerate(names)] + [(f"{n}/", -1) for n in shard.dirs])
    start = 0  # first row of the current run of files
    row = 0  # rows seen so far
    for key, i in keys + [("/", -1)]:  # a sentinel folder closes the last run
        if i >= 0:
            row += 1
            continue
        if row > start:
            yield d, names[start:row], [c[start:row] for c in shard.cols]
        start = row
        if key != "/":
            yield from _listing(cat, os.path.join(d, key[:-1]), f"{rel}{key}", verify)


def _skipped_path(path: str) -> str | None:
    """:func:`skipped_link` for a path (a link a shard noted), as it is now."""
    if not os.path.islink(path):
        return None
    return _link_note(path, os.path.isdir(path), path.endswith(SUFFIX) and not os.path.isfile(path))


_Source = tuple[Optional[Catalog], str, list[str], list[str]]  # (catalog or None, path, files, notes)


def _sources(paths: Iterable[str | os.PathLike[str]], use_catalog: bool) -> list[_Source]:
    sources: list[_Source] = []
    for raw in paths:
        p = os.fspath(raw)
        if use_catalog and not is_url(p) and os.path.isdir(p):
            sources.append((Catalog(p), p, [], []))
        else:
            notes: list[str] = []
            sources.append((None, p, find_episode_files([p], notes), notes))
    return sources


def _column_chunks(sources: list[_Source], verify: bool,
                   cancelled: Callable[[], bool] | None) -> Iterator[tuple[list[str], list[list[Any]]] | str]:
    """The summaries of every source's episodes in path order, as ``(paths, columns)`` chunks (the columns of
    :data:`_CACHED_FIELDS`, a value per path), and problems to say (text)."""
    for cat, p, files, notes in sources:
        yield from notes
        if cat is None:
            for f in files:
                if cancelled is not None and cancelled():
                    return
                yield [f], [[v] for v in read_entry(f).to_record()]
            continue
        listing = _listing(cat, p, verify=verify)
        while True:
            # Decoding a shard makes tens of thousands of acyclic containers: collections meanwhile would walk
            # the whole heap for nothing.
            with gc_paused():
                item = next(listing, None)
                if isinstance(item, tuple):
                    prefix = os.path.join(item[0], "")
                    item = ([prefix + n for n in item[1]], item[2])
            if item is None:
                break
            yield item
        for problem in dict.fromkeys(cat.problems):
            if problem.startswith("ignored"):
                yield problem


def scan(paths: Iterable[str | os.PathLike[str]], *, use_catalog: bool = True, verify: bool = False,
         labeled_fraction: LabeledFraction | None = None, first_batch: int = 64, batch_seconds: float = 0.1,
         cancelled: Callable[[], bool] | None = None) -> Iterator[ScanBatch]:
    """Read the summaries of every episode under ``paths``, in batches, in path order within each path.

    The first batch is small (``first_batch`` entries) so a caller can show a first screen at once; later
    batches are cut every ``batch_seconds``, so a UI gets a bounded rate of updates whatever the folder size.
    ``labeled_fraction(episode_path, episode_id, n_steps)`` fills each entry's ``labeled``; when it is a bound
    method of an object with a ``labeled_episodes() -> set[str]`` method (:class:`trajrec.tui.label_source.LabelSource`), only
    episodes in that set are asked about (the others have no labels: None).

    Local folders' summaries are cached (see :class:`Catalog`) unless ``use_catalog`` is False; then every
    file's index is read. ``verify`` trusts no folder's mtime nor a file's inode alone: every folder is listed
    and every file's inode, size and mtime compared (what ``trajrec ls --rescan`` does; a file rewritten in
    place by another tool is read again), and the cache is brought up to date. ``total`` is known up front
    only without the catalog (it would cost a second walk). :func:`list_columns` gives the same rows as
    columns, without an object per episode.

    >>> import tempfile
    >>> [b.total for b in scan([tempfile.mkdtemp()])]
    [0]
    """
    sources = _sources(paths, use_catalog)
    total: int | None = (sum(len(f) for _c, _p, f, _n in sources) if all(c is None for c, _p, _f, _n in sources)
                         else None)
    make = EpisodeEntry
    done = 0
    batch: list[EpisodeEntry] = []
    problems: list[str] = []
    skipped = 0
    limit = first_batch
    last = time.monotonic()
    # A provider that is a bound method of an object offering ``labeled_episodes()`` (the viewer's LabelSource)
    # is asked only about episodes that have labels: a million calls under a lock cost seconds.
    labeled_ids = getattr(getattr(labeled_fraction, "__self__", None), "labeled_episodes", None)
    ids: set[str] | None = None
    ids_at = -1e9
    for item in _column_chunks(sources, verify, cancelled):
        if isinstance(item, str):
            problems.append(item)
            entries: list[EpisodeEntry] = []
        else:
            with gc_paused():  # one object per episode, built by map from the columns: the least Python per row
                entries = list(map(make, item[0], *item[1]))
        if cancelled is not None and cancelled():
            return
        if entries and EMPTY in item[1][_OUTCOME]:
            # A writer killed at its first write: nothing recorded, nothing to show.
            problems.extend(f"skipped {e.path}: empty episode, nothing recorded" for e in entries
                            if e.outcome == EMPTY)
            empty = sum(1 for e in entries if e.outcome == EMPTY)
            done += empty
            skipped += empty
            entries = [e for e in entries if e.outcome != EMPTY]
        if entries and False in item[1][_COMPLETE]:
            # Files without their index (few): is a live Recorder writing them? One open and lock test each.
            from trajrec.recorder.fsck import being_recorded

            for entry in entries:
                if not entry.complete and entry.error is None:
                    entry.live = being_recorded(entry.path)
        if labeled_fraction is not None and entries:
            if labeled_ids is not None and time.monotonic() - ids_at >= 1.0:
                # At most once a second: the set is rebuilt from every store (labels written meanwhile count).
                ids, ids_at = labeled_ids(), time.monotonic()
            for entry in entries:
                if ids is None or entry.episode_id in ids:
                    entry.labeled = labeled_fraction(entry.path, entry.episode_id, entry.steps)
        while entries:
            take = entries if len(batch) + len(entries) <= limit else entries[:limit - len(batch)]
            entries = entries[len(take):]
            batch.extend(take)
            done += len(take)
            if len(batch) >= limit or time.monotonic() - last >= batch_seconds:
                yield ScanBatch(batch, done, total, problems, skipped)
                batch, problems, skipped, last, limit = [], [], 0, time.monotonic(), 1 << 30
    yield ScanBatch(batch, done, done, problems, skipped)


@dataclass(slots=True)
class Listing:
    """Every episode under some paths as columns: :func:`list_columns`.

    Attributes:
        paths: each episode's file, in path order within each given path.
        cols: field name (an :class:`EpisodeEntry` field but ``path`` and ``labeled``) -> a value per episode.
        problems: what to say: skipped links and empty episodes, summary caches ignored or not saved.
        skipped: empty episodes left out (a writer killed at its first write).
    """

    paths: list[str]
    cols: dict[str, list[Any]]
    problems: list[str]
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.paths)

    def entry(self, i: int) -> EpisodeEntry:
        """Row ``i`` as an :class:`EpisodeEntry` (built on demand)."""
        return EpisodeEntry(self.paths[i], *(self.cols[f][i] for f in _CACHED_FIELDS))


def list_columns(paths: Iterable[str | os.PathLike[str]], *, use_catalog: bool = True,
                 verify: bool = False) -> Listing:
    """The rows of :func:`scan` as columns, without building an object per episode (``trajrec ls`` prints a
    million rows from these); unreadable files are rows with ``error`` set, as in :func:`scan`.

    >>> import tempfile
    >>> len(list_columns([tempfile.mkdtemp()]))
    0
    """
    out_paths: list[str] = []
    out_cols: list[list[Any]] = [[] for _ in _CACHED_FIELDS]
    problems: list[str] = []
    skipped = 0
    for item in _column_chunks(_sources(paths, use_catalog), verify, None):
        if isinstance(item, str):
            problems.append(item)
            continue
        names, cols = item
        if EMPTY in cols[_OUTCOME]:
            keep = [i for i, o in enumerate(cols[_OUTCOME]) if o != EMPTY]
            problems.extend(f"skipped {names[i]}: empty episode, nothing recorded"
                            for i, o in enumerate(cols[_OUTCOME]) if o == EMPTY)
            skipped += len(names) - len(keep)
            names = [names[i] for i in keep]
            cols = [[c[i] for i in keep] for c in cols]
        out_paths += names
        for into, col in zip(out_cols, cols):
            into += col
    return Listing(out_paths, dict(zip(_CACHED_FIELDS, out_cols)), problems, skipped)


# -- filters ----------------------------------------------------------------------------------------------------

#: How each fact of :meth:`EpisodeEntry.facts` is computed, for :class:`_LazyFacts`.
_FACTS: dict[str, Callable[[EpisodeEntry], Any]] = {
    "episode": lambda e: e.episode_id, "env": lambda e: e.env_id or None, "task": lambda e: e.task_id or None,
    "split": lambda e: e.split or None, "agent": lambda e: e.agent or None, "model": lambda e: e.model or None,
    "run": lambda e: e.run_id or None,
    "outcome": lambda e: e.outcome or ("incomplete" if not e.complete else None),
    "steps": lambda e: e.steps, "return": lambda e: e.ret, "failures": lambda e: e.failures,
    "retries": lambda e: e.retries, "recoveries": lambda e: e.recoveries,
    "checks": lambda e: e.checks_passed + e.checks_failed, "tokens": lambda e: e.tokens, "cost": lambda e: e.cost,
    "complete": lambda e: e.complete and e.error is None,
    "ended": lambda e: e.ended and e.complete and e.error is None,
    "labeled": lambda e: None if e.labeled is None else e.labeled > 0, "labeled_fraction": lambda e: e.labeled,
    "text": lambda e: _text(e),
}

_TAILS: dict[tuple[str, str, str], str] = {}


def _text(e: EpisodeEntry) -> str:
    """The free text a filter word is looked for in: id, file name, env, task id and text, lower case, the empty
    ones left out. The env and task part repeats across a run: it is joined and lowered once per combination."""
    key = (e.env_id, e.task_id, e.task_text)
    tail = _TAILS.get(key)
    if tail is None:
        if len(_TAILS) >= 1 << 16:
            _TAILS.clear()
        tail = _TAILS[key] = " ".join(x for x in key if x).lower()
    eid, name = e.episode_id, os.path.basename(e.path)
    head = (f"{eid} {name}" if eid and name else eid or name).lower()
    return f"{head} {tail}" if head and tail else head or tail


class _LazyFacts:
    """:meth:`EpisodeEntry.facts` computed per key as the query's terms ``get`` them; with a ``label_facts``
    provider, the label fields come from it (asked once per entry)."""

    __slots__ = ("entry", "label_facts", "_labels")

    def __init__(self, entry: EpisodeEntry, label_facts: LabelFacts | None = None) -> None:
        self.entry = entry
        self.label_facts = label_facts
        self._labels: Mapping[str, Any] | None = None

    def get(self, key: str, default: Any = None) -> Any:
        if self.label_facts is not None and key in LABEL_FIELDS:
            if self._labels is None:
                e = self.entry
                self._labels = self.label_facts(e.path, e.episode_id, e.steps)
            return self._labels.get(key, default)
        fact = _FACTS.get(key)
        return default if fact is None else fact(self.entry)

    def __getitem__(self, key: str) -> Any:
        return _FACTS[key](self.entry)

    def __iter__(self) -> Iterator[str]:
        return iter(_FACTS)

    def __len__(self) -> int:
        return len(_FACTS)


#: The library filter's help text: the grammar of :mod:`trajrec.replay.query`, shared with ``--where``.
FILTER_HELP = QUERY_HELP

#: Raised for a filter that does not parse (an alias of :class:`trajrec.replay.query.QueryError`).
FilterError = QueryError


#: Facts whose values repeat across a big run (not ids, paths or free text): filters on these are memoized.
_REPEATING_FACTS = frozenset(_FACTS) - {"episode", "text"}


@dataclass(frozen=True)
class Filter:
    """A parsed library filter (the grammar of :mod:`trajrec.replay.query`); the empty filter matches everything.

    ``label_facts`` gives the label fields (``labels``, ``labeled``, ``labeled_fraction``, ``judge``,
    ``agreement``) as ``trajrec ls --where`` computes them; without it only ``labeled`` and ``labeled_fraction``
    can be read (from the entries' ``labeled`` column) and :attr:`unknown_fields` names the others.
    """

    query: Query = field(default_factory=Query)
    label_facts: LabelFacts | None = field(default=None, compare=False)
    # The answer per combination of the facts the query reads, when those repeat (not ids, not free text).
    _memo: dict[Any, bool] = field(default_factory=dict, compare=False, repr=False)

    def matches(self, entry: EpisodeEntry) -> bool:
        getters = self._getters
        if getters is None:
            # Only the facts the query's terms ask for are computed.
            labels = self.label_facts if self.query.needs_labels else None
            return self.query.matches(_LazyFacts(entry, labels))  # type: ignore[arg-type]
        key = tuple([g(entry) for g in getters])
        hit = self._memo.get(key)
        if hit is None:
            if len(self._memo) >= 1 << 16:  # NaN returns never hit: keep the memo bounded
                self._memo.clear()
            hit = self._memo[key] = self.query.matches(dict(zip(self._fields, key)))
        return hit

    @property
    def _fields(self) -> tuple[str, ...]:
        return tuple(sorted(self.query.fields))

    @functools.cached_property
    def _getters(self) -> list[Callable[[EpisodeEntry], Any]] | None:
        """The facts the query reads, when a million entries share few combinations of them (so answers can
        be kept per combination); None when a term reads free text, ids or a field entries do not have."""
        fields = self._fields
        if any(not t.field for t in self.query.terms) or not set(fields) <= _REPEATING_FACTS:
            return None
        if self.label_facts is not None and self.query.needs_labels:
            return None  # the label fields come from the provider, per entry (labels change as one works)
        return [_FACTS[f] for f in fields]

    @property
    def unknown_fields(self) -> list[str]:
        """Label fields the query reads that this filter cannot compute (no ``label_facts`` provider)."""
        if self.label_facts is not None:
            return []
        return sorted(self.query.fields & (LABEL_FIELDS - {"labeled", "labeled_fraction"}))

    def __bool__(self) -> bool:
        return bool(self.query)


def parse_filter(query: str, label_facts: LabelFacts | None = None) -> Filter:
    """Parse a filter query (see :mod:`trajrec.replay.query`); ``label_facts`` gives the label fields (see
    :class:`Filter`).

    Raises:
        FilterError: an unknown field, or a value the field does not take.

    >>> parse_filter("evn:shell")
    Traceback (most recent call last):
    ...
    trajrec.replay.query.QueryError: in 'evn:shell': unknown field 'evn' (did you mean 'env'?); fields: ...
    """
    return Filter(parse_query(query), label_facts)


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
    "tokens": "tokens",
    "cost": "cost",
    "started": "started",
    "path": "path",
}


def sort_entries(entries: Sequence[EpisodeEntry], column: str | None, *, reverse: bool = False) -> list[EpisodeEntry]:
    """Entries ordered by ``column`` (a key of :data:`SORT_COLUMNS`; None keeps the path order), ties by path.

    Missing values (no return, no labels) go last in both directions.

    >>> es = [EpisodeEntry(path=p, episode_id=p, steps=s) for p, s in (("a", 3), ("b", 1), ("c", 2))]
    >>> [e.path for e in sort_entries(es, "steps")], [e.path for e in sort_entries(es, "steps", reverse=True)]
    (['b', 'c', 'a'], ['a', 'c', 'b'])
    """
    if column is not None and column not in SORT_COLUMNS:
        raise TrajrecUsageError(f"cannot sort by {column!r}; columns: {', '.join(SORT_COLUMNS)}")
    # Keys are read with attrgetter and compared through list.__getitem__ (C, no Python call per row): a
    # million rows sort in about a second. Entries usually arrive in path order, which sorts in one pass.
    by_path = sorted(entries, key=_PATH)
    if column is None:
        return by_path[::-1] if reverse else by_path  # paths are unique: the reverse is the descending order
    attr = SORT_COLUMNS[column]
    # Two stable sorts: by path, then by the column; Nones are split off so they stay last either way.
    values = list(map(operator.attrgetter(attr), by_path))
    if None in values:
        missing = [e for e, v in zip(by_path, values) if v is None]
        by_path = [e for e, v in zip(by_path, values) if v is not None]
        values = [v for v in values if v is not None]
    else:
        missing = []
    if attr in ("episode_id", "env_id", "task_id", "outcome"):
        values = list(map(str.lower, values))
    order = sorted(range(len(values)), key=values.__getitem__, reverse=reverse)
    return [by_path[i] for i in order] + missing


def as_path_list(paths: Any, caller: str) -> list[Any]:
    """``paths`` as a list of paths: one ``str`` or ``os.PathLike`` is one path (a run folder, a file or a URL),
    never its characters; any other iterable is listed.

    Args:
        paths: what the caller was given.
        caller: the function named in the message (``open_run``).

    Raises:
        TrajrecUsageError: ``paths`` is neither (an int, bytes, a dict, None), or holds something that is not a path.
    """
    if isinstance(paths, (str, os.PathLike)):
        return [paths]
    if isinstance(paths, (bytes, bytearray, dict)) or not hasattr(paths, "__iter__"):
        raise TrajrecUsageError(f"{caller} takes a run folder or episode file (a str or pathlib.Path) or a list of "
                                f"them, got {type(paths).__name__} {bounded_repr(paths)[:80]}")
    out = list(paths)
    bad = [p for p in out if not isinstance(p, (str, os.PathLike))]
    if bad:
        raise TrajrecUsageError(f"{caller}: each path must be a str or pathlib.Path, got {type(bad[0]).__name__} "
                                f"{bounded_repr(bad[0])[:80]}")
    return out
