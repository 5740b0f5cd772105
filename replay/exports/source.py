"""The episodes a labeler, an agreement report or an export reads: files under the given paths, each with its
index (header and summary, read without decoding steps) and the label store of its folder."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from trajrec.recorder import Episode, open_episode, read_index
from trajrec.recorder.errors import EmptyEpisodeError, TrajrecFormatError, TrajrecUsageError
from trajrec.recorder.storage import is_url

from ..label_join import EpisodeLabelIndex, EpisodeLabels, EpisodeLabelWriter
from ..labels import Label, LabelStore
from ..library import as_path_list, find_episode_files

__all__ = ["EpisodeRef", "Source", "episode_files"]


def real_key(f: str, real_dirs: dict[str, str]) -> str:
    """The real path of the local file ``f``: the same for a file named twice, through a link or a folder above it.

    Resolving each file costs a system call per path component (2.7 s for 40,000 files): each folder is resolved
    once (kept in ``real_dirs``), and only a file that is itself a symlink in full."""
    folder, name = os.path.split(f)
    real = real_dirs.get(folder)
    if real is None:
        real = real_dirs[folder] = os.path.realpath(folder or ".")
    return os.path.realpath(f) if os.path.islink(f) else os.path.join(real, name)


def episode_files(paths: Iterable[str | os.PathLike[str]], *, seen: set[Any] | None = None,
                  dropped: list[Any] | None = None) -> list[Any]:
    """Episode files named directly or found recursively under folders, sorted by path, each once: ``Path``
    objects, and ``str`` for fsspec URLs (which ``Path`` would mangle).

    Args:
        seen: real paths already listed (by an earlier call): not listed again; updated.
        dropped: if given, gets each file left out as a copy of one listed (the same file named twice, a file
            inside a folder also given, a link to a listed file).
    """
    seen = set() if seen is None else seen
    out: list[Any] = []
    real_dirs: dict[str, str] = {}
    for f in find_episode_files(paths):
        key = f if is_url(f) else real_key(f, real_dirs)
        if key in seen:
            if dropped is not None:
                dropped.append(f)
            continue
        seen.add(key)
        out.append(f if is_url(f) else Path(f))
    return out


@dataclass
class EpisodeRef:
    """One episode file with its index and its run's label store; :meth:`open` reads the steps."""

    path: Path  # a str for an fsspec URL
    index: dict[str, Any]
    store: LabelStore
    root: Path = field(default_factory=Path)

    @property
    def header(self) -> dict[str, Any]:
        return self.index.get("header") or {}

    @property
    def episode_id(self) -> str:
        return str(self.header.get("episode_id", os.path.basename(os.fspath(self.path))))

    @property
    def task(self) -> dict[str, Any]:
        return self.header.get("task") or {}

    @property
    def provenance(self) -> dict[str, Any]:
        return self.header.get("provenance") or {}

    @property
    def summary(self) -> dict[str, Any]:
        return self.index.get("summary") or {}

    @property
    def n_steps(self) -> int:
        return int(self.index.get("steps") or self.summary.get("steps") or 0)

    @property
    def rel_path(self) -> str:
        """The file's path relative to the path it was found under (a file given directly: its name)."""
        if isinstance(self.path, str):
            root = str(self.root).rstrip("/")
            return self.path[len(root) + 1:] if self.path.startswith(root + "/") else self.path.rsplit("/", 1)[-1]
        text, root = os.fspath(self.path), os.fspath(self.root)
        if os.sep == "/" and text.startswith(root) and text[len(root):len(root) + 1] == "/" and root != "/":
            return text[len(root) + 1:]  # what relative_to gives, without its Path objects (~10 µs a file)
        try:
            return self.path.relative_to(self.root).as_posix() if self.root != self.path else self.path.name
        except ValueError:
            return self.path.name

    def labels(self) -> list[Label]:
        """Live labels of this episode (those on steps it does not have left out with a warning:
        :meth:`LabelStore.on_steps`)."""
        return self.store.labels_of(self.episode_id, self.n_steps)

    def joined_labels(self) -> EpisodeLabels:
        """Live labels of this episode as an export joins them (:class:`~trajrec.replay.label_join.EpisodeLabels`:
        no :class:`Label` built for usual lines when the store is an :class:`EpisodeLabelIndex`), those on steps
        it does not have left out with a warning (:meth:`LabelStore.on_steps`)."""
        if isinstance(self.store, EpisodeLabelIndex):
            joined = self.store.episode_labels(self.episode_id)
            lines, n = getattr(joined, "lines", None), self.n_steps
            if lines is not None and lines.last_step() < n:
                return joined  # labels read as text, none on a missing step: no rows built here
            rows = self.store.on_steps(joined.rows, self.episode_id, n)
            return joined if rows is joined.rows else EpisodeLabels(self.episode_id, rows)
        return EpisodeLabels(self.episode_id, self.labels())

    def open(self) -> Episode:
        """The episode, reading its steps; the index already read is reused when the file is unchanged."""
        return open_episode(self.path, index=self.index)


#: How many listed files :meth:`Source.note_id` looks through, from the one after the last it was told.
_LOOK_AHEAD = 64


def _file(text: str) -> Any:
    """An episode file as :func:`episode_files` lists it: a ``Path``, or the ``str`` of an fsspec URL."""
    return text if is_url(text) else Path(text)


class Source:
    """Episodes under some paths, in path order, with one label store per folder.

    Iterating streams the episodes: each file's index is read as its turn comes and nothing is kept, so an
    export or a labeler over 40,000 episodes holds one index at a time. :attr:`episodes`, ``len()``,
    :attr:`total_steps` and :meth:`find` need them all: the first use reads every index and keeps them.

    Files that are not episodes are collected in :attr:`errors` (path, message) instead of stopping the scan;
    files that hold nothing in :attr:`empty`. Both are complete after a whole iteration (or on first use of
    either, which reads every index).
    """

    def __init__(self, paths: Iterable[str | os.PathLike[str]], *, join_labels: bool = False,
                 write_labels: bool = False) -> None:
        self.paths = [p if is_url(os.fspath(p)) else Path(p)
                      for p in as_path_list(paths, "export and the labelers' paths")]
        # join_labels: read each folder's labels as an EpisodeLabelIndex (the places of the lines, each episode's
        # labels read when asked: flat memory for exports); read-only. write_labels: an EpisodeLabelWriter, the
        # same reading for labelers that write one episode's labels at a time.
        self._join = "write" if write_labels else join_labels
        if not self.paths:
            raise TrajrecUsageError("no paths given; pass a run folder or episode files")
        self.stores: dict[Any, LabelStore] = {}
        # Listing the files is cheap (no file is opened) and tells a missing path at once. A file reached twice
        # (given twice, or inside a folder also given) is listed once, under the first path that reached it.
        seen: set[Any] = set()
        #: Files left out as the same file as one listed (:func:`episode_files`).
        self.duplicates: list[Any] = []
        # Kept as text, made a Path as its turn comes: a Path held ~600 bytes a file (6 MB for 10,000 episodes, what
        # grew an export's memory with the run), its text ~150.
        self._files: list[tuple[str, Any]] = [(os.fspath(f), given) for given in self.paths
                                              for f in episode_files([given], seen=seen, dropped=self.duplicates)]
        #: Episode id -> the file that holds it: its place in the listing (an int, not a copy of its path) when
        #: it is there, else its path.
        self._ids: dict[str, int | str] = {}
        self._cursor = 0  # where note_id looks first: exports tell files in listing order
        #: ``(episode id, first file, other file)``: different files holding the same episode id, as told to
        #: :meth:`note_id` (an export tells the episodes it wrote).
        self.same_ids: list[tuple[str, str, str]] = []
        self._episodes: list[EpisodeRef] | None = None
        self._errors: list[tuple[Any, str]] = []
        self._empty: list[tuple[Any, str]] = []
        self._streamed = False

    @classmethod
    def of_files(cls, files: Iterable[tuple[Any, Any]], *, join_labels: bool = False,
                 stores: dict[Any, LabelStore] | None = None) -> Source:
        """A source over ``(episode file, path it was found under)`` pairs already listed (a part of another
        source's :attr:`listed`), sharing ``stores`` (folder -> label store) when given."""
        self = cls.__new__(cls)
        self._files = [(os.fspath(f), given) for f, given in files]
        self.paths = list(dict.fromkeys(given for _, given in self._files))
        self._join = join_labels
        self.stores = stores if stores is not None else {}
        self._episodes = None
        self._errors, self._empty, self._streamed = [], [], False
        self.duplicates, self._ids, self.same_ids, self._cursor = [], {}, [], 0
        return self

    def note_id(self, episode_id: str, path: Any) -> None:
        """Remember which file holds ``episode_id``; a second, different file is added to :attr:`same_ids`."""
        path = os.fspath(path)
        files, k = self._files, self._cursor
        for j in range(k, min(k + _LOOK_AHEAD, len(files))):  # files an export left out since the last it told
            if files[j][0] == path:
                self._cursor = j + 1
                place: int | str = j
                break
        else:
            place = path
        first = self._ids.setdefault(episode_id, place)
        if first is not place:
            first = files[first][0] if isinstance(first, int) else first
            if first != path:
                self.same_ids.append((episode_id, first, path))

    @property
    def listed(self) -> list[tuple[Any, Any]]:
        """``(episode file, path it was found under)`` of every file found, in order (no file opened)."""
        return [(_file(f), given) for f, given in self._files]

    def set_scanned(self, errors: list[tuple[Any, str]], empty: list[tuple[Any, str]]) -> None:
        """Record what a scan made elsewhere (the workers of a parallel export) found unreadable or empty."""
        self._errors, self._empty, self._streamed = list(errors), list(empty), True

    @property
    def files(self) -> int:
        """How many episode files were found (readable or not)."""
        return len(self._files)

    def set_exact_label_times(self, exact: bool) -> None:
        """Whether the label indexes' lines read as text must hold their times' own reprs
        (:attr:`~trajrec.replay.label_join.EpisodeLabelIndex.exact_times`): off for formats that write no label
        time text (``parquet``). The indexes made already and those made later take it."""
        self._exact_times = exact
        for store in self.stores.values():
            if isinstance(store, EpisodeLabelIndex):
                store.exact_times = exact

    def _store(self, folder: Any) -> LabelStore:
        store = self.stores.get(folder)
        if store is None:
            kind = EpisodeLabelWriter if self._join == "write" else EpisodeLabelIndex if self._join else LabelStore
            store = self.stores[folder] = kind(folder)
            if not getattr(self, "_exact_times", True) and isinstance(store, EpisodeLabelIndex):
                store.exact_times = False
        return store

    def stream(self) -> Iterator[EpisodeRef]:
        """The episodes in order, each index read once when its turn comes and not kept here."""
        if self._episodes is not None:
            yield from self._episodes
            return
        errors: list[tuple[Any, str]] = []
        empty: list[tuple[Any, str]] = []
        for text, given in self._files:
            f = _file(text)
            try:
                index = read_index(f)
            except EmptyEpisodeError as exc:
                empty.append((f, str(exc)))
                continue
            except (TrajrecFormatError, OSError) as exc:
                errors.append((f, str(exc)))
                continue
            folder = f.rsplit("/", 1)[0] if isinstance(f, str) else f.parent
            root = f if f == given else given if isinstance(given, str) or given.is_dir() else f
            yield EpisodeRef(f, index, self._store(folder), root)
        self._errors, self._empty, self._streamed = errors, empty, True

    def __iter__(self) -> Iterator[EpisodeRef]:
        return self.stream()

    @property
    def episodes(self) -> list[EpisodeRef]:
        """Every readable episode, indexes loaded (read on first use and kept)."""
        if self._episodes is None:
            self._episodes = list(self.stream())
        return self._episodes

    @property
    def errors(self) -> list[tuple[Any, str]]:
        """``(path, message)`` of the files that are not readable episodes."""
        if not self._streamed:
            _ = self.episodes
        return self._errors

    @property
    def empty(self) -> list[tuple[Any, str]]:
        """``(path, message)`` of the files that hold nothing (their writer was killed at its first write):
        skipped, not an error."""
        if not self._streamed:
            _ = self.episodes
        return self._empty

    def __len__(self) -> int:
        return len(self.episodes)

    @property
    def total_steps(self) -> int:
        return sum(e.n_steps for e in self.episodes)

    def find(self, episode_id: str) -> EpisodeRef:
        """The episode with this id, else the only one whose id starts with it, else the only one whose id holds
        it (e.g. its random suffix); a clear error otherwise."""
        exact = [e for e in self.episodes if e.episode_id == episode_id]
        if exact:
            return exact[0]
        pref = [e for e in self.episodes if e.episode_id.startswith(episode_id)]
        if not pref:
            pref = [e for e in self.episodes if episode_id in e.episode_id]
        if len(pref) == 1:
            return pref[0]
        if len(pref) > 1:
            some = ", ".join(e.episode_id for e in pref[:4])
            raise TrajrecUsageError(f"episode id {episode_id!r} matches {len(pref)} episodes ({some}...); give more "
                                    "of the id")
        ids = [e.episode_id for e in self.episodes]
        near = difflib.get_close_matches(episode_id, ids, n=3, cutoff=0.5)
        hint = f"; nearest: {', '.join(near)}" if near else ""
        where = ", ".join(str(p) for p in self.paths)
        raise TrajrecUsageError(f"no episode {episode_id!r} under {where} ({len(ids)} episodes){hint}; "
                                f"`trajrec ls {where}` lists them")
