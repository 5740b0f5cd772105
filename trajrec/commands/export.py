"""``trajrec export``: step-labeled trajectories for training, in four formats."""

from __future__ import annotations

import argparse
import json
import sys
import time

NAME = "export"
ORDER = 70
HELP = "Export step-labeled trajectories: records, trl-stepwise (TRL PRMTrainer), chat (tool calls) or parquet."
EXAMPLES = """  trajrec export runs/ --format records --out evidence.jsonl
  trajrec export runs/ --format trl-stepwise --out prm.jsonl --label-map strict --unlabeled truncate
  trajrec export runs/ --format chat --out sft.jsonl --where outcome=passed --where env=trajrec/Shell-v0
  trajrec export runs/ --format parquet --out steps.parquet --where labeled=true    (pip install 'trajrec[parquet]')
  trajrec export runs/ --format trl-stepwise --out prm.jsonl --prefer human,model:* --min-agreement 0.8
      (--min-agreement keeps episodes whose steps two or more judges labeled, e.g. `trajrec label auto runs/
       --rules` and people in the viewer, and agree on; `trajrec agreement runs/` shows where that stands)

--where FIELD OP VALUE (repeatable, all must hold); OP: = != > >= < <=; text fields take = != with * ? wildcards.
fields: episode env task split agent run outcome steps return failures retries recoveries checks labels
        labeled labeled_fraction judge complete agreement          (docs/EXPORT.md has the details)"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from trajrec.replay.exports.choice import DEFAULT_PREFER, LABEL_MAPS, UNLABELED

    p.add_argument("paths", nargs="+", metavar="PATH", help="run folders or episode files")
    p.add_argument("--format", "-f", required=True, choices=["records", "trl-stepwise", "chat", "parquet"],
                   help="output format")
    p.add_argument("--out", "-o", required=True, metavar="FILE", help="output file ('-' for stdout, JSONL formats)")
    p.add_argument("--where", action="append", default=[], metavar="EXPR",
                   help="keep episodes where EXPR holds, e.g. outcome=failed, failures>0, labeled=true (repeatable)")
    p.add_argument("--min-agreement", type=float, metavar="X",
                   help="keep episodes whose steps labeled by 2+ judges agree at least this often (0..1)")
    p.add_argument("--label-map", default="strict", choices=LABEL_MAPS,
                   help="ratings to labels: strict (+1 true), lenient (0,+1 true), float (-1/0/+1), unit (0/0.5/1)")
    p.add_argument("--prefer", default=",".join(DEFAULT_PREFER), metavar="LIST",
                   help="whose label wins on a step: classes human,judge,rule,environment or judge ids "
                        "(model:*, human:ana); unlisted sources are not used (default: %(default)s)")
    p.add_argument("--unlabeled", default="skip-episode", choices=UNLABELED,
                   help="trl-stepwise: what to do with unlabeled steps (default: %(default)s)")
    p.add_argument("--system", metavar="TEXT", help="chat: a system message to start each conversation")
    p.add_argument("--observations", action="store_true",
                   help="trl-stepwise: append each step's observation to its completion")
    p.add_argument("--json", action="store_true", help="print the export report as JSON (on stderr with --out -)")


def run(args: argparse.Namespace) -> int:
    from .label import warnings_to_stderr

    with warnings_to_stderr(NAME):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from trajrec.replay.exports import ExportOptions, Source, export
    from trajrec.replay.exports.pipeline import filters_for
    from trajrec.progress import Progress

    options = ExportOptions(label_map=args.label_map, prefer=args.prefer, unlabeled=args.unlabeled,
                            system=args.system, observations=args.observations)
    filters_for(args.where, args.min_agreement)  # bad expressions fail before any file is read
    t0 = time.perf_counter()
    src = Source(args.paths)
    for path, err in src.errors:
        print(f"trajrec export: skipped {path}: {err}", file=sys.stderr)
    with Progress(None, f"export {args.format}", unit=" steps") as bar:  # export() sets the total
        report = export(src, args.format, args.out, where=args.where, min_agreement=args.min_agreement,
                        options=options, progress=bar)
    report.seconds = time.perf_counter() - t0  # reading the indexes and labels included
    if args.json:
        print(json.dumps(report.to_dict()), file=sys.stderr if args.out == "-" else sys.stdout)
    else:
        where = "stdout" if args.out == "-" else args.out
        print(f"exported {_n(report.written, 'episode')} ({_n(report.steps, 'step')}, {_n(report.rows, 'row')}) to "
              f"{where} in "
              f"{report.seconds:.2f} s ({report.steps_per_second:,.0f} steps/s); {report.matched} of "
              f"{report.episodes} episodes matched the filters", file=sys.stderr)
        if not report.written and report.episodes:
            print("  " + _nothing_written(report, args), file=sys.stderr)
        for reason, n in report.skipped.items():
            print(f"  left out {_n(n, 'episode')}: {reason}", file=sys.stderr)
        if report.skipped and args.format == "trl-stepwise" and args.unlabeled == "skip-episode":
            print("  (label them with `trajrec label auto PATH --rules`, or choose --unlabeled truncate, drop-step "
                  "or false)", file=sys.stderr)
    return 1 if src.errors else 0


def _nothing_written(report: object, args: argparse.Namespace) -> str:
    """Why an export wrote nothing, and what would change that."""
    if getattr(report, "matched", 0):
        return "nothing written: every matching episode was left out (reasons below)"
    why = []
    if args.where:
        why.append(f"--where {' '.join(args.where)!r}")
    if args.min_agreement is not None:
        why.append(f"--min-agreement {args.min_agreement:g} (it needs steps labeled by two or more judges that agree; "
                   "`trajrec agreement PATH` shows them)")
    return "nothing written: no episode matched " + " and ".join(why) if why else "nothing written"


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
