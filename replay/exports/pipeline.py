"""The export pipeline: pick episodes (``--where``, ``--min-agreement``), read each once, hand it to a format."""

from __future__ import annotations

import difflib
import gc
import os
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol

from trajrec.recorder.errors import ResetLostError, TrajrecFormatError, TrajrecUsageError
from trajrec.recorder.fsck import is_locked
from trajrec.recorder.model import gaps
from trajrec.recorder.reader import header_lost, unverified_reset
from trajrec.recorder.spelling import in_cli, option

from .base import EpisodeView, ExportOptions, Format, Skip, check_output_file
from .choice import PREFER_CLASSES, source_class
from .chat import ChatFormat
from .prefs import LEFT_BETWEEN, TIED, UNPAIRED, DpoFormat, KtoFormat
from .records import RecordsFormat
from .source import EpisodeRef, Source
from .trl import TrlStepwiseFormat
from ..query import Query, Term, parse_query
from .where import episode_facts

__all__ = ["FILTERED", "FORMATS", "HEADER_LOST", "NOT_EPISODES", "PARTIAL", "RESET_LOST", "RESET_UNVERIFIED",
           "UNREADABLE", "UNWRITTEN", "ExportReport", "export", "select"]

#: The reason counted for episodes the filters (``--where``, ``--min-agreement``) left out.
FILTERED = "did not match the filters"
#: The reason counted for damaged episode files (index or steps unreadable): skipped, the rest exported.
UNREADABLE = "unreadable (a damaged file; `trajrec fsck FILE` lists the damage)"
#: The reason counted for files that are not trajrec episodes at all (another file under the run folder).
NOT_EPISODES = "not episode files"
#: The reason counted for repaired files whose index declares lost steps (``fsck --repair`` kept the readable
#: frames around damage): left out whole unless ``ExportOptions.keep_partial``, so no row looks like a whole episode.
PARTIAL = "lost steps (repaired after damage)"
#: With ``--keep-partial``: a repaired file whose reset record was lost with step 0. Its steps have no first
#: observation (every format's prompt), and ``fsck --repair`` has recorded the loss: nothing more to repair.
RESET_LOST = "reset record lost (repaired after damage)"
#: A repaired file whose reset record ``fsck --repair`` salvaged from a damaged first frame: readable, but no checksum
#: vouches for it. The reset's observation is every format's prompt and only ``records`` can flag it (its
#: ``reset.unverified``), so it is left out unless ``ExportOptions.keep_partial``, as :data:`PARTIAL`.
RESET_UNVERIFIED = "reset record unverified (salvaged after damage; --keep-partial exports it)"
#: A repaired file whose header record was lost to damage (a version-3 index keeps no copy): its task and provenance
#: are unknown, so no row could say which task it was or where it came from. Left out unless
#: ``ExportOptions.keep_partial``, as :data:`PARTIAL`; its rows then carry ``complete: false``.
HEADER_LOST = "header record lost (repaired after damage: task and provenance unknown; --keep-partial exports it)"
#: The reason counted for files that lost env steps to a failed write while recording (the summary's
#: ``lost_steps``): left out whole unless ``ExportOptions.keep_partial``, as :data:`PARTIAL`.
UNWRITTEN = "lost steps (not written while recording: a write failed; --keep-partial exports the rest)"


def _parquet() -> type[Format]:
    from .parquet import ParquetFormat  # pyarrow is optional: only this format imports it

    return ParquetFormat


FORMATS: dict[str, Any] = {
    "records": lambda: RecordsFormat,
    "trl-stepwise": lambda: TrlStepwiseFormat,
    "chat": lambda: ChatFormat,
    "parquet": _parquet,
    "dpo": lambda: DpoFormat,
    "kto": lambda: KtoFormat,
    "atif": lambda: __import__("trajrec.replay.exports.atif", fromlist=["AtifFormat"]).AtifFormat,
}

#: The reasons counted for ``dpo`` attempts left without a partner (defined in :mod:`.prefs`): alone at its task,
#: tied with the other attempts left, or left between attempts paired with each other.
UNPAIRED_REASONS = (UNPAIRED, TIED, LEFT_BETWEEN)


def _rules_judge() -> str:
    """``trajrec label auto --rules``' judge name (its module, and what it imports, loaded only when asked)."""
    from ..autolabel import RULES_JUDGE

    return RULES_JUDGE


class ProgressLike(Protocol):
    def advance(self, n: int = 1) -> None: ...


@dataclass
class ExportReport:
    """What an export did: episodes found, matched by the filters, written; rows and steps; skip reasons."""

    format: str
    out: str
    episodes: int = 0
    matched: int = 0
    written: int = 0
    rows: int = 0
    steps: int = 0
    seconds: float = 0.0
    skipped: dict[str, int] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)
    #: Outcomes (passed, failed, ...) of the episodes written.
    written_outcomes: dict[str, int] = field(default_factory=dict)
    #: Reason -> outcomes of the episodes left out for it (the filters' reason included).
    left_out: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Reason -> where the first episode left out for it shows it (``"episode 1a2b...: step 6, human:ana
    #: 'wrong-tool'"``), for reasons that name a label.
    examples: dict[str, str] = field(default_factory=dict)
    #: Judges of the labels and recorded checks of the episodes read, when a warning names them: ``--prefer``
    #: names judge ids (to tell which of them matched nothing: :attr:`prefer_unmatched`), or no ``--prefer``
    #: entry matched any label or check (empty otherwise).
    judges: set[str] = field(default_factory=set)
    #: ``--prefer`` entries that matched no label or check of the episodes read: judge ids (a typo:
    #: ``human:Ana``), and every entry, class words too, when none of them matched any (``--prefer judge`` on a run
    #: labeled by people and rules: the export holds no label at all).
    prefer_unmatched: list[str] = field(default_factory=list)
    #: Whether some label or recorded check of the episodes read matched a ``--prefer`` entry.
    prefer_matched: bool = False
    #: The ``--prefer`` classes (human, judge, rule, environment) of the labels and checks read while
    #: :attr:`prefer_matched` was false: what the warning suggests listing.
    source_classes: set[str] = field(default_factory=set)
    #: Episodes left out because a step has no label.
    unlabeled: int = 0
    #: Of those, the ones ``trajrec label auto --rules`` would label in full (passed or failed, no rule labels).
    rules_would_label: int = 0
    #: Files written (a folder export: every shard, and the dataset card).
    files: list[str] = field(default_factory=list)
    #: Task split (``task.split``: train, test) -> episodes written; episodes without a split are not counted.
    written_splits: dict[str, int] = field(default_factory=dict)
    #: Files reached twice (given twice, inside a folder also given, links), read once: the copies left out.
    duplicates: list[str] = field(default_factory=list)
    #: ``(episode id, file, other file)``: different files with the same episode id, both exported.
    same_ids: list[tuple[str, str, str]] = field(default_factory=list)
    #: Episode file -> the file written for it, where an export writes one file per episode (atif to a folder).
    placed: dict[str, str] = field(default_factory=dict)
    #: Files left out whole for :data:`PARTIAL` (their index declares lost steps).
    partial: list[str] = field(default_factory=list)
    #: Files left out whole for :data:`RESET_UNVERIFIED` (their reset record was salvaged, unverified).
    unverified: list[str] = field(default_factory=list)
    #: Files left out whole for :data:`HEADER_LOST` (their header record was lost to damage).
    header_lost: list[str] = field(default_factory=list)
    #: Files left out whole for :data:`UNWRITTEN` (env steps a failed write kept out of the file).
    unwritten: list[str] = field(default_factory=list)
    #: Files a live Recorder was still writing (it holds their lock): exported as far as they were written.
    live: list[str] = field(default_factory=list)
    #: An export to a folder that had no row to write: it wrote nothing, no folder (see docs/EXPORT.md).
    no_rows_no_folder: bool = False
    #: No episode written and some file unreadable (the export failed): nothing was written, an existing output
    #: left as it was.
    aborted: bool = False

    def leave_out(self, reason: str, outcome: str | None) -> None:
        per = self.left_out.setdefault(reason, {})
        key = outcome or "unknown"
        per[key] = per.get(key, 0) + 1

    @staticmethod
    def balance(outcomes: dict[str, int]) -> str:
        """``"3 passed, 1 failed"``: the outcomes passed and failed always named, others when present."""
        parts = [f"{outcomes.get('passed', 0)} passed", f"{outcomes.get('failed', 0)} failed"]
        parts += [f"{n} {k}" for k, n in sorted(outcomes.items()) if k not in ("passed", "failed")]
        return ", ".join(parts)

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "out": self.out, "episodes": self.episodes, "matched": self.matched,
                "written": self.written, "rows": self.rows, "steps": self.steps, "seconds": round(self.seconds, 3),
                "steps_per_second": round(self.steps_per_second), "skipped": dict(self.skipped),
                "errors": [{"path": p, "error": e} for p, e in self.errors],
                "written_outcomes": dict(self.written_outcomes),
                "left_out": {k: dict(v) for k, v in self.left_out.items()}, "examples": dict(self.examples),
                "judges": sorted(self.judges), "prefer_unmatched": list(self.prefer_unmatched),
                "unlabeled": self.unlabeled, "rules_would_label": self.rules_would_label, "files": list(self.files),
                "written_splits": dict(self.written_splits), "duplicates": list(self.duplicates),
                "same_ids": [{"episode_id": i, "paths": [a, b], **({"written_to": [self.placed.get(a), self.placed.get(b)]}
                                                                  if self.placed else {})}
                             for i, a, b in self.same_ids],
                "partial": list(self.partial), "unverified": list(self.unverified),
                "header_lost": list(self.header_lost), "unwritten": list(self.unwritten),
                "live": list(self.live)}

    @property
    def test_episodes(self) -> int:
        """Episodes written whose task is in the env's held-out ``test`` split."""
        return self.written_splits.get("test", 0)


def check_format(name: str) -> str:
    if name in FORMATS:
        return name
    near = difflib.get_close_matches(str(name), list(FORMATS), n=1, cutoff=0.4)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    raise TrajrecUsageError(f"unknown export format {name!r}{hint}; formats: {', '.join(FORMATS)}")


def filters_for(where: str | Iterable[str] = (), min_agreement: float | None = None) -> Query:
    """Parse ``--where`` queries (the grammar of :mod:`trajrec.replay.query`), plus ``agreement>=X`` for
    ``--min-agreement X``."""
    query = parse_query(where)
    if min_agreement is not None:
        if not isinstance(min_agreement, (int, float)) or not 0.0 <= float(min_agreement) <= 1.0:
            raise TrajrecUsageError(f"{option('min_agreement')} is a share of agreeing steps from 0 to 1, got {min_agreement!r}")
        query = query & Query(f"agreement>={min_agreement}",
                              (Term(f"agreement>={min_agreement}", "agreement", ">=", (float(min_agreement),)),))
    return query


def select(src: Source, query: Query) -> list[EpisodeRef]:
    """The episodes of ``src`` the query accepts (reads indexes, and labels when the query needs them)."""
    if not query:
        return list(src)
    need_labels = query.needs_labels
    need_agreement = "agreement" in query.fields
    if need_agreement:
        from ..agreement import episode_agreement  # here: only --min-agreement and agreement terms need it
    out = []
    for ref in src:
        labels = ref.labels() if need_labels else None
        agreement = episode_agreement(labels) if need_agreement and labels is not None else None
        if query.matches(episode_facts(ref, labels, agreement)):
            out.append(ref)
    return out


def glob_escape(name: str) -> str:
    """``name`` as a ``data_files`` pattern matching only itself: ``datasets`` resolves patterns with fsspec's glob
    (Python's ``glob`` rules), where ``*``, ``?`` and ``[`` are special and ``[c]`` is the character ``c``."""
    return "".join(f"[{c}]" if c in "*?[]" else c for c in name)


def split_data_files(partitions: dict[str | None, str]) -> dict[str, str]:
    """Hugging Face split name -> data-file pattern for a parquet export partitioned by split, from the writer's
    ``partitions`` (split value, None for episodes without one -> its folder): ``split=train/`` becomes the
    ``train`` split, ``split=test/`` the ``test`` split, episodes without a split the ``unassigned`` split. A
    split name keeps letters, digits and ``_`` of the value (what ``datasets`` accepts, ``^\\w+(\\.\\w+)*$``);
    when two values give one name (``a/b`` and ``a_b``, ``test`` and ``test ``), the value that is that name
    already keeps it and the others get ``_`` and 8 hex digits of the SHA-256 of the value: two splits never
    merge (and a value longer than 64 characters is cut to 64 and gets the same suffix). Patterns have glob characters escaped (:func:`glob_escape`): a split ``*`` matches only its folder."""
    import hashlib
    import re

    def wanted(value: str | None) -> str:
        name = "unassigned" if value is None else re.sub(r"\W+", "_", value).strip("_") or "unassigned"
        return name[:64]  # datasets names its cache files after the split: a long one is too long a file name

    out: dict[str, str] = {}
    # Values that are valid split names as they are first, then episodes without a split (``unassigned``), then
    # the others in order: a stable choice of who keeps a name
    for value, sub in sorted(partitions.items(), key=lambda kv: (0 if kv[0] == wanted(kv[0]) else
                                                                  1 if kv[0] is None else 2, kv[0] or "")):
        name = wanted(value)
        if name in out or value is not None and len(value) > 64:
            raw = b"\xff" if value is None else value.encode("utf-8", "surrogatepass")
            digest = hashlib.sha256(raw).hexdigest()
            name = next(f"{name}_{digest[:k]}" for k in (8, 16, 64) if f"{name}_{digest[:k]}" not in out)
        out[name] = f"{glob_escape(sub)}/*.parquet"
    return dict(sorted(out.items(), key=lambda kv: ({"train": 0, "validation": 1, "test": 2}.get(kv[0], 3), kv[0])))


def is_not_episode(message: str) -> bool:
    """Whether a reader's error says the file is no trajrec episode at all (not a damaged one)."""
    return "not a trajrec episode" in message


def unreadable(report: ExportReport, index_errors: Iterable[tuple[Any, str]]) -> None:
    """Put the files whose index could not be read before the ones found damaged in their steps (already in
    ``report.errors``), and count each as left out for :data:`UNREADABLE`."""
    first = [(str(p), e) for p, e in index_errors]
    for _, e in first:
        report.leave_out(NOT_EPISODES if is_not_episode(e) else UNREADABLE, None)
    report.errors = first + report.errors


def _add_lineage(lineage: dict[str, Any], ep: Any, view: EpisodeView) -> None:
    judges = lineage["judges"]
    for judge, n in view.joined.judges().items():
        judges[judge] = judges.get(judge, 0) + n
    for item in ep.checks:
        judges[item.judge] = judges.get(item.judge, 0) + 1
    prov = ep.provenance
    agent = prov.get("agent") if isinstance(prov.get("agent"), dict) else {}
    for key, value in (("runs", prov.get("run_id")), ("envs", ep.task.get("env_id")), ("agents", agent.get("name")),
                       ("models", agent.get("model"))):
        if isinstance(value, str):
            lineage[key].add(value)


#: Formats whose output for an episode depends on that episode only: the ones ``workers`` can split.
PARALLEL_FORMATS = ("records", "trl-stepwise", "chat", "kto", "parquet")


def check_partition(fmt: str, options: ExportOptions) -> None:
    """Refuse ``--partition-by`` for a format that cannot split its output (all but ``parquet``)."""
    if options.partition_by is not None and fmt != "parquet":
        how = ("`--where 'split=train'` (and another export with `--where 'split=test'`) writes one split per "
               "file" if options.partition_by == "split" else
               "`--where 'env=ID'` writes one env per file")
        raise TrajrecUsageError(f"--partition-by {options.partition_by}: only --format parquet writes partitions "
                                f"(`--format parquet --out DIR --partition-by {options.partition_by}`); for "
                                f"{fmt}, {how}")


def check_workers(fmt: str, workers: Any, out: str | os.PathLike[str] | None = None) -> int:
    """``workers`` checked: a positive int, above 1 only for :data:`PARALLEL_FORMATS`, and for ``atif`` to one
    JSONL file (``out`` not a folder; its output depends on each episode only, as ``chat``'s)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise TrajrecUsageError(f"{option('workers')} is a number of processes (1 or more), got {workers!r}")
    if workers > 1 and fmt == "atif" and out is not None and not atif_folder(out):
        return workers
    if workers > 1 and fmt not in PARALLEL_FORMATS:
        why = ("pairs attempts across episodes" if fmt == "dpo" else
               "to a folder writes a file per episode (--out FILE.jsonl writes one file and takes --workers)")
        drop = "drop --workers" if in_cli() else "pass workers=1"
        raise TrajrecUsageError(f"{option('workers', workers)}: {fmt} {why}, so it cannot be split between processes: {drop} "
                                f"(formats that take it: {', '.join(PARALLEL_FORMATS)}, and atif to one file)")
    return workers


def atif_folder(out: str | os.PathLike[str]) -> bool:
    """Whether ``--out`` makes ``atif`` write a folder of documents (a name ending in ``/``, or a folder)."""
    text = os.fspath(out)
    return text != "-" and (text.endswith(("/", os.sep)) or os.path.isdir(text))


class EpisodeExporter:
    """What an export does with one episode: the filters, the format's rows, the report's counts and lineage."""

    def __init__(self, writer: Format, filters: Query, report: ExportReport, lineage: dict[str, Any]) -> None:
        self.writer = writer
        self.filters = filters
        self.report = report
        self.lineage = lineage
        self._need_labels = filters.needs_labels
        self._need_agreement = "agreement" in filters.fields
        #: ``[episode id, file]`` of each episode written (the same id in two files is told apart afterwards).
        self.written_ids: list[list[str]] = []
        self._judge_ids = bool(writer.options.preference.judge_ids)

    def _partial(self, ref: EpisodeRef) -> tuple[list[str], str] | None:
        """Why an episode is left out as partial (unless ``--keep-partial``): the report's list that names such
        files and the reason; None for a whole episode."""
        if self.writer.options.keep_partial:
            return None
        report = self.report
        if header_lost(ref.index) is not None:
            return report.header_lost, HEADER_LOST
        found = gaps(ref.index)
        if found:
            # Rows of a file with lost steps would read as a whole episode (a middle missing, or only the task):
            # left out whole and named; --keep-partial writes them marked complete: false.
            return (report.partial, PARTIAL) if any(g.numbered for g in found) else (report.unwritten, UNWRITTEN)
        if unverified_reset(ref.index) is not None:
            # Its prompt (the reset's observation) may carry a damaged byte that no format but records can flag.
            return report.unverified, RESET_UNVERIFIED
        return None

    def export(self, ref: EpisodeRef, write: Any = None) -> None:
        """Filter, read and write one episode (``write(view)``: the format's :meth:`~.base.Format.write`, or a
        stand-in that returns ``(rows, steps)`` the same way)."""
        report, filters = self.report, self.filters
        report.episodes += 1
        labels = None
        if filters:
            labels = ref.labels() if self._need_labels else None
            if self._need_agreement and labels is not None:
                from ..agreement import episode_agreement  # here: only --min-agreement and agreement terms need it

                agreement = episode_agreement(labels)
            else:
                agreement = None
            if not filters.matches(episode_facts(ref, labels, agreement)):
                report.leave_out(FILTERED, ref.summary.get("outcome"))
                return
        report.matched += 1
        if ref.index.get("head_damaged"):
            # Not repaired yet: its header record is damaged in frame 0 (fsck --repair keeps the readable part).
            report.errors.append((str(ref.path), "its header record is damaged: "
                                  + str(header_lost(ref.index).get("why"))  # type: ignore[union-attr]
                                  + f"; run `trajrec fsck --repair {ref.path}` to keep the readable part"))
            report.leave_out(UNREADABLE, ref.summary.get("outcome"))
            return
        partial = self._partial(ref)
        if partial is not None:
            named, reason = partial
            named.append(os.fspath(ref.path))
            report.leave_out(reason, ref.summary.get("outcome"))
            return
        try:
            self._export(ref, labels, write)
        except TrajrecFormatError as exc:
            # A damaged file (a flipped bit, a cut) found while reading its steps: formats hand over an episode's
            # rows only once all of them are made (JSONL lines per episode, parquet rows buffered per episode), so
            # none of its rows is in the output; it is left out and named, and the export goes on.
            report.errors.append((str(ref.path), str(exc)))
            report.leave_out(UNREADABLE, ref.summary.get("outcome"))

    def _export(self, ref: EpisodeRef, labels: Any, write: Any) -> None:
        report = self.report
        with ref.open() as ep:
            view = EpisodeView(ref, ep, ref.joined_labels() if labels is None else labels, self.writer.options)
            if self._judge_ids or not report.prefer_matched:
                # Which judges are here, to tell a --prefer typo, or a --prefer none of whose entries matched
                # anything (every label null): export() warns. Once an entry matched, a run that names no judge
                # ids reads no further.
                sources = view.joined.sources()
                sources.update((str(c.judge), str(c.kind)) for c in ep.checks)
                report.judges.update(j for j, _ in sources)
                if not report.prefer_matched:
                    rank = self.writer.options.preference.rank_source
                    report.prefer_matched = any(rank(j, k) is not None for j, k in sources)
                    report.source_classes.update(source_class(j, k) for j, k in sources)
            try:
                if ep.lost or ep.header_lost:  # a repaired file: its reset record may be gone (no prompt to write)
                    try:
                        ep.reset
                    except ResetLostError:
                        raise Skip(RESET_LOST) from None
                rows, steps = (write or self.writer.write)(view)
            except Skip as skip:
                report.skipped[skip.reason] = report.skipped.get(skip.reason, 0) + 1
                outcome = ep.summary.get("outcome")
                report.leave_out(skip.reason, outcome)
                report.unlabeled += skip.unlabeled
                if skip.example is not None and skip.reason not in report.examples:
                    report.examples[skip.reason] = skip.example
                # A step whose preferred label is a category stays so after `label auto --rules` (people first).
                # (and only when --prefer takes the rules' labels: `--prefer human` would leave them out)
                if (skip.unlabeled and not skip.category and outcome in ("passed", "failed")
                        and not any(lab.judge == _rules_judge() for lab in view.label_rows)
                        and self.writer.options.preference.rank_source(_rules_judge(), "rule") is not None):
                    report.rules_would_label += 1
            else:
                outcome = ep.summary.get("outcome") or "unknown"
                report.written_outcomes[outcome] = report.written_outcomes.get(outcome, 0) + 1
                report.written += 1
                self.written_ids.append([ref.episode_id, os.fspath(ref.path)])
                if not ep.complete and is_locked(ref.path):  # only files without their index: one open() each
                    report.live.append(os.fspath(ref.path))
                split = ep.task.get("split")
                if isinstance(split, str):
                    report.written_splits[split] = report.written_splits.get(split, 0) + 1
                _add_lineage(self.lineage, ep, view)
                report.rows += rows
                report.steps += steps


@contextmanager
def _interrupt_when_whole() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) until the block ends, then raise it as it came. Only in the main thread (the one
    Python's handler runs in); elsewhere the block runs as it is."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if held:
        if callable(previous):
            previous(signal.SIGINT, None)  # Python's own handler raises KeyboardInterrupt
        elif previous == signal.SIG_DFL:
            signal.raise_signal(signal.SIGINT)


def _remove_outputs(folder: Path, files: Iterable[Any], *, keep_folder: bool) -> None:
    """Remove the files an export of no rows just wrote in ``folder`` (the folder was new or empty), the
    subfolders they leave empty, and the folder itself unless it was there before."""
    for f in files:
        with suppress(FileNotFoundError):
            os.unlink(f)
    for sub in sorted({Path(f).parent for f in files}, key=lambda p: len(p.parts), reverse=True):
        if sub != folder and folder in sub.parents:
            with suppress(OSError):  # not empty: something else is in it, kept
                sub.rmdir()
    if not keep_folder:
        with suppress(OSError):
            folder.rmdir()


def export(paths: Source | str | os.PathLike[str] | Iterable[str | os.PathLike[str]], fmt: str,
           out: str | os.PathLike[str], *, where: Iterable[str] = (), min_agreement: float | None = None, options: ExportOptions | None = None,
           progress: ProgressLike | None = None, workers: int = 1, overwrite: bool = False) -> ExportReport:
    """Export the episodes under ``paths`` that pass the filters to ``out`` (``"-"``: stdout) in format ``fmt``.

    Args:
        paths: a run folder or episode file (a ``str`` or ``os.PathLike`` is one path), a list of them, or a
            :class:`~.source.Source`.
        fmt: ``records``, ``trl-stepwise``, ``chat``, ``parquet``, ``dpo`` or ``kto``.
        where: filter queries (the grammar of :mod:`trajrec.replay.query`), all of which must hold.
        min_agreement: keep episodes whose multiply-labeled steps agree at least this often (0..1).
        options: label map, preferred sources, unlabeled policy, system message.
        progress: told ``advance(n)`` per episode with its step count (episodes are streamed, so no total is
            known beforehand).
        workers: processes that read and encode episodes (``records``, ``trl-stepwise``, ``chat``, ``kto`` and
            ``parquet``); this process writes their output in episode order, so the files are the ones one
            process writes (:mod:`~trajrec.replay.exports.parallel`).
        overwrite: replace an output file that exists (never an episode file, an input or a device).

    Raises:
        TrajrecUsageError: ``paths`` is not a path or a list of paths, an unknown format, a bad filter or option, ``workers`` for a format that pairs or
            splits episodes (``dpo``, ``atif``), an output file that is an episode file or one of the inputs, or
            one that exists without ``overwrite`` (:func:`~.base.check_output_file`).
    """
    check_format(fmt)
    check_workers(fmt, workers, out)
    if workers > 1:
        from .parallel import in_worker_start

        if in_worker_start():
            # A script without the `__main__` guard, imported again by a starting worker: that worker ends quietly
            # (no traceback, no second pool, no output touched); the exporting process says what to fix.
            raise SystemExit(1)
    if options is not None and not isinstance(options, ExportOptions):
        raise TrajrecUsageError(f"options must be an ExportOptions, got {type(options).__name__}: pass "
                                "options=ExportOptions(system=..., label_map=...) (from trajrec.replay.exports)")
    options = options or ExportOptions()
    check_partition(fmt, options)
    filters = filters_for(where, min_agreement)
    t0 = time.perf_counter()
    src = paths if isinstance(paths, Source) else Source(paths, join_labels=True)
    # One output file (not a folder): parquet takes any name without .parquet as a folder (parquet.is_folder_output).
    if not atif_folder(out) and (fmt != "parquet" or os.fspath(out).endswith(".parquet")):
        check_output_file(out, (f for f, _ in src.listed), overwrite=overwrite,
                          example="export.parquet" if fmt == "parquet" else "export.jsonl")
    report = ExportReport(fmt, os.fspath(out))
    folder_was_there = os.fspath(out) != "-" and os.path.isdir(out)
    writer: Format = FORMATS[fmt]()(out, options)
    # From here to the output's rename, whatever stops the export (an error, Ctrl-C) removes the temporary output:
    # one try, with no gap where a Ctrl-C left a temporary file behind.
    try:
        if not writer.splices_label_times:
            src.set_exact_label_times(False)
        where_texts = [*([where] if isinstance(where, str) else where),
                       *([f"agreement>={min_agreement}"] if min_agreement is not None else [])]
        writer.set_context(where=where_texts, sources=[os.fspath(p) for p in src.paths])
        lineage: dict[str, Any] = {"judges": {}, "runs": set(), "envs": set(), "agents": set(), "models": set(),
                                   "where": where_texts, "sources": {os.fspath(p) for p in src.paths}}
        gc_was = gc.isenabled()
        gc.disable()  # rows are acyclic: collections triggered by their allocations would only cost time
        try:
            if workers > 1:
                from .parallel import export_parallel

                export_parallel(src, fmt, writer, report, lineage,
                                [where] if isinstance(where, str) else list(where), min_agreement, options, progress,
                                workers)
            else:
                one = EpisodeExporter(writer, filters, report, lineage)
                # Streamed: each episode's index is read once, as its turn comes, and dropped with it.
                for ref in src:
                    one.export(ref)
                    if one.written_ids:  # told as they come: a list of every episode's id and path grew with the run
                        for eid, path in one.written_ids:
                            src.note_id(eid, path)
                        one.written_ids.clear()
                    if progress is not None:
                        progress.advance(ref.n_steps)
                unreadable(report, src.errors)
        finally:
            if gc_was:
                gc.enable()
        if report.errors and not report.written:
            # Not one episode exported, and files that could not be read (damaged, or no episode): the export failed
            # (exit 1), and an empty output file would read as an empty result; nothing is written, an existing
            # file is kept.
            writer.abort()
            report.aborted = True
            report.files = []
            report.seconds = time.perf_counter() - t0
            return report
        writer.close()
    except BaseException:
        writer.abort()  # no temporary folder or file left behind
        raise
    # The output is in place under its name: a Ctrl-C from here waits until it is whole (a folder's dataset card
    # written), then stops the export; it left a folder without its card, and the command said "interrupted".
    with _interrupt_when_whole():
        for why, outcomes in getattr(writer, "unpaired", {}).items():
            for outcome, n in outcomes.items():
                report.written_outcomes[outcome] -= n
                report.written -= n
                for _ in range(n):
                    report.leave_out(why, outcome)
                report.skipped[why] = report.skipped.get(why, 0) + n
        for split, n in getattr(writer, "unpaired_splits", {}).items():
            report.written_splits[split] -= n
        if isinstance(writer, DpoFormat):
            report.rows, report.steps = writer.rows_written, writer.steps_written
        report.duplicates = [os.fspath(p) for p in getattr(src, "duplicates", ())]
        report.same_ids = list(getattr(src, "same_ids", ()))
        report.placed = dict(getattr(writer, "placed", {}))
        files = list(getattr(writer, "files", ()))
        folder = getattr(writer, "folder", None)
        if folder and not report.rows:
            # `datasets.load_dataset(folder)` cannot load a dataset of no rows (it fails deep inside, StopIteration or
            # ArrowInvalid): no folder at all is the plain answer (FileNotFoundError naming it), and the report says so.
            _remove_outputs(Path(os.fspath(out)), files, keep_folder=folder_was_there)
            files, folder = [], None
            report.no_rows_no_folder = True
        if folder:
            from .card import write_card

            data_files: str | dict[str, str]
            if fmt == "parquet" and options.partition_by == "split":
                data_files = split_data_files(getattr(writer, "partitions", {})) or "**/*.parquet"
            elif fmt == "parquet":
                data_files = "**/*.parquet" if options.partition_by else "part-*.parquet"
            else:
                data_files = "data.jsonl"
            files.append(write_card(out, report, options, data_files, lineage))
        report.files = [os.fspath(f) for f in files]
    report.seconds = time.perf_counter() - t0
    _check_prefer(report, options)
    return report


def _check_prefer(report: ExportReport, options: ExportOptions) -> None:
    """Warn once about ``--prefer`` judge ids that matched no label or check of the episodes read: a typo
    (``human:Ana`` for ``human:ana``) otherwise exports every label of that source as null, with exit status 0.
    And when no entry matched any label or check while the episodes have some (``--prefer judge`` on a run
    labeled by people and rules), warn naming every entry and the sources there are: the export holds no label
    at all. A class word that matched nothing while another entry did is not warned about (``human`` in the
    default ``human,judge,rule`` on a run nobody labeled by hand is no mistake)."""
    pref = options.preference
    # (a list of judge ids alone that matched nothing is the typo case: each named as such)
    nothing = not report.prefer_matched and bool(report.judges) and len(pref.judge_ids) < len(pref.tokens)
    if not pref.judge_ids and not nothing:
        report.judges = set()  # read only until an entry matched: a part of them
    if not report.matched or not (pref.judge_ids or nothing):
        return
    report.prefer_unmatched = list(pref.tokens) if nothing else pref.unmatched(report.judges)
    if report.prefer_unmatched:
        import warnings

        from .choice import unmatched_message

        text = unmatched_message(report.prefer_unmatched, sorted(report.judges))
        if nothing:
            classes = [c for c in PREFER_CLASSES if c in report.source_classes]
            listed = [*pref.tokens, *(c for c in classes if c not in pref.tokens)]
            text += (f" (sources: {', '.join(classes)}): the export holds no label at all, as --prefer uses only "
                     f"the sources it lists; to fall back on theirs: --prefer {','.join(listed)}")
        else:
            text += ": the export holds no label from it"
        warnings.warn(text, UserWarning, stacklevel=3)
