"""The episodes a labeler, an agreement report or an export reads: files under the given paths, each with its
index (header and summary, read without decoding steps) and the label store of its folder."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from trajrec.recorder import Episode, open_episode, read_index
from trajrec.recorder.errors import EmptyEpisodeError, TrajrecFormatError, TrajrecUsageError
from trajrec.recorder.storage import is_url

from ..labels import Label, LabelStore
from ..library import find_episode_files

__all__ = ["EpisodeRef", "Source", "episode_files"]


def episode_files(paths: Iterable[str | os.PathLike[str]]) -> list[Any]:
    """Episode files named directly or found recursively under folders, sorted by path, each once: ``Path``
    objects, and ``str`` for fsspec URLs (which ``Path`` would mangle)."""
    seen: set[Any] = set()
    out: list[Any] = []
    for f in find_episode_files(paths):
        if is_url(f):
            if f not in seen:
                seen.add(f)
                out.append(f)
            continue
        p = Path(f)
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            out.append(p)
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
        try:
            return self.path.relative_to(self.root).as_posix() if self.root != self.path else self.path.name
        except ValueError:
            return self.path.name

    def labels(self) -> list[Label]:
        """Live labels of this episode."""
        return self.store.current(self.episode_id)

    def open(self) -> Episode:
        return open_episode(self.path)


class Source:
    """Episodes under some paths, in path order, with one label store per folder.

    Files that are not episodes are collected in :attr:`errors` (path, message) instead of stopping the scan.
    """

    def __init__(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        self.paths = [p if is_url(os.fspath(p)) else Path(p) for p in paths]
        if not self.paths:
            raise TrajrecUsageError("no paths given; pass a run folder or episode files")
        self.stores: dict[Path, LabelStore] = {}
        self.errors: list[tuple[Path, str]] = []
        #: files that hold nothing (their writer was killed at its first write): skipped, not an error
        self.empty: list[tuple[Path, str]] = []
        self.episodes: list[EpisodeRef] = []
        for given in self.paths:
            for f in episode_files([given]):
                try:
                    index = read_index(f)
                except EmptyEpisodeError as exc:
                    self.empty.append((f, str(exc)))
                    continue
                except (TrajrecFormatError, OSError) as exc:
                    self.errors.append((f, str(exc)))
                    continue
                folder = f.rsplit("/", 1)[0] if isinstance(f, str) else f.parent
                store = self.stores.get(folder)
                if store is None:
                    store = self.stores[folder] = LabelStore(folder)
                root = f if f == given else given if isinstance(given, str) or given.is_dir() else f
                self.episodes.append(EpisodeRef(f, index, store, root))

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.episodes)

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
