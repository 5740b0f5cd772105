"""``trajrec report``: what a run is worth as training data, at a glance.

:func:`build_report` streams once over a run's episodes (each file opened, its index read and its step records
decoded frame by frame, then closed) and returns plain JSON-able figures in six sections: ``coverage``,
``difficulty``, ``failures``, ``checks``, ``behaviour`` and ``lineage`` (``docs/REPORT.md`` describes every
field). :func:`render_text` draws them as terminal tables, :func:`render_html` as one self-contained HTML page
with plots (needs ``pip install 'trajrec[report]'``).

>>> import tempfile, gymnasium as gym
>>> from trajrec import Recorder
>>> folder = tempfile.mkdtemp()
>>> env = Recorder(gym.make("CartPole-v1"), folder)
>>> for seed in (0, 1):
...     _ = env.reset(seed=seed)
...     for a in (0, 1, 0):
...         _ = env.step(a)
>>> env.close()
>>> rep = build_report([folder])
>>> rep["episodes"], rep["steps"], rep["behaviour"]["duplicates"]["groups"]
(2, 6, 1)
"""

from __future__ import annotations

import gc
import os
import time
from typing import Any, Callable, Iterable

from trajrec.recorder import TrajrecError, read_records
from trajrec.recorder.model import gaps
from trajrec.recorder.version import __version__

from ..labels import LabelStore
from ..library import find_episode_files
from ..query import index_facts, parse_query
from ..run import label_facts
from .behaviour import Behaviour
from .episode import EpisodeFacts, read_steps, usage_from_summary
from .failures import Failures
from .judging import Judging
from .lineage import Lineage
from .notable import Notable
from .tasks import TaskBank, Tasks

__all__ = ["REPORT_VERSION", "build_report", "render_html", "render_text"]

#: Bumped when a field of the report's JSON changes meaning or goes away (new fields only get added).
REPORT_VERSION = 1

#: ``progress(done, total)``, called after each episode file.
ProgressFn = Callable[[int, int], None]


def _being_recorded(path: str) -> bool:
    """Whether a live Recorder holds ``path`` (its lock): no index yet because it is being written, not damaged."""
    from trajrec.recorder.fsck import being_recorded

    return being_recorded(path)


def _files(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    paths = list(paths)
    if len(paths) == 1:
        return find_episode_files(paths)  # one folder or file lists each file once
    seen: set[str] = set()
    out = []
    for f in find_episode_files(paths):
        key = os.path.normpath(os.path.abspath(f))  # no resolve(): a stat per file costs ~0.4 s on 40,000 files
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def build_report(paths: Iterable[str | os.PathLike[str]], *, where: str | None = None,
                 task_bank: TaskBank | None = None, with_recorded: bool = False, top: int = 10,
                 progress: ProgressFn | None = None) -> dict[str, Any]:
    """The figures of a run (one or more folders or episode files), in one streaming pass.

    Args:
        paths: run folders (searched recursively) or episode files.
        where: a query (:mod:`trajrec.replay.query`) choosing the episodes to report on.
        task_bank: ``task_bank(env_id) -> {task id: split} | None``, the task banks coverage is checked against
            (the command line passes :func:`trajrec.envs.banks.task_bank`, which knows the built-in envs).
        with_recorded: also compare the checks recorded on steps in judge agreement (as labels are).
        top: how many episodes and steps the "worth a look" and "disagree most" lists keep.
        progress: called with ``(done, total)`` after each file.

    Raises:
        TrajrecUsageError: a path does not exist.
        QueryError: ``where`` does not parse.
    """
    paths = [os.fspath(p) for p in paths]
    query = parse_query(where) if where else None
    started = time.perf_counter()
    files = _files(paths)
    notable = Notable(per_reason=top)
    tasks = Tasks(task_bank)
    failures = Failures(notable)
    judging = Judging(notable, with_recorded=with_recorded, top=top)
    behaviour = Behaviour(notable, top=top)
    lineage = Lineage()
    stores: dict[str, LabelStore] = {}
    unreadable: list[dict[str, str]] = []
    incomplete = 0
    lost: list[str] = []  # episodes that lost steps (to damage, or to a failed write while recording)
    live: list[str] = []
    kept: list[str] = []
    steps = 0  # readable steps
    damaged_steps = unwritten_steps = 0  # lost: numbered steps to damage; env steps to a failed write
    # The cyclic collector paused for the pass: decoded records form no cycles and are freed as they go, but
    # their millions of short-lived dicts would set off full collections that rescan everything kept
    # (measured: 38% of the report's time on 10,000 episodes).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for done, path in enumerate(files, 1):
            try:
                facts = _read(path, len(kept), stores, query)
            except (TrajrecError, OSError, ValueError) as exc:
                unreadable.append({"path": path, "error": str(exc)})
                facts = None
            if facts is not None:
                kept.append(path)
                steps += facts.steps
                damaged_steps += facts.damaged_steps
                unwritten_steps += facts.unwritten_steps
                if facts.lost_steps:
                    lost.append(path)
                if not facts.complete:
                    if _being_recorded(path):
                        live.append(path)  # not damaged: what it holds so far, counted like the rest
                    else:
                        incomplete += 1
                for section in (tasks, failures, judging, behaviour, lineage):
                    section.add(facts)
            if progress is not None:
                progress(done, len(files))
    finally:
        if was_enabled:
            gc.enable()
    failures_out = failures.result()
    behaviour_out = behaviour.result(kept)
    failures_out["worth_a_look"] = notable.result(top)
    return {
        "report_version": REPORT_VERSION,
        "trajrec_version": __version__,
        "paths": paths,
        "where": where or None,
        "files": len(files),
        "episodes": len(kept),
        "steps": steps,
        "unreadable": unreadable,
        "incomplete": incomplete,
        "lost_steps": lost,
        "damaged_steps": damaged_steps,
        "unwritten_steps": unwritten_steps,
        "live": live,
        "seconds": round(time.perf_counter() - started, 3),
        "coverage": tasks.coverage(),
        "difficulty": tasks.difficulty(),
        "failures": failures_out,
        "checks": judging.result(),
        "behaviour": behaviour_out,
        "lineage": lineage.result(),
    }


def _read(path: str, ordinal: int, stores: dict[str, LabelStore], query: Any) -> EpisodeFacts | None:
    folder = os.path.dirname(path)  # the key as listed: no abspath per file; the store gets the real folder
    store = stores.get(folder)
    if store is None:
        store = stores[folder] = LabelStore(os.path.abspath(folder) if folder else os.getcwd())
    index, records = read_records(path)
    header = index.get("header") if isinstance(index.get("header"), dict) else {}
    task = header.get("task") if isinstance(header.get("task"), dict) else {}
    summary = index.get("summary") if isinstance(index.get("summary"), dict) else {}
    n = int(index.get("steps") or 0)
    episode_id = str(header.get("episode_id") or os.path.basename(path))
    labels = store.labels_of(episode_id, n)
    if query is not None:
        qfacts = index_facts(path, index)
        if query.needs_labels:
            qfacts.update(label_facts(labels, n))
        if not query.matches(qfacts):
            return None
    outcome = str(summary.get("outcome") or ("incomplete" if not index.get("complete", True) else ""))
    # Steps counted as `ls` and the exports count them: the readable ones; the lost ones are said apart.
    holes = gaps(index)
    damaged = sum(g.n for g in holes if g.numbered and g.n is not None)
    unwritten = sum(g.n for g in holes if not g.numbered and g.n is not None)
    facts = EpisodeFacts(
        ordinal=ordinal, path=path, episode_id=episode_id, env=str(task.get("env_id") or ""),
        task=str(task.get("id") or ""), split=str(task.get("split") or ""), outcome=outcome,
        steps=max(0, n - damaged), header=header, summary=summary, complete=bool(index.get("complete", True)),
        lost_steps=bool(holes), damaged_steps=damaged, unwritten_steps=unwritten,
        checks=[*(index.get("step_checks") or ()), *(index.get("checks") or ())], labels=labels)
    read_steps(facts, records, scan_usage=not usage_from_summary(facts))
    return facts


def render_text(report: dict[str, Any], **kwargs: Any) -> str:
    """The report as terminal tables (see :func:`trajrec.replay.report.text.render_text`)."""
    from .text import render_text as _render

    return _render(report, **kwargs)


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML page with plots (see :mod:`trajrec.replay.report.html`).

    Raises:
        MissingDependencyError: plotly is not installed (``pip install 'trajrec[report]'``).
    """
    from .html import render_html as _render

    return _render(report)
