"""``trajrec view``: browse and replay episodes in the terminal (the Textual app in :mod:`tui`)."""

from __future__ import annotations

import argparse
import os

NAME = "view"
ORDER = 25
HELP = "Browse a folder of episodes and replay one step by step in the terminal (press ? inside for keys)."
EXAMPLES = """  trajrec view runs/                           the library: filter, sort, enter opens an episode
  trajrec view runs/a.msgpack.zst --step 40    open one episode at step 40 (-1: the last step)
  trajrec view runs/ --annotator ana           label as "ana" (labeling keys arrive with the label store)"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="an episode file, or folders searched recursively")
    p.add_argument("--step", type=int, metavar="N",
                   help="with one episode file: open at step N (negative counts from the end)")
    p.add_argument("--annotator", metavar="NAME", help="who labels in this session (default: $TRAJREC_ANNOTATOR)")
    p.add_argument("--no-cache", action="store_true",
                   help="neither read nor write the summary cache <folder>/.trajrec/catalog.msgpack")


def run(args: argparse.Namespace) -> int:
    from recorder import SUFFIX, TrajrecUsageError

    for path in args.paths:
        if not os.path.exists(path):
            raise TrajrecUsageError(f"{path}: no such file or folder; pass an episode file (*{SUFFIX}) or a folder "
                                    "of them")
    if args.step is not None and not (len(args.paths) == 1 and os.path.isfile(args.paths[0])):
        raise TrajrecUsageError("--step needs exactly one episode file, e.g. "
                                f"`trajrec view runs/x{SUFFIX} --step {args.step}`")
    if len(args.paths) == 1 and os.path.isfile(args.paths[0]):
        from recorder import open_episode

        with open_episode(args.paths[0]) as ep:  # fail here, with a plain error, on a file that is no episode
            n = len(ep)
        if args.step is not None and not -n <= args.step < n:
            raise TrajrecUsageError(f"--step {args.step} is out of range: {args.paths[0]} has steps 0..{n - 1}"
                                    + (f" (or -{n}..-1 from the end)" if n else ""))

    from tui.app import create_app  # textual loads only for this command

    app = create_app(args.paths, annotator=args.annotator or os.environ.get("TRAJREC_ANNOTATOR") or None,
                     step=args.step, use_catalog=not args.no_cache)
    app.run()
    return int(app.return_code or 0)
