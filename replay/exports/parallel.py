"""Exports over several processes (``trajrec export --workers N``): workers read and encode episodes, this process
writes what they return in episode order, so the output is the one a single process writes.

The episode files are split into batches of consecutive files (about ``1/(8 N)`` of the run's bytes each, at most
:data:`BATCH_BYTES`), handed to a pool of ``N`` processes started with ``forkserver`` (``spawn`` where there is
none: no process inherits this one's memory or open files). A batch goes out as paths and comes back as plain
bytes: a JSON summary (the report's counts, the lineage, the files that were not episodes) and the encoded rows,
JSONL text or, for ``parquet``, an Arrow IPC stream per partition. Nothing is pickled but those bytes and paths.
At most ``2 N`` batches are out at once, so memory stays bounded however large the run. Until the first worker is
up (a fresh interpreter importing the export code takes a good part of a second), this process exports the first
batches itself, the same way, so a small export is not slower for its workers.

Each worker reads the labels of a run folder once (an :class:`~trajrec.replay.label_join.EpisodeLabelIndex`, kept
for its next batches) and joins them per episode, as a single-process export does. Parquet rows are cut into row
groups and shards here, at the places one process cuts them, so the files hold the same row groups.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import threading
import warnings
from collections import deque
from dataclasses import fields
from pathlib import Path
from typing import Any

from trajrec.recorder.errors import TrajrecError
from trajrec.recorder.storage import is_url

from . import base as _base
from .base import SURROGATES, ExportOptions, Format, JsonlFormat
from .source import Source

__all__ = ["BATCH_BYTES", "export_parallel"]

#: The most episode-file bytes in one batch: bounds what a batch's encoded rows take in memory (a tool env's
#: JSONL rows are ~25x its compressed steps).
BATCH_BYTES = 256 * 1024
_MAX_FILES = 512
#: This process exports batches itself until a worker is up (tests turn it off to send every batch to the pool).
HEAD_START = True


def start_context() -> Any:
    """The multiprocessing context of parallel exports: ``forkserver`` where the platform has it, else ``spawn``."""
    methods = mp.get_all_start_methods()
    if "forkserver" not in methods:
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    # The server imports the export code once; each worker forks from it with its modules loaded (no pyarrow:
    # the parquet workers import it themselves). Applies when this process starts its server (the first pool).
    ctx.set_forkserver_preload(["trajrec.replay.exports.pipeline"])
    return ctx


def batches(listed: list[tuple[Any, Any]], workers: int) -> list[list[list[str]]]:
    """Consecutive ``[file, found under]`` path pairs grouped by size: about ``1/(8 workers)`` of the bytes each
    (so the pool stays busy and the progress moves), at most :data:`BATCH_BYTES` and ``512`` files."""
    sizes = []
    for f, _ in listed:
        try:
            sizes.append(0 if is_url(os.fspath(f)) else os.path.getsize(f))
        except OSError:
            sizes.append(0)  # the worker reports it
    target = min(BATCH_BYTES, max(1, sum(sizes) // (8 * workers)))
    out: list[list[list[str]]] = []
    cur: list[list[str]] = []
    have = 0
    for (f, given), size in zip(listed, sizes):
        cur.append([os.fspath(f), os.fspath(given)])
        have += size
        if have >= target or len(cur) >= _MAX_FILES:
            out.append(cur)
            cur, have = [], 0
    if cur:
        out.append(cur)
    return out


def _path(text: str) -> Any:
    return text if is_url(text) else Path(text)


def _options_dict(options: ExportOptions) -> dict[str, Any]:
    out = {f.name: getattr(options, f.name) for f in fields(options) if f.init}
    if not isinstance(out["prefer"], str):
        out["prefer"] = list(out["prefer"])
    return out


# -- in the worker -------------------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init(config: str) -> None:
    from .pipeline import FORMATS, filters_for

    cfg = json.loads(config)
    options = ExportOptions(**cfg["options"])
    writer = FORMATS[cfg["format"]]()(None, options)
    _WORKER.update(format=cfg["format"], writer=getattr(writer, "lines_format", None) or writer,
                   filters=filters_for(cfg["where"], cfg["min_agreement"]), stores={})


def _init_worker(config: str) -> None:
    """A pool worker's start: Ctrl-C is for the exporting process, which stops the workers (a server started
    earlier in this process without :class:`_PoolStarter`'s signal mask forks workers that would take it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _init(config)


def _work(job: list[list[str]]) -> tuple[bytes, Any]:
    """Export one batch: ``(JSON summary, encoded rows)``; see the module docstring."""
    import gc

    from .pipeline import EpisodeExporter, ExportReport

    writer = _WORKER["writer"]
    src = Source.of_files([(_path(f), _path(g)) for f, g in job], join_labels=True, stores=_WORKER["stores"])
    report = ExportReport(_WORKER["format"], "")
    lineage: dict[str, Any] = {"judges": {}, "runs": set(), "envs": set(), "agents": set(), "models": set()}
    one = EpisodeExporter(writer, _WORKER["filters"], report, lineage)
    texts: list[str] = []
    write = None
    if isinstance(writer, JsonlFormat):
        def write(view: Any) -> tuple[int, int]:
            text, rows, steps = writer.encode(view)
            texts.append(text)
            return rows, steps
    seen = 0
    gc_was = gc.isenabled()
    gc.disable()  # as in a single-process export: rows are acyclic
    try:
        for ref in src:
            one.export(ref, write)
            seen += ref.n_steps
    finally:
        if gc_was:
            gc.enable()
    before = _base.ESCAPED[0]
    payload = "".join(texts).encode("utf-8", SURROGATES) if write is not None else writer.take_encoded()
    # This batch's count goes with its result, and `take` adds it in the writing process: set back here, so a batch
    # this process exports itself is counted once, as a worker's is.
    escaped, _base.ESCAPED[0] = _base.ESCAPED[0] - before, before
    meta = {
        "escaped": escaped,  # lone surrogates written as text: the writing process counts them (take)
        # (the judges seen are a set: a sorted list in JSON)
        "report": {k: sorted(v) if isinstance(v := getattr(report, k), set) else v
                   for k in ("episodes", "matched", "written", "rows", "steps", "unlabeled", "rules_would_label",
                             "skipped", "written_outcomes", "left_out", "examples", "judges", "written_splits",
                             "partial", "unverified", "header_lost", "unwritten", "live", "prefer_matched",
                             "source_classes")},
        "lineage": {k: v if k == "judges" else sorted(v) for k, v in lineage.items()},
        "errors": [[os.fspath(p), e] for p, e in src.errors],
        "damaged": report.errors,  # readable indexes, damaged steps: left out by EpisodeExporter
        "empty": [[os.fspath(p), e] for p, e in src.empty],
        "steps_seen": seen,
        "ids": one.written_ids,  # the writing process tells different files with the same episode id
    }
    return json.dumps(meta).encode("utf-8"), payload


# -- in the writing process ----------------------------------------------------------------------------------------


_DIED_STARTING = ("an export worker process exited while starting{code}; in a script this happens when "
                  "export(..., workers=N) is not under `if __name__ == \"__main__\":` (each worker imports the "
                  "script again): put the call under that guard, or pass workers=1")


def in_worker_start() -> bool:
    """Whether this process is a worker importing the main script while it starts (``spawn``/``forkserver``): an
    export called there is the script's body run again, not the user's request."""
    return bool(getattr(mp.current_process(), "_inheriting", False))


class _PoolStarter:
    """The worker pool, started in a thread (creating it blocks until the workers' server has imported the
    export code), then pinged: :meth:`up` says when a worker is ready for batches.

    Whether that thread is done is an event it sets, not ``Thread.is_alive``/``join``: a Ctrl-C that interrupts
    ``join()`` marks the thread finished while it runs on (CPython before 3.13, ``_wait_for_tstate_lock``), so the
    stop that follows found no pool yet and left the thread starting workers while this process exited; they
    printed tracebacks (``FileNotFoundError`` from ``SemLock._rebuild``: the pool's semaphores were gone).
    """

    def __init__(self, workers: int, config: str) -> None:
        self._pool: Any = None
        self._ping: Any = None
        self._error: BaseException | None = None
        self._pids: set[int] | None = None  # the workers first seen (a worker never exits while the export runs)
        self._started = threading.Event()  # set once the thread is done: the pool and its ping made, or an error
        self._thread = threading.Thread(target=self._start, args=(workers, config), name="trajrec-export-pool",
                                        daemon=True)
        self._thread.start()

    def _start(self, workers: int, config: str) -> None:
        try:
            if hasattr(signal, "pthread_sigmask"):
                # Ctrl-C reaches the whole process group (a terminal's, `timeout -s INT`): blocked in this thread
                # only (the main thread still takes it), the workers' server started from here inherits the mask,
                # and so do the workers it forks, so neither prints a KeyboardInterrupt traceback (not even while
                # the server imports the export code); this process stops them (:meth:`stop`). The resource
                # tracker is started first: starting it unblocks SIGINT in the thread that starts it.
                from multiprocessing import resource_tracker

                resource_tracker.ensure_running()
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            self._pool = start_context().Pool(workers, initializer=_init_worker, initargs=(config,))
            self._ping = self._pool.apply_async(os.getpid)
        except BaseException as exc:  # raised in the exporting thread by pool()
            self._error = exc
        finally:
            self._started.set()

    def up(self) -> bool:
        """Whether a worker answered, or starting them failed (:meth:`pool` raises then)."""
        if not self._started.is_set():
            return False
        if self._error is not None or self._ping.ready():
            return True
        procs = list(getattr(self._pool, "_pool", ()))
        dead = [p for p in procs if p.exitcode is not None]
        if dead:  # a worker exits only when stopped: one that died before answering never will (the pool restarts it)
            self._error = TrajrecError(_DIED_STARTING.format(code=f" (exit code {dead[0].exitcode})"))
            return True
        # The pool replaces a dead worker within 0.1 s, often before it is seen dead here: a worker not among
        # those first seen replaced one that died (workers that die as they start die again and again).
        pids = {p.pid for p in procs}
        if self._pids is None:
            self._pids = pids
        elif pids - self._pids:
            self._error = TrajrecError(_DIED_STARTING.format(code=""))
            return True
        return False

    def pool(self) -> Any:
        self._started.wait()
        if self._error is not None:
            raise self._error
        return self._pool

    def finish(self) -> None:
        """Every result is in: close and join the workers; a join that does not end within 30 s (a worker that does
        not answer, as one did once on a loaded machine) gives way to the bounded kill of :meth:`stop`."""
        pool = self._pool
        if pool is None or not self._started.is_set() or not self._ping.ready():
            # This process did it all while the workers were starting: stopped now, unheard (a join would wait
            # while the pool restarts workers that die as they start, the script's body run by each).
            died = self.up() and self._error is not None
            self.stop(failed=pool is not None)
            if died:
                warnings.warn(str(self._error), RuntimeWarning, stacklevel=2)
            return
        pool.close()
        joiner = threading.Thread(target=pool.join, name="trajrec-export-pool-join", daemon=True)
        joiner.start()
        joiner.join(timeout=30)
        self.stop(failed=joiner.is_alive())

    def stop(self, *, failed: bool = False) -> None:
        """Stop the workers. With ``failed`` (after a failure: the output closed under the export, Ctrl-C; or
        once every result is in) the workers are killed first and each wait is bounded: a worker may be blocked
        writing a result nobody will read, and ``Pool.terminate`` alone can then wait for it."""
        self._started.wait(timeout=10 if failed else None)
        pool = self._pool
        if pool is None:
            return
        if not failed:
            pool.terminate()
            return
        _stop_replacing(pool)
        for proc in list(getattr(pool, "_pool", ())):  # the pool's worker processes
            try:
                proc.kill()
            except (OSError, ValueError, AttributeError):
                pass  # already gone
        # A worker killed while it waited for a batch holds the task queue's lock for ever, and terminate() then
        # blocks on that lock (multiprocessing's _help_stuff_finish): waiting longer never helps. terminate() is
        # still called (in a thread left behind) so the pool's exit hook, which would block the same way at
        # interpreter exit, has already run. The killed processes are gone within milliseconds.
        ender = threading.Thread(target=pool.terminate, name="trajrec-export-pool-stop", daemon=True)
        ender.start()
        ender.join(timeout=1)


def _stop_replacing(pool: Any) -> None:
    """Have ``pool`` start no more workers, before its workers are killed.

    ``multiprocessing.Pool`` replaces a worker that exits, from its worker-handler thread, within milliseconds of
    the exit. A worker started after a Ctrl-C's kill reads its start-up data (the pool's queue locks, named
    semaphores) once this process is exiting and has removed those semaphores: it printed a ``FileNotFoundError``
    traceback from ``SemLock._rebuild`` under the one "interrupted" line (with the join below, :class:`_PoolStarter`,
    7 Ctrl-Cs in 100 at random moments of a 300-episode export printed one; none since).
    ``Pool.terminate`` stops that thread the same way (its state, then a wake-up) but, run first, it can block on a
    queue lock before it gets there; this does only that part, with private attributes that CPython 3.10-3.13 share
    (a Pool without them is left as it is: the kill then works as before).
    """
    from multiprocessing.pool import TERMINATE

    handler = getattr(pool, "_worker_handler", None)
    notifier = getattr(pool, "_change_notifier", None)
    if handler is None or notifier is None:
        return
    handler._state = TERMINATE
    try:
        notifier.put(None)  # wakes the thread from its wait for a worker's exit or a finished batch
    except (OSError, ValueError):
        return  # the pool is already torn down: its thread is gone
    # The thread ends within milliseconds (it finishes a worker start it is in, then sees the state); bounded all
    # the same: a start stuck on the workers' server leaves the kill below as it was.
    handler.join(timeout=5)


def _result(pending: Any, procs: list[Any]) -> Any:
    """The result of one batch; raises :class:`TrajrecError` when a worker process died meanwhile (killed by the
    system, out of memory): ``multiprocessing.Pool`` replaces such a worker and never answers its batch, so a
    plain ``get()`` would wait forever."""
    while True:
        try:
            return pending.get(timeout=2)
        except mp.TimeoutError:
            dead = [p for p in procs if p.exitcode is not None]
            if dead:
                raise TrajrecError(f"an export worker process (pid {dead[0].pid}) died with exit code "
                                   f"{dead[0].exitcode} (killed by the system, out of memory?, or, in a script, "
                                   "export(..., workers=N) not under `if __name__ == \"__main__\":`); nothing was "
                                   "written, run the export again, with fewer --workers") from None


def _worker_up(starter: _PoolStarter) -> bool:
    """Whether a worker of the pool is up and ready for batches."""
    return starter.up()


def _merge(report: Any, lineage: dict[str, Any], meta: dict[str, Any]) -> None:
    r = meta["report"]
    for k in ("episodes", "matched", "written", "rows", "steps", "unlabeled", "rules_would_label"):
        setattr(report, k, getattr(report, k) + r[k])
    for reason, n in r["skipped"].items():
        report.skipped[reason] = report.skipped.get(reason, 0) + n
    for outcome, n in r["written_outcomes"].items():
        report.written_outcomes[outcome] = report.written_outcomes.get(outcome, 0) + n
    report.partial.extend(r["partial"])
    report.unverified.extend(r["unverified"])
    report.header_lost.extend(r["header_lost"])
    report.unwritten.extend(r["unwritten"])
    report.live.extend(r["live"])
    for split, n in r["written_splits"].items():
        report.written_splits[split] = report.written_splits.get(split, 0) + n
    report.judges.update(r["judges"])
    report.prefer_matched = report.prefer_matched or r["prefer_matched"]
    report.source_classes.update(r["source_classes"])
    for reason, example in r["examples"].items():  # batches come in episode order: the first one stays
        report.examples.setdefault(reason, example)
    for reason, outcomes in r["left_out"].items():
        per = report.left_out.setdefault(reason, {})
        for outcome, n in outcomes.items():
            per[outcome] = per.get(outcome, 0) + n
    judges = lineage["judges"]
    for judge, n in meta["lineage"]["judges"].items():
        judges[judge] = judges.get(judge, 0) + n
    for key in ("runs", "envs", "agents", "models"):
        lineage[key].update(meta["lineage"][key])


def export_parallel(src: Source, fmt: str, writer: Format, report: Any, lineage: dict[str, Any], where: list[str],
                    min_agreement: float | None, options: ExportOptions, progress: Any, workers: int) -> None:
    """Run the export of ``src`` on ``workers`` processes, writing through ``writer`` in episode order and
    filling ``report`` and ``lineage`` as :func:`~.pipeline.export` does; ``src`` learns the files that were
    not episodes (:meth:`Source.set_scanned`)."""
    config = json.dumps({"format": fmt, "options": _options_dict(options), "where": where,
                         "min_agreement": min_agreement})
    writer = getattr(writer, "lines_format", None) or writer  # atif to one file: its JSONL writer
    all_jobs = batches(src.listed, workers)
    # A worker beyond the number of batches would have nothing to do, and each costs a process start
    # (`-j 1000` on 3 files started 1,000 processes).
    workers = max(1, min(workers, len(all_jobs)))
    jobs = iter(all_jobs)
    errors: list[tuple[Any, str]] = []
    empty: list[tuple[Any, str]] = []
    damaged: list[tuple[str, str]] = []

    def take(meta_bytes: bytes, payload: Any) -> None:
        meta = json.loads(meta_bytes)
        if isinstance(writer, JsonlFormat):
            if payload:
                writer.write_encoded(payload)  # UTF-8 bytes, written as they are
        else:
            for key, data in payload:
                writer.write_encoded(key, data)  # type: ignore[attr-defined]
        _merge(report, lineage, meta)
        _base.ESCAPED[0] += meta.get("escaped", 0)
        errors.extend((_path(p), e) for p, e in meta["errors"])
        damaged.extend((p, e) for p, e in meta["damaged"])
        for eid, p in meta["ids"]:
            src.note_id(eid, p)
        empty.extend((_path(p), e) for p, e in meta["empty"])
        if progress is not None:
            progress.advance(meta["steps_seen"])

    starter = _PoolStarter(workers, config)
    try:
        # Starting the workers takes a good part of a second (a fresh interpreter imports the export code, and
        # creating the pool waits for it): a thread starts them while this process exports the first batches
        # itself, the way a worker does.
        here = False
        while HEAD_START and not _worker_up(starter):
            job = next(jobs, None)
            if job is None:
                break
            if not here:
                _init(config)
                here = True
            take(*_work(job))
        if here:
            _WORKER.clear()  # the labels index and the encoder it kept
        pending: deque[Any] = deque()
        pool = starter.pool()

        def submit() -> None:
            job = next(jobs, None)
            if job is not None:
                pending.append(pool.apply_async(_work, (job,)))

        for _ in range(2 * workers):
            submit()
        procs = list(getattr(pool, "_pool", ()))  # the workers: none of them exits while the export runs
        while pending:
            result = _result(pending.popleft(), procs)
            submit()
            take(*result)
        # In the try: a Ctrl-C while finish() waits (for a pool still starting after this process did every batch,
        # or for the workers to exit) stops them as any other failure does. Outside it, the pool went on starting
        # workers in its thread while this process exited, and they printed tracebacks (_stop_replacing).
        starter.finish()
    except BaseException:
        starter.stop(failed=True)
        raise
    src.set_scanned(errors, empty)
    from .pipeline import unreadable

    report.errors = damaged
    unreadable(report, errors)
