"""``LabelSource``: the label stores of the viewed paths, shared by the library's scan thread and the episode
screens.

``trajrec.replay.labels.LabelStore`` is not thread-safe (its indexes are plain dicts), and the library asks for labeled
fractions from its scan worker while an episode screen may be writing labels on the UI thread. So every use of
the stores, and of a store handed out by :meth:`LabelSource.store_for`, holds :attr:`LabelSource.lock`.

The stores are found and read on first use, which is in the scan thread when the library has a "labeled"
column: reading a big folder's labels does not hold up the first screen.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Iterable

from trajrec.recorder import TrajrecError
from trajrec.replay.labels import LABELS_DIR, LabelStore, LabelStores
from trajrec.replay.run import label_facts


class LabelSource:
    """Finds the label stores under ``paths`` (on first use) and serves them under one lock.

    >>> import tempfile
    >>> from trajrec.replay.labels import LabelStore
    >>> runs = tempfile.mkdtemp()
    >>> _ = LabelStore(runs).add("ep-1", 0, 1, judge="human:ana")
    >>> source = LabelSource([runs])
    >>> source.labeled_fraction(f"{runs}/ep-1.msgpack.zst", "ep-1", 4)
    0.25
    >>> source.labeled_fraction(f"{runs}/ep-2.msgpack.zst", "ep-2", 4) is None
    True
    """

    def __init__(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        self.paths = [os.fspath(p) for p in paths]
        self.lock = threading.RLock()
        self.problem = ""  # why labels could not be read, if they could not
        #: Label versions read from other writers so far, and folders added, through this source (by the library
        #: and by an episode screen, which reads only its own folder's store): the library's ``labeled`` column
        #: is redrawn whole when this changed since it was last brought up to date.
        self.reads = 0
        self._stores: LabelStores | None = None

    def _all(self) -> LabelStores:
        if self._stores is None:
            self._stores = LabelStores(self.paths)
        return self._stores

    def labeled_fraction(self, episode_path: str, episode_id: str, n_steps: int) -> float | None:
        """The share of the episode's steps with a live label (any judge) in the store of its file's folder (a
        label belongs to that folder: a same-id copy elsewhere has its own); None (shown ``-``) without labels.
        The library's ``labeled_fraction`` provider; safe to call from its scan thread."""
        with self.lock:
            try:
                store = self._all().store_in(episode_path)
                if store is None or not store.has_labels(episode_id):
                    return None
                return store.labeled_fraction(episode_id, n_steps)
            except TrajrecError as exc:  # a labels folder that cannot be listed: the column shows "-"
                self.problem = str(exc)
                return None

    def label_facts(self, episode_path: str, episode_id: str, n_steps: int) -> dict[str, Any]:
        """The label fields of the filter grammar (``labels``, ``labeled``, ``labeled_fraction``, ``judge``,
        ``agreement``) for an episode, from the labels of its file's own folder, computed as ``trajrec ls
        --where`` does (:func:`trajrec.replay.run.label_facts`): the library filter's provider. Labels that
        cannot be read count as none (:attr:`problem` says why)."""
        with self.lock:
            try:
                store = self._all().store_in(episode_path)
                labels = (store.labels_of(episode_id, n_steps) if store is not None and store.has_labels(episode_id)
                          else [])
            except TrajrecError as exc:
                self.problem = str(exc)
                labels = []
            return label_facts(labels, n_steps)

    def labeled_episodes(self) -> set[str]:
        """Ids of the episodes with a live label in any store: :meth:`labeled_fraction` is None for every other
        id (the library's scan asks only about these; see :func:`trajrec.replay.library.scan`)."""
        with self.lock:
            try:
                return set().union(*(store.episodes() for store in self._all()))
            except TrajrecError as exc:
                self.problem = str(exc)
                return set()

    def store_for(self, episode_path: str | os.PathLike[str]) -> LabelStore:
        """The store of an episode's run folder (created on first use); use it holding :attr:`lock`."""
        with self.lock:
            return self._all().for_episode(episode_path)

    def refresh(self, store: LabelStore | None = None) -> int:
        """Read what other writers appended, to ``store`` or to every store read so far; returns the number of
        label versions read (cheap when nothing changed: a listing and a ``stat`` per file)."""
        with self.lock:
            if store is not None:
                read = store.refresh()
            else:
                read = self._stores.refresh() if self._stores is not None else 0
            self.reads += read
            return read

    def discover(self, episode_paths: Iterable[str]) -> int:
        """Start reading the labels of folders (of ``episode_paths``) that had none when the source was opened
        and have some now: another process labeled there first. Returns the number of folders added; costs a
        ``stat`` per folder not read yet."""
        with self.lock:
            stores = self._all()
            known = {os.path.abspath(s.run_dir) for s in stores}
            added = 0
            for folder in {os.path.dirname(os.path.abspath(p)) for p in episode_paths}:
                if folder not in known and os.path.isdir(os.path.join(folder, os.fspath(LABELS_DIR))):
                    stores.for_episode(os.path.join(folder, "_"))  # reads the folder's labels
                    added += 1
            self.reads += added
            return added
