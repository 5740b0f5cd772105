"""``trajrec record``: record episodes of an env with a scripted or random agent."""

from __future__ import annotations

import argparse

NAME = "record"
ORDER = 10
HELP = "Record episodes of an environment with a built-in agent, one file per episode."
EXAMPLES = """  trajrec record trajrec/Shell-v0 --episodes 50 --out runs/shell
  trajrec record trajrec/CodeRepair-v0 --episodes 200 --workers 2 --skill 0.3 --out runs/code
  trajrec record CartPole-v1 --agent random --episodes 10 --out runs/cartpole
  trajrec record trajrec/MathCalc-v0 --episodes 5 --out runs/math --kwarg max_steps=12"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("env_id", metavar="ENV_ID", help="a registered env id (`trajrec envs` lists the built-in ones)")
    p.add_argument("--episodes", type=int, default=10, help="how many episodes (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode; episode k uses seed+k (default 0)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the episode files")
    p.add_argument("--agent", choices=["scripted", "random"], default="scripted",
                   help="scripted: the env's built-in weak agent; random: samples the action space")
    p.add_argument("--skill", type=float, default=0.6, help="scripted agent skill in [0, 1] (default 0.6)")
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes (default 1)")
    p.add_argument("--kwarg", action="append", default=[], metavar="KEY=VALUE",
                   help="env constructor argument (repeatable; VALUE parsed as JSON when it can be)")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")


def parse_kwargs(items: list[str]) -> tuple[tuple[str, object], ...]:
    import json

    from trajrec.recorder.errors import TrajrecUsageError

    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise TrajrecUsageError(f"--kwarg {item!r}: expected KEY=VALUE, e.g. --kwarg max_steps=20")
        try:
            parsed: object = json.loads(value)
        except ValueError:
            parsed = value
        out.append((key, parsed))
    return tuple(out)


def run(args: argparse.Namespace) -> int:
    from trajrec.recorder.errors import TrajrecUsageError

    from ..progress import Progress
    from ..recording import Job, record_many, summarize
    from ._common import dumps
    from .demo import print_summary

    if args.episodes < 1:
        raise TrajrecUsageError(f"--episodes must be at least 1, got {args.episodes}")
    if not 0.0 <= args.skill <= 1.0:
        raise TrajrecUsageError(f"--skill must be between 0 and 1, got {args.skill}")
    if args.workers < 1:
        raise TrajrecUsageError(f"--workers must be at least 1, got {args.workers}")
    job = Job(env_id=args.env_id, out=args.out, agent=args.agent, skill=args.skill, env_kwargs=parse_kwargs(args.kwarg))
    seeds = list(range(args.seed, args.seed + args.episodes))
    with Progress(len(seeds), f"record {args.env_id}", unit=" episodes") as bar:
        results = record_many(job, seeds, workers=args.workers, on_done=lambda _r: bar.advance())
    summary = summarize(results)
    if args.json:
        print(dumps(summary))
    else:
        print_summary(summary, args.out)
    return 0
