"""``trajrec ls``: one line per episode."""

from __future__ import annotations

import argparse
import os
import sys

NAME = "ls"
ORDER = 20
HELP = ("List episodes: id, env, task, steps, return, outcome, failures/retries/recoveries, and the model calls' "
        "tokens, seconds and cost.")
EXAMPLES = """  trajrec ls runs/                    every episode under runs/, recursively
  trajrec ls runs/ --where "failed env:shell"        failed Shell episodes (the viewer's filter grammar)
  trajrec ls runs/ --where "failures>0" --sort return --reverse    faulty episodes, highest return first
  trajrec ls runs/ --sort=-labeled   most-labeled episodes first (a labeled column: share of steps labeled)
  trajrec ls runs/ --json | jq .      one JSON object per line, for scripts
  trajrec ls a.msgpack.zst b.msgpack.zst"""


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
    from trajrec.recorder.model_call import model_usage_totals
    from trajrec.replay.label_stores import LabelStores
    from trajrec.replay.library import sort_entries
    from trajrec.replay.query import parse_query
    from trajrec.replay.render import number_text, one_line
    from trajrec.replay.run import open_run

    from ._common import dumps

    column, reverse = _sort_key(args.sort)
    reverse = reverse != args.reverse
    run = open_run(args.paths)
    total = len(run) + len(run.errors)
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
        stores = LabelStores(args.paths)
        for e in entries:
            e.labeled = stores.labeled_fraction(e.episode_id, e.steps)
    # The listing is already in path order per given path: sorting a million rows by path again costs a second.
    shown = entries if column is None and not reverse and len(args.paths) == 1 else \
        sort_entries(entries, column, reverse=reverse)
    out: list[str] = []  # lines written in chunks: one write per line costs more than formatting it
    if not args.json:
        print(f"{'episode':<44} {'env':<22} {'task':<18} {'steps':>6} {'return':>8} {'outcome':<10} {'fail/retry/recov':>16}"
              f" {'tokens':>8} {'model s':>8} {'cost':>8}" + (f" {'labeled':>7}" if with_labels else ""))
    for e in shown:
        if len(out) >= 4096:
            sys.stdout.write("\n".join(out) + "\n")
            out.clear()
        if not args.json:
            mark = "" if e.complete else " *"
            # Episode ids differ at their end: a long one is cut in the middle, keeping both ends.
            eid = e.episode_id if len(e.episode_id) <= 44 else e.episode_id[:20] + "…" + e.episode_id[-23:]
            usage = _usage_columns(model_usage_totals({"model": e.model_usage})) if e.model_usage else _NO_USAGE
            out.append(f"{one_line(eid, 44):<44} {one_line(e.env_id or '-', 22):<22} "
                       f"{one_line(e.task_id or '-', 18):<18} {e.steps:>6} {number_text(e.ret):>8} "
                       f"{(e.outcome or '-') + mark:<10} {f'{e.failures}/{e.retries}/{e.recoveries}':>16} {usage}"
                       + (f" {(e.labeled or 0.0):>7.0%}" if with_labels else ""))
            continue
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
        }
        out.append(dumps(row))
    if args.json:  # unreadable files are rows too (also named on stderr), so a script sees every file
        out.extend(dumps({"episode": os.path.basename(path), "episode_id": os.path.basename(path), "path": path,
                          "outcome": "unreadable", "complete": False, "error": error or ""}) for path, error in bad)
    if out:
        sys.stdout.write("\n".join(out) + "\n")
    if not args.json:
        print(_summary(shown, total, len(bad), bool(args.where)), file=sys.stderr)
    return 1 if bad else 0


_NO_USAGE = f"{'-':>8} {'-':>8} {'-':>8}"


def _usage_columns(totals: dict) -> str:  # type: ignore[type-arg]
    """Tokens, seconds waiting on the model and cost; dashes for episodes without model calls."""
    if not totals.get("calls"):
        return f"{'-':>8} {'-':>8} {'-':>8}"
    tokens = int(totals.get("total_tokens") or 0)
    tok = f"{tokens:,}" if tokens < 100_000 else f"{tokens / 1000:,.0f}k"
    cost = totals.get("cost")
    return f"{tok:>8} {float(totals.get('latency') or 0):>8.2f} {(f'${cost:.3g}' if isinstance(cost, (int, float)) else '-'):>8}"


def _summary(shown: list, total: int, bad: int, filtered: bool) -> str:  # type: ignore[type-arg]
    """``12 episodes (of 40), 310 steps: 8 passed, 4 failed; 9 with failures``, plus what to do about problems."""
    from collections import Counter

    outcomes = Counter(e.outcome or "-" for e in shown)
    parts = [f"{len(shown)} episode{'s' if len(shown) != 1 else ''}" + (f" (of {total})" if filtered else "")]
    if shown:
        steps = sum(e.steps for e in shown)
        parts[0] += f", {steps:,} step{'s' if steps != 1 else ''}"
        parts.append(", ".join(f"{n} {k}" for k, n in sorted(outcomes.items(), key=lambda kv: (-kv[1], kv[0]))))
        faulty = sum(1 for e in shown if e.failures)
        parts.append(f"{faulty} with failed steps")
    text = ": ".join(parts[:2]) + ("; " + "; ".join(parts[2:]) if len(parts) > 2 else "")
    if bad:
        text += f"; {bad} unreadable (above; `trajrec fsck PATH` checks them)"
    if any(not e.complete for e in shown):
        text += "  (* no index: the writer did not close the file; `trajrec fsck --repair` adds one)"
    return text
