"""``trajrec ls``: one line per episode."""

from __future__ import annotations

import argparse
import itertools
import math
import operator
import os
import sys
from typing import Iterable

NAME = "ls"
ORDER = 20
HELP = ("List episodes: id, env, task, steps, return, outcome, failures/retries/recoveries, and the model calls' "
        "tokens, seconds and cost.")
DESCRIPTION = HELP + """

ls is fast because it reads each file's index (header and summary) only, never its steps: a file damaged
inside its step frames (flipped bits) can still be listed as whole ("complete": true). `trajrec fsck PATH`
checks every frame; export, report and label auto skip such a file and name it."""
EXAMPLES = """  trajrec ls runs/                    every episode under runs/, recursively
  trajrec ls runs/ --where "failed env:shell"        failed Shell episodes (the viewer's filter grammar)
  trajrec ls runs/ --where "failures>0" --sort return --reverse    faulty episodes, highest return first
  trajrec ls runs/ --sort=-labeled   most-labeled episodes first (a labeled column: share of steps labeled)
  trajrec ls runs/ --sort started    in the order the episodes were recorded (the default is path order)
  trajrec ls runs/ --json | jq .      one JSON object per line, for scripts
  trajrec ls runs/ --rescan           compare every file with the summary cache (after editing files in place)
  trajrec ls a.msgpack.zst b.msgpack.zst
  trajrec fsck runs/                  check every frame of every file (ls reads only the indexes)"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from trajrec.replay.library import SORT_COLUMNS

    p.add_argument("paths", nargs="+", metavar="PATH", help="episode files or folders (searched recursively)")
    p.add_argument("--where", action="append", default=[], metavar="QUERY",
                   help="keep episodes matching QUERY (repeatable; all must hold), e.g. failed, env:shell, "
                        "failures>0, -outcome:passed, labeled (grammar: `trajrec view`'s filter, ? there)")
    p.add_argument("--sort", metavar="COLUMN",
                   help=f"order by a column: {', '.join(SORT_COLUMNS)} (default: path; --sort=-COLUMN: descending)")
    p.add_argument("--reverse", action="store_true", help="descending order")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per episode (with \"labeled\": the share of its steps labeled, 0..1)")
    p.add_argument("--rescan", action="store_true",
                   help="check every file against the summary cache (<folder>/.trajrec/catalog/), not only the "
                        "folders that changed: finds files another tool rewrote in place, and updates the cache")


def _sort_key(text: str | None) -> tuple[str | None, bool]:
    from trajrec.recorder.errors import TrajrecUsageError
    from trajrec.replay.library import SORT_COLUMNS

    if not text:
        return None, False
    reverse = text.startswith("-")
    column = text.lstrip("-+")
    if column not in SORT_COLUMNS:
        import difflib

        near = difflib.get_close_matches(column, SORT_COLUMNS, n=1)
        raise TrajrecUsageError(f"--sort {text!r}: no such column" + (f" (did you mean {near[0]!r}?)" if near else "")
                                + f"; columns: {', '.join(SORT_COLUMNS)}")
    return column, reverse


def run(args: argparse.Namespace) -> int:
    from trajrec.recorder.gcpause import gc_paused

    # A listing is a million small acyclic objects at most, freed when the command ends: collections while
    # they pile up would walk them all again and again for nothing.
    with gc_paused():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from trajrec.recorder.model_call import model_usage_totals
    from trajrec.replay.library import find_episode_files, sort_entries
    from trajrec.replay.query import parse_query
    from trajrec.replay.render import one_line
    from trajrec.replay.run import open_run

    from ._common import dumps, no_episode_files

    column, reverse = _sort_key(args.sort)
    reverse = reverse != args.reverse
    run = open_run(args.paths)  # a path that does not exist: said here
    if not (args.json or args.where or column is not None or reverse or len(args.paths) != 1):
        return _plain(args)
    if args.rescan:
        run = _rescanned(args.paths)
    total = len(run) + len(run.errors)
    if not total and not find_episode_files(args.paths):  # listed again only when nothing was found
        raise no_episode_files(args.paths)
    if args.where:
        run = run.where(args.where)  # a query that does not parse: a usage error naming the term
    entries = run.entries
    for problem in run.problems:  # empty stubs skipped, a summary cache ignored
        print(f"trajrec ls: {one_line(problem, 400)}", file=sys.stderr)
    bad = run.errors
    for path, error in bad:
        print(f"trajrec ls: {one_line(path, 1000)}: {one_line(error or '', 1000)}", file=sys.stderr)
    # Labels are not in the summary cache (they change without the file changing): read them, as the viewer
    # does, only when something shows or orders by them.
    with_labels = args.json or column == "labeled" or (bool(args.where) and parse_query(args.where).needs_labels)
    if with_labels:
        for e in entries:
            # its own folder's labels, from the store the filter read (a second store would warn again)
            e.labeled = run.label_store(e.path).labeled_fraction(e.episode_id, e.steps)
    # The listing is already in path order per given path: sorting a million rows by path again costs a second.
    shown = entries if column is None and not reverse and len(args.paths) == 1 else \
        sort_entries(entries, column, reverse=reverse)
    if not args.json:
        if with_labels:
            for e in shown:  # (after sorting: such an episode sorts as 0%)
                if not e.labeled and not run.label_store(e.path).current(e.episode_id):
                    e.labeled = None  # no label at all: "-", as the viewer shows it (0%: an episode label alone)
        print(_HEADER + (f" {'labeled':>7}" if with_labels else ""))
        _write(_chunks(_text_lines(map(_EPISODE_ID, shown), map(_ROW_KEY, shown), shown.__getitem__, with_labels)))
        print(_summary(len(shown), [e.outcome for e in shown], [e.steps for e in shown],
                       [e.failures for e in shown], [e.complete for e in shown], total, len(bad),
                       bool(args.where), _live(e.path for e in shown if not e.complete)), file=sys.stderr)
        _note_unfinished(args.paths)
        return 1 if bad else 0
    out: list[str] = []
    for e in shown:
        if len(out) >= 4096:
            sys.stdout.write("\n".join(out) + "\n")
            out.clear()
        row = {
            "episode": e.episode_id,  # the query field's name; episode_id, env_id, task_id kept for scripts
            "env": e.env_id or None,
            "task": e.task_id or None,
            "episode_id": e.episode_id,
            "path": e.path,
            "env_id": e.env_id or None,
            "task_id": e.task_id or None,
            "steps": e.steps,
            "return": e.ret,
            "outcome": e.outcome or None,
            "failures": e.failures,
            "retries": e.retries,
            "recoveries": e.recoveries,
            "checks": {"passed": e.checks_passed, "failed": e.checks_failed},
            "model": model_usage_totals({"model": e.model_usage}),
            "complete": e.complete,
            "labeled": e.labeled,
            "started": e.started,
        }
        out.append(dumps(row))
    # Unreadable files are rows too (also named on stderr), so a script sees every file.
    out.extend(dumps({"episode": os.path.basename(path), "episode_id": os.path.basename(path), "path": path,
                          "outcome": "unreadable", "complete": False, "error": error or ""}) for path, error in bad)
    if out:
        sys.stdout.write("\n".join(out) + "\n")
    return 1 if bad else 0


#: Bytes a chunk of output may hold and go to the terminal as it is: printable ASCII and newlines.
_PLAIN = bytes(range(0x20, 0x7F)) + b"\n"


def _write(texts) -> None:  # type: ignore[no-untyped-def]
    """Write chunks of lines (one write each: a write per line costs more than formatting it).

    ``trajrec`` routes stdout through an escaping stream (:class:`trajrec.cli.EscapingStream`); a chunk made of
    printable ASCII and newlines only has nothing to escape, which one pass in C tells (the escaping stream's
    regular-expression search takes longer than formatting the lines), and goes to the stream under it.
    """
    out = sys.stdout
    raw = getattr(out, "unescaped", None)
    for text in texts:
        if raw is not None and text.isascii() and not text.encode("ascii").translate(None, _PLAIN):
            raw.write(text)
        else:
            out.write(text)


def _chunks(lines):  # type: ignore[no-untyped-def]
    while chunk := list(itertools.islice(lines, 8192)):
        yield "\n".join(chunk) + "\n"


def _plain(args: argparse.Namespace) -> int:
    """The listing of one path in path order, unfiltered: printed from the catalog's columns, with no object
    per episode (an :class:`EpisodeEntry` is built only for a row whose columns were not formatted before)."""
    from trajrec.replay.library import Listing, list_columns
    from trajrec.replay.render import one_line

    listing = list_columns(args.paths, verify=args.rescan)
    for problem in listing.problems:  # empty stubs skipped, links not followed, a summary cache ignored
        print(f"trajrec ls: {one_line(problem, 400)}", file=sys.stderr)
    errors = listing.cols["error"]
    bad: list[tuple[str, str]] = []
    if errors.count(None) != len(errors):  # unreadable files: said, not listed
        bad = [(p, e) for p, e in zip(listing.paths, errors) if e is not None]
        good = [i for i, e in enumerate(errors) if e is None]
        listing = Listing([listing.paths[i] for i in good], {k: [v[i] for i in good] for k, v in listing.cols.items()},
                          listing.problems)
    if not len(listing) and not bad:
        from trajrec.replay.library import find_episode_files

        from ._common import no_episode_files

        if not find_episode_files(args.paths):  # listed again only when nothing was found
            raise no_episode_files(args.paths)
    for path, error in bad:
        print(f"trajrec ls: {one_line(path, 1000)}: {one_line(error or '', 1000)}", file=sys.stderr)
    print(_HEADER)
    cols = listing.cols
    _write(_column_text(cols, listing.entry))
    live = _live(listing.paths[i] for i, ok in enumerate(cols["complete"]) if not ok)
    print(_summary(len(listing), cols["outcome"], cols["steps"], cols["failures"], cols["complete"],
                   len(listing) + len(bad), len(bad), False, live), file=sys.stderr)
    _note_unfinished(args.paths)
    return 1 if bad else 0


def _note_unfinished(paths: list[str]) -> None:
    """Say (on stderr, after the summary line) what the ``*.unfinished`` files beside the run hold: ``--resume``
    set those episodes aside, no row lists them, but their model calls were paid for."""
    from ._common import unfinished_note, unfinished_spend

    note = unfinished_note(unfinished_spend(paths))
    if note:
        print(note, file=sys.stderr)


def _rescanned(paths: list[str]):  # type: ignore[no-untyped-def]
    """The run listed with every file compared against the summary cache (``--rescan``)."""
    from trajrec.replay.library import scan
    from trajrec.replay.run import Run

    found, problems = [], []
    for batch in scan(paths, verify=True):
        found.extend(batch.entries)
        problems.extend(batch.problems)
    run = Run(paths, entries=[e for e in found if not e.error], errors=[(e.path, e.error) for e in found if e.error])
    run.problems = problems
    return run


_HEADER = (f"{'episode':<44} {'env':<22} {'task':<18} {'steps':>6} {'return':>8} {'outcome':<10} "
           f"{'fail/retry/recov':>16} {'tokens':>8} {'model s':>8} {'cost':>8}")

#: What a line shows right of the episode id (``model_usage`` last, ``ret`` fourth: see _text_lines).
_KEY_FIELDS = ("env_id", "task_id", "steps", "ret", "outcome", "complete", "failures", "retries", "recoveries",
               "labeled", "model_usage")
_ROW_KEY = operator.attrgetter(*_KEY_FIELDS)
_EPISODE_ID = operator.attrgetter("episode_id")


def _column_text(cols: dict, entry_at, size: int = 8192):  # type: ignore[no-untyped-def,type-arg]
    """The lines of :func:`_text_lines` (no labeled column) from a listing's columns, ``size`` rows per text,
    with no Python call per row: ids checked a chunk at a time, the columns right of the id looked up by the
    tuple of their values (rows with model calls or a zero return are formatted each, as there)."""
    from trajrec.replay.render import one_line

    rest = _rest_formatter(False)
    memo: dict[tuple, str] = {}  # type: ignore[type-arg]
    keyed = [cols[f] for f in _KEY_FIELDS[:-2]]  # all but labeled (none here) and model_usage (a dict)
    ids_all, rets_all, usage_all = cols["episode_id"], cols["ret"], cols["model_usage"]
    for start in range(0, len(ids_all), size):
        stop = min(len(ids_all), start + size)
        ids = ids_all[start:stop]
        blob = "|".join(ids)
        # One line each as they are: printable (no newline, control or odd space), no double or edge spaces.
        if not (blob.isprintable() and max(map(len, ids)) <= 44 and "  " not in blob and " |" not in blob
                and "| " not in blob and blob[:1] != " " and blob[-1:] != " "):
            ids = [_id_text(i, one_line) for i in ids]
        keys = list(zip(*(c[start:stop] for c in keyed)))
        rests = [memo.get(k) for k in keys]
        if None in rests:
            for j, r in enumerate(rests):
                if r is None:
                    if len(memo) >= 1 << 16:  # NaN returns never hit: keep the memo bounded
                        memo.clear()
                    rests[j] = memo[keys[j]] = rest(entry_at(start + j))
        rets, usage = rets_all[start:stop], usage_all[start:stop]
        if 0 in rets or usage.count(None) != len(usage):
            for j, (r, u) in enumerate(zip(rets, usage)):
                if u or r == 0:  # model-call totals; 0.0 and -0.0 are one key but print differently
                    rests[j] = rest(entry_at(start + j))
        yield "".join(map("{:<44} {}\n".format, ids, rests))


def _id_text(eid: str, one_line) -> str:  # type: ignore[no-untyped-def]
    # Episode ids differ at their end: a long one is cut in the middle, keeping both ends.
    return one_line(eid if len(eid) <= 44 else eid[:20] + "…" + eid[-23:], 44)


def _rest_formatter(with_labels: bool):  # type: ignore[no-untyped-def]
    """``rest(entry)``: a line's text right of the episode id."""
    from trajrec.recorder.model_call import model_usage_totals
    from trajrec.replay.render import number_text, one_line

    def rest(e) -> str:  # type: ignore[no-untyped-def]
        mark = "" if e.complete else " *"
        usage = _usage_columns(model_usage_totals({"model": e.model_usage})) if e.model_usage else _NO_USAGE
        return (f"{one_line(e.env_id or '-', 22):<22} "
                f"{one_line(e.task_id or '-', 18):<18} {e.steps:>6} {number_text(e.ret):>8} "
                f"{(e.outcome or '-') + mark:<10} {f'{e.failures}/{e.retries}/{e.recoveries}':>16} {usage}"
                + ((f" {e.labeled:>7.0%}" if e.labeled is not None else f" {'-':>7}") if with_labels else ""))

    return rest


def _text_lines(ids, keys, entry_at, with_labels: bool):  # type: ignore[no-untyped-def]
    """The table's lines, lazily: ``ids`` the episode ids, ``keys`` a tuple of :data:`_KEY_FIELDS` per row,
    ``entry_at(i)`` row ``i`` as an entry (asked only to format a row).

    Everything right of the episode id depends on a handful of values that repeat across a big run (the same
    env, task, outcome, step count): those columns are formatted once per distinct combination. Rows with
    model calls (a dict of totals) are formatted each.
    """
    from trajrec.replay.render import one_line

    rest = _rest_formatter(with_labels)
    memo: dict[tuple, str] = {}  # type: ignore[type-arg]
    for i, (eid, key) in enumerate(zip(ids, keys)):
        if len(eid) > 44 or not eid.isprintable() or "  " in eid or eid != eid.strip():
            eid = _id_text(eid, one_line)
        if key[-1]:  # model-call totals: a dict, formatted for this row
            yield f"{eid:<44} {rest(entry_at(i))}"
            continue
        if key[3] == 0:  # 0.0 and -0.0 are one key but print differently
            key = (key, math.copysign(1.0, key[3]))
        text = memo.get(key)
        if text is None:
            if len(memo) >= 1 << 16:  # NaN returns never hit: keep the memo bounded
                memo.clear()
            text = memo[key] = rest(entry_at(i))
        yield f"{eid:<44} {text}"


_NO_USAGE = f"{'-':>8} {'-':>8} {'-':>8}"


def _usage_columns(totals: dict) -> str:  # type: ignore[type-arg]
    """Tokens, seconds waiting on the model and cost; dashes for episodes without model calls."""
    from trajrec.recorder.model_call import model_usage_totals
    from trajrec.replay.render import cost_text

    totals = model_usage_totals({"model": totals})  # a value no count or number of seconds (NaN...) becomes None
    if not totals.get("calls"):
        return f"{'-':>8} {'-':>8} {'-':>8}"
    tokens = totals.get("total_tokens")
    tok = "?" if tokens is None else f"{tokens:,}" if tokens < 100_000 else f"{tokens / 1000:,.0f}k"
    cost = totals.get("cost")
    latency = totals.get("latency")
    # 0: no call recorded its time (imports); None: what the file holds is no number of seconds
    secs = "?" if latency is None else f"{latency:.2f}" if latency else "-"
    return f"{tok:>8} {secs:>8} {cost_text(cost):>8}"


def _live(paths: Iterable[str]) -> int:
    """How many of these files (incomplete ones: few) a live Recorder holds: being recorded, not damaged."""
    from trajrec.recorder.fsck import being_recorded

    return sum(1 for p in paths if being_recorded(p))


def _summary(n: int, outcomes: list, steps: list, failures: list, complete: list,  # type: ignore[type-arg]
             total: int, bad: int, filtered: bool, live: int = 0) -> str:
    """``12 episodes (of 40), 310 steps: 8 passed, 4 failed; 9 with failures``, plus what to do about problems;
    from the shown rows' columns (outcome, steps, failures, complete)."""
    from collections import Counter

    counts = Counter(outcomes)
    if "" in counts:
        counts["-"] += counts.pop("")
    parts = [f"{n} episode{'s' if n != 1 else ''}" + (f" (of {total})" if filtered else "")]
    if n:
        n_steps = sum(steps)
        parts[0] += f", {n_steps:,} step{'s' if n_steps != 1 else ''}"
        parts.append(", ".join(f"{c} {k}" for k, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))))
        faulty = n - failures.count(0)
        parts.append(f"{faulty} with failed steps")
    text = ": ".join(parts[:2]) + ("; " + "; ".join(parts[2:]) if len(parts) > 2 else "")
    if bad:
        text += f"; {bad} unreadable (above; `trajrec fsck PATH` checks them)"
    if live and live == complete.count(False):
        text += (f"  (* being recorded: a live Recorder holds {'it' if live == 1 else 'them'}; what "
                 f"{'it has' if live == 1 else 'they have'} written so far)")
    elif False in complete:
        text += ("  (* incomplete: no index, the writer did not close the file (`trajrec fsck --repair` adds one), "
                 "or steps lost to damage or to a failed write while recording (`trajrec fsck PATH` says where); "
                 "`--where incomplete` lists these and "
                 "the episodes stopped or raised before their end"
                 + (f"; {live} of them being recorded right now (a live Recorder holds them)" if live else "")
                 + ")")
    return text
