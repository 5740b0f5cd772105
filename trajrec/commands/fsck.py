"""``trajrec fsck``: check episode files and rebuild missing indexes."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trajrec.recorder.fsck import FsckReport

NAME = "fsck"
ORDER = 80
HELP = "Check episode files for damage; with --repair, rebuild missing or damaged indexes."
EXAMPLES = """  trajrec fsck runs/                  check every episode under runs/
  trajrec fsck runs/ --repair         rebuild indexes of files whose writer died, record lost steps
  trajrec fsck ep.msgpack.zst --json"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="episode files or folders (searched recursively)")
    p.add_argument("--repair", action="store_true",
                   help="rewrite damaged files and files without a valid index: every frame is kept byte for byte "
                        "(damaged frames too, between readable ones), an unclosed frame is re-encoded, and the "
                        "index is appended, listing the steps lost to damage (readers skip them and say so); a "
                        "header record lost to damage is marked lost (task and provenance unknown, nothing made up) "
                        "and the records after it are kept; the original is kept as FILE.orig whenever any of its "
                        "bytes is not carried over")
    p.add_argument("--json", action="store_true", help="one JSON report per file")


def run(args: argparse.Namespace) -> int:
    from trajrec.recorder import TrajrecError, fsck
    from trajrec.recorder.fsck import FsckReport

    from ..progress import Progress
    from ._common import dumps, find_episodes

    skipped: list[str] = []
    paths = find_episodes(args.paths, skipped)
    reports = []
    interrupted = False
    with Progress(len(paths), "fsck") as bar:
        try:
            for path in paths:
                try:
                    reports.append(fsck(path, repair=args.repair))
                except TrajrecError as exc:  # one file fsck cannot handle: say so and go on with the others
                    reports.append(FsckReport(path, ok=False, complete=False, error=str(exc)))
                except Exception as exc:  # noqa: BLE001  (a fault fsck did not foresee: one line, the folder goes on)
                    reports.append(FsckReport(path, ok=False, complete=False,
                                              error=f"fsck failed on this file ({type(exc).__name__}: {exc}); it was "
                                                    "left as it was (any .fsck-tmp copy removed)"))
                bar.advance()
        except KeyboardInterrupt:
            # Ctrl-C: the files done so far are reported below (a repair already replaced some, keeping
            # originals as FILE.orig); the file being checked was left as it was. Exit 130 after the report.
            interrupted = True
    for note in skipped:
        if args.json:
            print(dumps({"skipped": note}))
        else:
            print(f"SKIPPED  {note.removeprefix('skipped ')}")
    for r in reports:
        if args.json:
            print(dumps(r.to_dict()))
            continue
        if r.live:
            print(f"LIVE     {r.path} ({r.steps} steps so far): a Recorder is still writing it; check it once it "
                  "is closed")
        elif r.removed:
            print(f"REMOVED  {r.path}: empty episode, nothing recorded (its writer was killed at its first write)")
        elif r.empty:
            print(f"EMPTY    {r.path}: empty episode, nothing recorded; --repair removes it")
        elif r.error:
            print(f"BAD      {r.path}: {r.error}")
            for d in r.damage:
                print(f"         - {d}")
        elif r.ok:
            print(f"ok       {r.path} ({r.steps} steps)")
        else:
            # PARTIAL: an earlier --repair recorded the lost steps, or the recorder did (steps it could not write):
            # the file holds nothing more to repair.
            state = "REPAIRED" if r.repaired else "PARTIAL " if r.recorded else "DAMAGED "
            print(f"{state} {r.path} ({_counts(r)})")
            for d in r.damage:
                print(f"         - {d}")
            if r.backup:
                print(f"         original kept as {r.backup}")
    if not args.json:
        # Each file in exactly one bucket: still being written, removed (an empty stub), repaired, ok, or a problem.
        buckets = {"live": 0, "removed": 0, "repaired": 0, "ok": 0, "problems": 0, "partial": 0}
        for r in reports:
            buckets[_bucket(r)] += 1
        # Only suggest --repair for what it can do: close a dead writer's file, record lost steps, or remove an
        # empty stub (a file whose losses are recorded, or that cannot be read at all, it cannot fix).
        fixable = sum(1 for r in reports if _bucket(r) == "problems" and (r.empty or not r.error))
        from ._common import plural

        print(f"{plural(len(reports), 'file')}, {buckets['ok']} ok, {buckets['problems']} with problems"
              + (f", {buckets['repaired']} repaired" if buckets["repaired"] else "")
              + (f", {buckets['partial']} with lost steps (recorded in the file)" if buckets["partial"] else "")
              + (f", {buckets['removed']} empty removed" if buckets["removed"] else "")
              + (f", {buckets['live']} still being written" if buckets["live"] else "")
              + (f", run with --repair to fix {fixable}" if fixable and not args.repair else "")
              + (f"; {len(skipped)} symbolic link{'s' if len(skipped) != 1 else ''} skipped (above)"
                 if skipped else "")
              + (f"; interrupted after {len(reports)} of {len(paths)} files" if interrupted else ""))
    if interrupted:
        done = sum(1 for r in reports if r.repaired or r.removed)
        print(f"trajrec fsck: interrupted after {len(reports)} of {len(paths)} files"
              + (f"; {done} of them {'was' if done == 1 else 'were'} repaired or removed (listed above"
                 + (", originals kept as FILE.orig" if any(r.backup for r in reports) else "") + ")"
                 if args.repair else "")
              + "; the file being checked was left as it was; run again to check the rest", file=sys.stderr)
        return 130  # as the command line's own Ctrl-C exit
    # A file whose lost steps a repair recorded is not a failure of this run: nothing more can be done to it.
    unrepaired = sum(1 for r in reports if not r.ok and not r.repaired and not r.live and not r.recorded)
    return 1 if unrepaired else 0


def _counts(r: FsckReport) -> str:
    """``22 readable steps of 30; lost: steps 8..15`` (readable steps only, then the ranges that are not)."""
    text = ("header record lost (task and provenance unknown); " if r.header_lost else "") + \
        f"{r.steps} readable step{'s' if r.steps != 1 else ''}"
    if r.unwritten:  # env steps the recorder could not write: never numbered, so not in "of M"
        n = sum(k for _at, k in r.unwritten)
        places = ", ".join(f"{k} before step {at}" if at is not None else f"{k} at a place unknown"
                           for at, k in r.unwritten)
        text += (f"; {n} env step{'s' if n != 1 else ''} lost while recording ({places}; a write failed: never in "
                 "the file, nothing to repair)")
    if not r.lost and not r.unverified and not r.unverified_reset:
        return text
    text += f" of {r.total_steps}"
    if r.unverified or r.unverified_reset:
        text += "; unverified (salvaged): " + ", ".join(
            ["the reset record"] * r.unverified_reset + [f"steps {a}..{b}" for a, b in r.unverified])
    if r.lost:
        text += "; lost: " + ", ".join(f"steps {a}..{b}" if b is not None else f"any steps from {a} on"
                                       for a, b in r.lost)
    return text


def _bucket(r: FsckReport) -> str:
    """``live``, ``removed``, ``repaired``, ``partial``, ``ok`` or ``problems``: where a file's report is counted."""
    if r.live:
        return "live"
    if r.removed:
        return "removed"
    if r.repaired:
        return "repaired"
    if r.recorded and not r.error:
        return "partial"
    return "ok" if r.ok else "problems"
