"""Whole runs from Python: :func:`open_run` lists a run's episodes from the catalog (headers and summaries, no
step is decoded), filters them with the one query grammar (:mod:`trajrec.replay.query`), and turns their steps
into flat rows, a pyarrow Table (the schema of the parquet export), a pandas DataFrame or a Hugging Face
``datasets.Dataset``.

>>> import tempfile, gymnasium as gym
>>> from trajrec import Recorder, open_run
>>> folder = tempfile.mkdtemp()
>>> env = Recorder(gym.make("CartPole-v1"), folder)
>>> for seed in (0, 1):
...     _ = env.reset(seed=seed)
...     for _ in range(3):
...         _ = env.step(0)
>>> env.close()
>>> run = open_run(folder)
>>> len(run), len(run.where("steps>=3")), len(run.where("env:mountaincar"))
(2, 2, 0)
>>> [row["step"] for row in run.steps()]
[0, 1, 2, 0, 1, 2]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Iterator

from trajrec.recorder import Episode, open_episode
from trajrec.recorder.errors import TrajrecFormatError, TrajrecUsageError, require
from trajrec.recorder.storage import is_url

from .agreement import episode_agreement
from .labels import LabelStore
from .library import EpisodeEntry, as_path_list, find_episode_files, finite_time, scan
from .query import Query, parse_query

__all__ = ["Run", "label_facts", "open_run"]

_ARROW_PIP = "pip install 'trajrec[parquet]'"


class Run:
    """The episodes of one or more run folders (or files), listed from the catalog; see :func:`open_run`.

    Attributes:
        paths: the folders and files the run was opened from.
        query: the filter this run applies (empty: every episode).
    """

    def __init__(self, paths: Iterable[str | os.PathLike[str]], *, query: Query | None = None,
                 entries: list[EpisodeEntry] | None = None, errors: list[tuple[str, str]] | None = None) -> None:
        self.paths = [os.fspath(p) for p in paths]
        if not self.paths:
            raise TrajrecUsageError("open_run needs a run folder, an episode file or a list of them")
        self.query = query or Query()
        self._entries = entries
        self._errors = errors if errors is not None else ([] if entries is not None else None)
        self._stores: dict[str, LabelStore] = {}
        #: What listing noted without failing: empty stubs skipped, a summary cache ignored or not saved.
        self.problems: list[str] = []

    # -- listing ------------------------------------------------------------------------------------------------

    @property
    def entries(self) -> list[EpisodeEntry]:
        """One summary row per readable episode, in path order (the order of ``trajrec ls`` and ``trajrec
        export``; :meth:`in_recording_order` sorts by reset time); read from the catalog on first use (files that
        cannot be read are in :attr:`errors`, not here: ``len``, :meth:`where` and iteration agree)."""
        if self._entries is None:
            from .exports.source import real_key

            found: list[EpisodeEntry] = []
            seen: set[str] = set()
            real_dirs: dict[str, str] = {}
            for batch in scan(self.paths):
                for e in batch.entries:  # a file given twice, or inside a folder also given, counts once
                    key = e.path if is_url(e.path) else real_key(e.path, real_dirs)
                    if key not in seen:
                        seen.add(key)
                        found.append(e)
                self.problems.extend(batch.problems)
            self._errors = [(e.path, e.error) for e in found if e.error]
            good = [e for e in found if not e.error]
            self._entries = self._filter(good) if self.query else good
        return self._entries

    @property
    def errors(self) -> list[tuple[str, str]]:
        """``(path, reason)`` of every file of the run that cannot be read (not counted, listed or iterated), and
        of those found damaged in their steps once rows were read (:meth:`steps`, :meth:`to_arrow`)."""
        if self._errors is None:
            self.entries  # noqa: B018 - the scan fills both
        assert self._errors is not None
        return list(self._errors)

    def where(self, query: str | Iterable[str]) -> Run:
        """The episodes that match ``query`` as well as this run's filter (grammar: :mod:`trajrec.replay.query`).

        Label terms (``labeled``, ``judge:...``) read the labels as they are now (:meth:`refresh_labels`); the
        returned run's episodes are chosen then: call ``where`` again to choose by labels added later.

        Raises:
            QueryError: the query does not parse; the message names the term and the fix.
        """
        self.refresh_labels()
        q = self.query & parse_query(query)
        return self._derived(q, self._filter(self.entries, parse_query(query)))

    def _derived(self, query: Query, entries: list[EpisodeEntry]) -> Run:
        """A run of these paths holding ``entries``, sharing this run's label stores and problems."""
        run = Run(self.paths, query=query, entries=entries, errors=self.errors)
        run._stores = self._stores
        run.problems = list(self.problems)
        return run

    def _filter(self, entries: list[EpisodeEntry], query: Query | None = None) -> list[EpisodeEntry]:
        query = query if query is not None else self.query
        if not query:
            return list(entries)
        out = []
        for e in entries:
            facts = e.facts()
            if query.needs_labels:
                facts.update(self._label_facts(e))
            if query.matches(facts):
                out.append(e)
        return out

    def in_recording_order(self) -> Run:
        """This run's episodes in the order they were recorded: by the time of each episode's ``reset()`` (the
        reset record's ``time``, a float), then by path; the order ``env.episode_paths`` lists them in.

        The default order (:attr:`entries`) is path order, the order of ``trajrec ls`` and ``trajrec export``:
        the Recorder names a file ``<env>-<start second>-<random hex>``, so a run of one env sorts by the second
        an episode started, and episodes started within the same second in random order. This method reads each
        episode's summary time (:attr:`EpisodeEntry.started`, the reset's), or its first frame where the index
        has none; a file whose reset time cannot be read sorts after the others, by path. ``trajrec ls --sort
        started`` lists this order.

        >>> import tempfile, gymnasium as gym
        >>> from trajrec import Recorder, open_run
        >>> folder = tempfile.mkdtemp()
        >>> env = Recorder(gym.make("CartPole-v1"), folder)
        >>> for seed in range(5):
        ...     _ = env.reset(seed=seed)
        >>> env.close()
        >>> [ep.reset.seed for ep in open_run(folder).in_recording_order()]
        [0, 1, 2, 3, 4]
        """
        keyed = []
        for e in self.entries:
            t = e.started  # the summary's start_time: the reset record's time, from the index already read
            if t is None:
                try:
                    with open_episode(e.path) as ep:
                        t = ep.reset.time
                except (TrajrecFormatError, OSError):
                    t = None
            t = finite_time(t)
            keyed.append(((0, t, e.path) if t is not None else (1, 0.0, e.path), e))
        keyed.sort(key=lambda ke: ke[0])
        return self._derived(self.query, [e for _k, e in keyed])

    def refresh_labels(self) -> int:
        """Read the labels added to this run's label stores since they were read (by this process or another);
        :meth:`where`, :meth:`steps`, :meth:`to_arrow`, :meth:`to_hf_dataset` and iteration call it, so a run
        opened before labeling sees the labels added since. Cheap when nothing changed: a ``stat`` per labels
        file (see ``docs/LABELS.md``). Returns the number of label versions read."""
        return sum(store.refresh() for store in self._stores.values())

    def label_store(self, path: str) -> LabelStore:
        """The labels of the episode file ``path`` (its folder's store), the one this run's label filters read:
        each store warns once about labels on steps an episode does not have."""
        return self._store(path)

    def _store(self, path: str) -> LabelStore:
        folder = path.rsplit("/", 1)[0] if is_url(path) else os.path.dirname(os.path.abspath(path))
        store = self._stores.get(folder)
        if store is None:
            store = self._stores[folder] = LabelStore(folder)
        return store

    def _label_facts(self, e: EpisodeEntry) -> dict[str, Any]:
        return label_facts(self._store(e.path).labels_of(e.episode_id, e.steps), e.steps)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Episode]:
        """Each readable episode, opened in turn (close it, or use it as a context manager, when done)."""
        self.refresh_labels()
        for e in self.entries:
            yield open_episode(e.path)

    def __repr__(self) -> str:
        where = f" where {self.query.text!r}" if self.query else ""
        return f"<Run {', '.join(self.paths)}{where}: {len(self)} episodes>"

    # -- rows ---------------------------------------------------------------------------------------------------

    def _views(self, options: Any) -> Iterator[Any]:
        from .exports.base import EpisodeView
        from .exports.source import EpisodeRef

        self.refresh_labels()  # labels added since the run was opened (or last read) count
        for e in self.entries:
            if e.error:
                continue
            try:
                ep = open_episode(e.path)
            except TrajrecFormatError as exc:  # damaged since the listing read its summary
                self._damaged(e.path, exc)
                continue
            with ep:
                store = self._store(e.path)
                if is_url(e.path):
                    root = next((g.rstrip("/") for g in self.paths if e.path.startswith(g.rstrip("/") + "/")),
                                e.path)
                    ref = EpisodeRef(e.path, ep.index, store, root)  # type: ignore[arg-type]
                else:
                    ref = EpisodeRef(Path(e.path), ep.index, store, self._root_of(e.path))
                yield EpisodeView(ref, ep, store.labels_of(ep.episode_id, ref.n_steps), options)

    def _root_of(self, path: str) -> Path:
        """The run path ``path`` was found under (so ``file`` columns match the export's relative paths)."""
        for given in self.paths:
            g = Path(given)
            if g.is_dir() and Path(path).resolve().is_relative_to(g.resolve()):
                return g
        return Path(path)

    def _options(self, label_map: str, prefer: str | None) -> Any:
        from .exports.base import ExportOptions

        return ExportOptions(label_map=label_map) if prefer is None else ExportOptions(label_map=label_map,
                                                                                       prefer=prefer)

    def _episode_rows(self, options: Any) -> Iterator[list[tuple[Any, ...]]]:
        """Each readable episode's parquet rows, whole: an episode found damaged while its steps are read (a frame
        that fails its checksum) gives no rows; it is added to :attr:`errors` and named in a warning with the fix,
        as ``trajrec export`` leaves it out."""
        from .exports.parquet import step_rows

        for view in self._views(options):
            try:
                rows = list(step_rows(view))  # the whole episode, or none of it
            except TrajrecFormatError as exc:
                self._damaged(str(view.ref.path), exc)
                continue
            yield rows

    def _damaged(self, path: str, exc: Exception) -> None:
        import warnings

        if self._errors is not None and all(p != path for p, _ in self._errors):
            self._errors.append((path, str(exc)))
        text = str(exc)
        # the reader's errors name their fix (fsck); one that does not gets it here, once
        fix = "" if "trajrec fsck" in text else f"; `trajrec fsck {path}` lists the damage"
        warnings.warn(f"{path} left out, damaged: {text}{fix}", stacklevel=4)

    def steps(self, *, label_map: str = "strict", prefer: str | None = None) -> Iterator[dict[str, Any]]:
        """One flat row per step of every readable episode: the columns of the parquet export (see
        ``docs/EXPORT.md``), with the preferred label of the step chosen as the export chooses it. A damaged
        episode is left out whole, with a warning (and in :attr:`errors`)."""
        from .exports.parquet import COLUMNS

        for rows in self._episode_rows(self._options(label_map, prefer)):
            for row in rows:
                yield dict(zip(COLUMNS, row))

    def to_arrow(self, *, label_map: str = "strict", prefer: str | None = None) -> Any:
        """The steps as a ``pyarrow.Table`` with the parquet export's schema and key-value metadata (one schema
        for every run, env and label map; the rows ``trajrec export --format parquet`` writes).

        Raises:
            MissingDependencyError: pyarrow is not installed (``pip install 'trajrec[parquet]'``).
        """
        pa = require("pyarrow", _ARROW_PIP, "Run.to_arrow")
        from .exports.arrow_build import build
        from .exports.parquet import COLUMNS, metadata, schema

        options = self._options(label_map, prefer)
        where = [self.query.text] if self.query else []
        sch = schema().with_metadata(metadata(options, where=where, sources=self.paths))
        batches = []
        cols: list[list[Any]] = [[] for _ in COLUMNS]

        def batch() -> Any:  # the export's builders: no pa.array, which imports pandas (see exports/arrow_build.py)
            return pa.RecordBatch.from_arrays([build(pa, f.type, c) for c, f in zip(cols, sch)], schema=sch)

        for rows in self._episode_rows(options):
            for row in rows:
                for col, v in zip(cols, row):
                    col.append(v)
            if len(cols[0]) >= 65_536:
                batches.append(batch())
                cols = [[] for _ in COLUMNS]
        if cols[0] or not batches:
            batches.append(batch())
        return pa.Table.from_batches(batches, schema=sch)

    def to_pandas(self, **kwargs: Any) -> Any:
        """The steps as a ``pandas.DataFrame`` (through :meth:`to_arrow`; needs pandas and pyarrow)."""
        require("pandas", "pip install pandas", "Run.to_pandas")
        return self.to_arrow(**kwargs).to_pandas()

    def to_hf_dataset(self, **kwargs: Any) -> Any:
        """The steps as a ``datasets.Dataset`` with explicit ``Features`` derived from the export schema, so
        observations of mixed types (text here, numbers there) never break it.

        Raises:
            MissingDependencyError: ``datasets`` is not installed (``pip install datasets``).
        """
        datasets = require("datasets", "pip install datasets", "Run.to_hf_dataset")
        table = self.to_arrow(**kwargs)
        features = datasets.Features.from_arrow_schema(table.schema)
        return datasets.Dataset(table, info=datasets.DatasetInfo(features=features))


def label_facts(labels: list[Any], steps: int) -> dict[str, Any]:
    """The query facts an episode's live labels give (the label fields of :mod:`trajrec.replay.query`)."""
    labeled = {lab.target for lab in labels if isinstance(lab.target, int) and lab.target < steps}
    return {"labels": len(labels), "labeled": bool(labels),
            "labeled_fraction": len(labeled) / steps if steps else 0.0,
            "judge": {lab.judge for lab in labels}, "agreement": episode_agreement(labels)}


def open_run(path_or_paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> Run:
    """Open a run: a folder of episode files (searched recursively), one episode file, or a list of either.

    Nothing is decoded until asked for: ``len(run)`` and :meth:`Run.where` read the catalog (summaries only).
    Episodes come in path order, as ``trajrec ls`` and ``trajrec export`` list them (by the second each started,
    then the random part of the file name); :meth:`Run.in_recording_order` gives the order they were recorded in.

    Raises:
        TrajrecUsageError: a path does not exist, no path was given, or one is not a path (a str or
            ``os.PathLike``).
    """
    paths = as_path_list(path_or_paths, "open_run")
    for p in paths:  # a missing path fails here, with its name, not at first use
        if not is_url(os.fspath(p)) and not os.path.exists(p):
            find_episode_files([p])  # raises the library's message for a missing path
    return Run(paths)

