"""``trajrec report``: what a run is worth as training data: coverage, difficulty, failures, checks and labels,
behaviour and lineage, as terminal tables, JSON or a self-contained HTML page with plots."""

from __future__ import annotations

import argparse
import json
import os
import sys

NAME = "report"
ORDER = 22
HELP = ("What a run is worth as training data: coverage, difficulty (pass@k), failures, checks and labels, "
        "behaviour, lineage.")
EXAMPLES = """  trajrec report runs/shell                     terminal tables
  trajrec report runs/ --html report.html       also one self-contained HTML page with plots
                                                (needs: pip install 'trajrec[report]')
  trajrec report runs/ --json | jq .difficulty  the same figures for scripts
  trajrec report runs/ --where "env:math split:test"     only some episodes (the filter grammar of ls/export)"""

_PLOTLY_PIP = "pip install 'trajrec[report]'"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="RUN", help="run folders (searched recursively) or episode files")
    p.add_argument("--html", metavar="FILE", help="also write the report as one self-contained HTML file with plots")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the --html FILE if it exists (never an episode file or an input)")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object instead of tables")
    p.add_argument("--where", metavar="QUERY", help="report on the episodes matching QUERY only (see `trajrec ls`)")
    p.add_argument("--with-recorded", action="store_true",
                   help="in judge agreement, also compare the checks recorded on steps (as labels are)")
    p.add_argument("--top", type=int, default=10, metavar="N",
                   help="episodes worth a look and most-disputed steps to list (default 10)")
    p.add_argument("--rows", type=int, default=15, metavar="N", help="rows per long terminal table (default 15)")


def run(args: argparse.Namespace) -> int:
    from trajrec.recorder.errors import TrajrecUsageError, require

    from .label import warnings_to_stderr

    if args.top < 1 or args.rows < 1:
        raise TrajrecUsageError("--top and --rows take a positive number, e.g. --top 10")
    if args.html:
        # Fail before the scan, not after it: the plotting library is an optional extra.
        require("plotly", _PLOTLY_PIP, "trajrec report --html")
        folder = os.path.dirname(os.path.abspath(args.html))
        if not os.path.isdir(folder):
            raise TrajrecUsageError(f"--html {args.html}: folder {folder} does not exist; create it first")
    with warnings_to_stderr(NAME):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from trajrec.envs.banks import task_bank
    from trajrec.progress import Progress
    from trajrec.recorder.errors import TrajrecUsageError
    from trajrec.replay.library import find_episode_files
    from trajrec.replay.report import build_report, render_html, render_text

    inputs = find_episode_files(args.paths)
    if not inputs:
        from ._common import no_episode_files

        raise no_episode_files(args.paths)
    if args.html:  # before the scan: never replace an episode (or any file, without --overwrite)
        from trajrec.replay.exports.base import check_output_file

        check_output_file(args.html, inputs, overwrite=args.overwrite, flag="--html", example="report.html")
    bar: list[Progress] = []

    def progress(done: int, total: int) -> None:
        if not bar:
            bar.append(Progress(total, "report", unit=" episodes").__enter__())
        bar[0].advance()

    try:
        report = build_report(args.paths, where=args.where, task_bank=task_bank, with_recorded=args.with_recorded,
                              top=args.top, progress=progress)
    finally:
        if bar:
            bar[0].__exit__(None, None, None)
    from ._common import unfinished_note, unfinished_spend

    # Episodes `record --resume` set aside are in no total above, yet their model calls were paid for: said.
    spend = unfinished_spend(args.paths)
    if spend:
        report["unfinished"] = spend
    for item in report["unreadable"]:
        ls_note = "" if "not a trajrec episode" in item["error"] else (" (`trajrec ls` may still list it: ls reads "
                                                                       "only each file's index)")
        print(f"trajrec report: skipped {item['path']}: {item['error']}{ls_note}", file=sys.stderr)
    if args.html:
        from trajrec.replay.exports.base import writes_in_place

        page = render_html(report)
        # A device or pipe (/dev/null, /dev/stdout) is written in place: a rename would replace it with a file.
        tmp = args.html if writes_in_place(args.html) else f"{args.html}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(page)
            if tmp != args.html:
                os.replace(tmp, args.html)  # a reader of FILE sees the old page or the new one, never half of one
        except OSError as exc:
            try:
                if tmp != args.html:
                    os.unlink(tmp)
            except OSError:
                pass  # never created
            raise TrajrecUsageError(f"cannot write --html {args.html}: {exc.strerror or exc}; pass a writable "
                                    "file path, e.g. --html report.html") from exc
        print(f"trajrec report: wrote {args.html} ({len(page) / 1e6:.1f} MB, opens without network)", file=sys.stderr)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, allow_nan=False, default=str))
    else:
        sys.stdout.write(render_text(report, rows=args.rows))
    note = unfinished_note(spend)
    if note:
        print(f"trajrec report: note: {note}", file=sys.stderr)
    return 1 if report["unreadable"] else 0
