"""Label stores across run folders: :class:`LabelStores` finds the store of an episode id among many runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Iterator

from trajrec.recorder.storage import is_url

from .label_model import Label
from .label_store import LABELS_DIR, LabelStore


class LabelStores:
    """The label stores of every run folder under some paths, for tools that know episode ids but not their
    folders (the TUI library's ``labeled_fraction`` provider).

    >>> import tempfile
    >>> runs = tempfile.mkdtemp()
    >>> _ = LabelStore(f"{runs}/shell").add("ep-1", 0, 1, judge="human:ana")
    >>> stores = LabelStores([runs])
    >>> stores.labeled_fraction("ep-1", 4), stores.labeled_fraction("ep-2", 4)
    (0.25, 0.0)
    """

    def __init__(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        self._stores: dict[Path, LabelStore] = {}
        self._by_episode: dict[str, LabelStore] = {}
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

    def labeled_fraction(self, episode_id: str, n_steps: int) -> float:
        store = self.store_of(episode_id)
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
