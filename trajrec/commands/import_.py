"""``trajrec import``: turn trajectories recorded by other tools into a trajrec run."""

from __future__ import annotations

import argparse
import json
import sys

NAME = "import"
ORDER = 15
HELP = ("Import SWE-agent .traj, mini-swe-agent .traj.json, Inspect .eval/.json logs, Harbor ATIF trajectory.json, "
        "OpenHands event files or Minari datasets as trajrec episodes (ls, view, label, export and fsck work on them).")
EXAMPLES = """  trajrec import auto runs/*.traj --out runs/swe             detect each file's format and say what it found
  trajrec import swe-agent trajectories/**/*.traj --out runs/swe
  trajrec import mini-swe-agent out/*/*.traj.json --out runs/mini
  trajrec import inspect logs/2025-*.eval logs/old.json --out runs/inspect   one episode per sample and epoch
  trajrec import atif jobs/*/agent/trajectory.json --out runs/harbor
  trajrec import openhands events/ --out runs/oh           an event-stream folder or an exported trajectory JSON
  trajrec import minari D4RL/door/human-v2 --out runs/door   (pip install 'trajrec[minari]')
  trajrec import auto run.traj --out runs/x --json | jq .fields     what was mapped and what was kept as extra
  trajrec import auto runs/*.traj --out runs/swe --resume     add the files not imported yet (same content: skipped)
  trajrec import atif atif.jsonl --out runs/rt             one trajectory per line (trajrec export --format atif)
  trajrec import atif atif/ --out runs/rt                  a folder `export --format atif --out atif/` wrote
  trajrec import mini-swe-agent out/*.traj.json.gz --out runs/mini     gzip files are read as they are

formats: auto swe-agent mini-swe-agent inspect atif openhands minari   (docs/IMPORT.md has each mapping)"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("format", metavar="FORMAT",
                   help="auto, swe-agent, mini-swe-agent, inspect, atif, openhands or minari")
    p.add_argument("paths", nargs="+", metavar="PATH", help="source files (a Minari dataset id or folder for minari; an "
                   "events/ folder for openhands; a folder of ATIF files for atif)")
    p.add_argument("--out", "-o", required=True, metavar="RUN", help="run folder to write the episodes into")
    p.add_argument("--run-id", metavar="ID", help="run id stored in each episode's provenance (default: a new one)")
    p.add_argument("--keep-going", action="store_true",
                   help="report a malformed file and go on with the next (default: stop at the first)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="the folder holds episodes already: import only the sources not imported yet "
                       "(matched by the SHA-256 recorded in each episode's provenance)")
    again.add_argument("--overwrite", action="store_true",
                       help="the folder holds episodes already: delete its episode files first (labels stay)")
    p.add_argument("--json", action="store_true", help="print the import report as JSON")


def run(args: argparse.Namespace) -> int:
    from trajrec.progress import Progress
    from trajrec.replay.importers import import_paths

    done = [0]

    def on_episode(_path: object, _summary: object) -> None:
        done[0] += 1
        bar.advance()

    try:
        with Progress(None, f"import {args.format}", unit=" episodes", stream=sys.stderr) as bar:
            report = import_paths(args.format, args.paths, args.out, run_id=args.run_id, keep_going=args.keep_going,
                                  resume=args.resume, overwrite=args.overwrite, on_episode=on_episode)
    except KeyboardInterrupt as exc:  # say what was kept and how to go on, as `record` does
        import shlex

        argv = [a for a in getattr(args, "_argv", None) or [] if a != "--overwrite"]
        if "--resume" not in argv:
            argv.append("--resume")
        kept = getattr(exc, "imported", done[0])  # (the files in the folder: a source cut short left none)
        exc.reason = (f"interrupted; {_n(kept, 'episode')} imported into {args.out} (a file cut short left "  # type: ignore[attr-defined]
                      f"nothing); import the rest with: {shlex.join(['trajrec', *argv])}")
        raise
    from ._common import plural

    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        if report.removed:
            print(f"--overwrite: deleted {_n(report.removed, 'episode file')} from {report.out} first", file=sys.stderr)
        for f in report.files:
            found = f" (auto: {f.format}, {f.detected})" if f.detected else ""
            if f.skipped:
                print(f"{f.path}: skipped, {f.skipped}")
            elif not f.error:
                print(f"{f.path}{found}: {_n(len(f.episodes), 'episode')}, {_n(f.steps, 'step')}")
        for fmt, fields in report.fields.items():
            mapped, extra = fields["mapped"], fields["extra"]
            print(f"{fmt}: mapped {plural(len(mapped), 'source field')}; kept {len(extra)} as extra"
                  + (f": {', '.join(sorted(extra)[:8])}{' ...' if len(extra) > 8 else ''}" if extra else ""))
        for fmt, fields in report.fields.items():  # values not read: once per field, what was found and why
            for source, why in fields.get("unread", {}).items():
                print(f"trajrec import: warning: {fmt} {source}: {why}; its value is kept as extra",
                      file=sys.stderr)
        for f in report.errors:  # --keep-going: the files left out, after everything that was imported
            print(f"trajrec import: error: skipped {f.error}", file=sys.stderr)
        tail = "".join(f"; {what}" for what in (
            f"skipped {_n(len(report.skipped), 'file')} already imported" if report.skipped else "",
            f"{_n(len(report.errors), 'bad file')} left out (see above)" if report.errors else "") if what)
        print(f"imported {_n(report.episodes, 'episode')} ({_n(report.steps, 'step')}) into {report.out} "
              f"in {report.seconds:.2f} s{tail}", file=sys.stderr)
    if report.removed:
        # The deleted files' labels stay, but belong to no episode now (a re-imported source gets a new id).
        from ._common import orphaned_labels_note

        note = orphaned_labels_note(report.out)
        if note:
            print(f"trajrec import: note: {note}", file=sys.stderr)
    return 1 if report.errors else 0


def _n(n: int, word: str) -> str:
    """``1 episode``, ``2 episodes``."""
    return f"{n} {word}{'' if n == 1 else 's'}"
