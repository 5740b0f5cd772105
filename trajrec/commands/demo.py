"""``trajrec demo``: record a small run of every built-in env, summarize it, open it in the viewer."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

NAME = "demo"
ORDER = 1
HELP = "Record a small run across the four built-in tool envs, print a summary, open it in the viewer."
EXAMPLES = """  trajrec demo                      record into ./trajrec-demo and open the viewer
  trajrec demo runs/demo --episodes 10
  trajrec demo sample_runs --episodes 3 --no-view     (how sample_runs/ is made)"""

# Two code tasks start with a hanging test; a short timeout keeps the demo quick.
DEMO_KWARGS: dict[str, tuple[tuple[str, object], ...]] = {"trajrec/CodeRepair-v0": (("timeout", 2.0),)}

DEMO_ENVS = ("trajrec/MathCalc-v0", "trajrec/CodeRepair-v0", "trajrec/Shell-v0", "trajrec/SupportTicket-v0")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", nargs="?", default="trajrec-demo", metavar="DIR",
                   help="folder for the run (default ./trajrec-demo); one subfolder per env")
    p.add_argument("--episodes", type=int, default=6, help="episodes per env (default 6)")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--skill", type=float, default=0.6, help="scripted agent skill (default 0.6)")
    p.add_argument("--no-view", action="store_true", help="do not open the viewer afterwards")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="DIR holds a demo already: record only the seeds it misses (the default: running the "
                            "demo again reopens it, never duplicates it)")
    again.add_argument("--overwrite", action="store_true",
                       help="DIR holds a demo already: delete its episode files first (labels stay)")


def print_summary(s: dict[str, Any], where: str, head: str | None = None) -> None:
    """Print a run summary (:func:`trajrec.recording.summarize`); ``head`` replaces the "recorded ..." line."""
    from ._common import plural

    skipped = s.get("skipped") or 0
    print(head or f"recorded {plural(s['episodes'], 'episode')} ({plural(s['steps'], 'step')}) into {where}"
          + (f"; {plural(skipped, 'seed')} recorded there already {'was' if skipped == 1 else 'were'} skipped"
             if skipped else ""))
    if s["judged"]:
        unjudged = s["episodes"] - s["judged"]
        print(f"  solved       {s['solved']}/{s['judged']} ({s['solved_rate']:.0%})"
              + (f"; {plural(unjudged, 'episode')} without a terminal check" if unjudged else ""))
    elif s["episodes"]:
        print("  solved       - (no terminal check: this env does not judge its episodes)")
    print(f"  outcomes     " + ", ".join(f"{k}: {v}" for k, v in sorted(s["outcomes"].items(), key=str)))
    print(f"  failures     {s['failures']}   retries {s['retries']}   recoveries {s['recoveries']}")
    print("  checks by kind   " + (", ".join(f"{k}: {v}" for k, v in sorted(s["checks_by_kind"].items())) or "-"))
    print("  checks by judge  " + (", ".join(f"{k}: {v}" for k, v in sorted(s["checks_by_judge"].items())) or "-"))
    if s.get("model"):
        from trajrec.replay.render import usage_text

        print(f"  model        {usage_text(s['model'])}")


def run(args: argparse.Namespace) -> int:
    from trajrec.recorder.errors import TrajrecUsageError

    from ..progress import Progress
    from ..recording import (
        Job,
        make_out_dir,
        plan_seeds,
        record_many,
        recorded_summaries,
        remove_empty_dirs,
        summarize,
    )
    from ._common import plural

    if args.episodes < 1:
        raise TrajrecUsageError(f"--episodes must be at least 1, got {args.episodes}")
    if args.seed < 0:  # Gymnasium refuses negative seeds: found here, before a folder or file is made
        raise TrajrecUsageError(f"--seed must be 0 or more, got {args.seed}")
    if not 0.0 <= args.skill <= 1.0:
        raise TrajrecUsageError(f"--skill must be between 0 and 1, got {args.skill}")
    results = []
    # Every folder is checked before anything is recorded: a refusal leaves the demo as it was.
    plans = []
    skipped = 0
    created: list[Any] = []
    try:
        for env_id in DEMO_ENVS:
            sub = os.path.join(args.dir, env_id.split("/")[-1].split("-v")[0].lower())
            created = make_out_dir(sub) + created  # deepest first, the run's own folder last
            # The demo resumes by default: running it twice reopens the same run instead of adding duplicates.
            seeds, n = plan_seeds(sub, env_id, list(range(args.seed, args.seed + args.episodes)),
                                  resume=not args.overwrite, overwrite=args.overwrite)
            plans.append((env_id, sub, seeds))
            skipped += n
        with Progress(sum(len(seeds) for _, _, seeds in plans), "demo", unit=" episodes") as bar:
            for env_id, sub, seeds in plans:
                kwargs = DEMO_KWARGS.get(env_id, ())
                job = Job(env_id=env_id, out=sub, skill=args.skill, env_kwargs=kwargs)
                if seeds:
                    results += record_many(job, seeds, on_done=lambda _r: bar.advance())
    except BaseException:
        for folder in created:  # each left empty by a failed run goes; a subfolder holding episodes stays
            remove_empty_dirs([folder])
        raise
    if results:
        print_summary({**summarize(results), "skipped": skipped}, args.dir)
    else:
        # Nothing new: the summary is of the demo that is there, read from its episodes' indexes.
        held = [r for env_id, sub, _ in plans for r in recorded_summaries(sub, env_id)]
        whole = summarize(held)
        print_summary(whole, args.dir, head=f"nothing new to record: the demo in {args.dir} already holds "
                                            f"{plural(whole['episodes'], 'episode')} ({plural(whole['steps'], 'step')})")
    if not args.no_view and sys.stdin.isatty() and sys.stdout.isatty():
        from . import view

        # The same viewer, annotator and tags as `trajrec view DIR`.
        code = view.run(argparse.Namespace(paths=[args.dir], step=None, annotator=None, tags=None, no_cache=False,
                                           theme=None))
        print(f"reopen it:  trajrec view {args.dir}     list it:  trajrec ls {args.dir}"
              f"     one episode:  trajrec show FILE --step N")
        return code
    print(f"\nbrowse it:  trajrec view {args.dir}     list it:  trajrec ls {args.dir}"
          f"     one episode:  trajrec show FILE --step N")
    return 0
