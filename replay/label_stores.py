"""Label stores across run folders: :class:`LabelStores` finds the store of an episode id among many runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Iterator

from trajrec.recorder.storage import is_url

from .label_model import Label
from .label_store import LABELS_DIR, LabelStore


class LabelStores:
    """The label stores of every run folder under some paths (the TUI library's ``labeled`` column, ``trajrec ls``).

    A label belongs to the folder of its episode file: :meth:`store_in` and :meth:`labeled_fraction` look in that
    folder's store only, so a same-id copy of the file in another folder does not share its labels.

    >>> import tempfile
    >>> runs = tempfile.mkdtemp()
    >>> _ = LabelStore(f"{runs}/shell").add("ep-1", 0, 1, judge="human:ana")
    >>> stores = LabelStores([runs])
    >>> stores.labeled_fraction(f"{runs}/shell/ep-1.msgpack.zst", "ep-1", 4)
    0.25
    >>> stores.labeled_fraction(f"{runs}/copy/ep-1.msgpack.zst", "ep-1", 4)  # a copy elsewhere: not its labels
    0.0
    """

    def __init__(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        self._stores: dict[Path, LabelStore] = {}
        self._by_episode: dict[str, LabelStore] = {}
        self._by_folder: dict[str, LabelStore] = {}  # absolute folder -> its store (the folders read so far)
        for raw in paths:
            if is_url(os.fspath(raw)):
                continue  # remote runs carry no labels here
            p = Path(raw)
            if p.is_file():
                if (p.parent / LABELS_DIR).is_dir():
                    self._add(p.parent)
            elif p.is_dir():
                for root, dirs, _files in os.walk(p):
                    if (Path(root) / LABELS_DIR).is_dir():
                        self._add(Path(root))
                    dirs[:] = [d for d in dirs if d != LABELS_DIR.parts[0]]

    def _add(self, folder: Path) -> LabelStore:
        store = self._stores.get(folder)
        if store is None:
            store = self._stores[folder] = LabelStore(folder)
            if not is_url(os.fspath(folder)):
                self._by_folder[os.path.abspath(folder)] = store
            self._index(store)
        return store

    def _index(self, store: LabelStore) -> None:
        for eid in store.episodes():
            self._by_episode[eid] = store

    def for_episode(self, episode_path: str | os.PathLike[str]) -> LabelStore:
        """The store an episode's labels go to (its file's folder), created on first use; a store of a run on
        remote storage (an fsspec URL) is read-only."""
        path = os.fspath(episode_path)
        return self._add(path.rsplit("/", 1)[0] if is_url(path) else Path(path).parent)  # type: ignore[arg-type]

    def store_of(self, episode_id: str) -> LabelStore | None:
        """The store holding labels of this episode, if any (labels added through any store here count)."""
        store = self._by_episode.get(episode_id)
        if store is None:
            for s in self._stores.values():
                if s.has_labels(episode_id):
                    store = self._by_episode[episode_id] = s
                    break
        return store

    def current(self, episode_id: str, **filters: Any) -> list[Label]:
        store = self.store_of(episode_id)
        return store.current(episode_id, **filters) if store is not None else []

    def store_in(self, episode_path: str | os.PathLike[str]) -> LabelStore | None:
        """The store of the episode file's own folder, when that folder's labels were read (it had labels when
        the stores were opened, or :meth:`for_episode` read it since); None otherwise. Never creates a store."""
        path = os.fspath(episode_path)
        if is_url(path):
            return None
        return self._by_folder.get(os.path.dirname(os.path.abspath(path)))

    def labeled_fraction(self, episode_path: str | os.PathLike[str], episode_id: str, n_steps: int) -> float:
        """The share of the episode's steps with a live label in its own folder's store (0.0 without)."""
        store = self.store_in(episode_path)
        return store.labeled_fraction(episode_id, n_steps) if store is not None else 0.0

    def refresh(self) -> int:
        """Read what every store's other writers appended; returns the number of label versions read."""
        n = 0
        for store in self._stores.values():
            n += store.refresh()
            self._index(store)
        return n

    def __iter__(self) -> Iterator[LabelStore]:
        return iter(self._stores.values())
