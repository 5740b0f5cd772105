"""``trajrec replay``: re-run an episode's actions in a rebuilt env and report the first divergence."""

from __future__ import annotations

import argparse
import sys

NAME = "replay"
ORDER = 40
HELP = ("Rebuild an episode's env, re-run its actions and compare every step (observation, reward, "
        "terminated/truncated, info, state, exceptions) with the recording. Exit 0: no divergence; "
        "1: diverged; 2: could not replay.")
EXAMPLES = """  trajrec replay runs/shell/<episode>.msgpack.zst        replayed 14 steps, no divergence
  trajrec replay EP --until 5                            replay steps 0..5 only
  trajrec replay EP --ignore info.elapsed --ignore state.clock     leave these paths out
  trajrec replay EP --ignore "state.files['a.txt']" --ignore 'info.checks.*.rationale'
  trajrec replay EP --all                                report every divergent step, not only the first
  trajrec replay EP --record runs/replays                record the replay as a new episode (lineage -> EP)
  trajrec replay EP --import mypkg.envs                  import the module that registers a third-party id
  trajrec replay EP --allow-entry-point mypkg.envs:MyEnv    trust this entry point named in the header
  trajrec replay EP --json | jq .first_divergence        machine-readable report

ignore paths start with a compared field (observation, reward, terminated, truncated, info, state,
exception), then dotted keys, [index], ['key.with.dots'] or * for any key; see docs/REPLAY.md.
The state is not compared where the recording marks it unknown (its state_fn raised; a vector env that raised or
reset in the step could not be asked): the report says "state not compared at step N"."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", metavar="FILE", help="an episode file")
    p.add_argument("--until", type=int, metavar="N", help="stop after step N")
    p.add_argument("--ignore", action="append", default=[], metavar="PATH",
                   help="leave PATH out of the comparison, e.g. info.elapsed, observation, state.files.x (repeatable)")
    p.add_argument("--record", metavar="DIR", help="record the replayed run as a new episode in folder DIR; its "
                   "provenance lineage points at FILE")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import MODULE first, e.g. the module that registers the env id (repeatable)")
    p.add_argument("--allow-entry-point", dest="allow_entry_points", action="append", default=[],
                   metavar="MODULE:NAME",
                   help="allow replay to import and call this exact entry point named in the episode header (an "
                   "unregistered env's, or a wrapper's outside gymnasium.wrappers); without it replay runs no code "
                   "the file names (repeatable)")
    p.add_argument("--env", dest="env_id", metavar="ID",
                   help="rebuild this registered env id instead of the recorded one (recorded kwargs still apply)")
    p.add_argument("--all", action="store_true", help="keep going after a divergence and report every divergent step")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")


def run(args: argparse.Namespace) -> int:
    import warnings

    import trajrec.envs  # noqa: F401  (registers the built-in trajrec/* ids; nothing below the CLI needs envs)
    from trajrec.recorder import read_index
    from trajrec.recorder.reader import open_error
    from trajrec.recorder.errors import TrajrecError
    from trajrec.replay.replayer import ReplayWarning, replay_episode

    from ..progress import Progress
    from ._common import dumps

    def fail(message: str, error_type: str) -> int:
        if args.json:
            print(dumps({"recorded_path": args.path, "error": message, "error_type": error_type}))
        print(f"trajrec replay: error: {message}", file=sys.stderr)
        return 2

    if args.until is not None and args.until < 0:
        return fail(f"--until must be a step index >= 0, got {args.until}", "TrajrecUsageError")
    try:
        steps = read_index(args.path).get("steps") or 0
    except IsADirectoryError as exc:
        return fail(str(open_error(args.path, exc)), "TrajrecUsageError")
    except OSError as exc:
        return fail(f"cannot read {args.path}: {exc.strerror or exc}", type(exc).__name__)
    except TrajrecError as exc:
        return fail(str(exc), type(exc).__name__)
    total = steps if args.until is None else min(steps, args.until + 1)
    if args.imports:
        # As with `python -m trajrec` (and `label auto --judge`): a module in the current folder imports.
        import os

        cwd = os.getcwd()
        if cwd not in sys.path and "" not in sys.path:
            sys.path.insert(0, cwd)
    try:
        # stream= at call time: Progress's default binds the sys.stderr of import time.
        with Progress(total, "replay", unit=" steps", stream=sys.stderr) as bar, warnings.catch_warnings():
            # The report carries these warnings; the command prints them once, below.
            warnings.simplefilter("ignore", ReplayWarning)
            report = replay_episode(args.path, until=args.until, ignore=args.ignore, record=args.record,
                                    stop_at_first=not args.all, imports=args.imports, env_id=args.env_id,
                                    allow_entry_points=args.allow_entry_points,
                                    on_step=lambda done: bar.advance())
    except TrajrecError as exc:
        return fail(str(exc), type(exc).__name__)
    for message in report.warnings:
        print(f"trajrec replay: warning: {message}", file=sys.stderr)
    if args.json:
        print(dumps(report.to_dict()))
    else:
        print(report)
    return 1 if report.diverged else 0
