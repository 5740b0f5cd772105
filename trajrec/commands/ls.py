"""``trajrec ls``: one line per episode."""

from __future__ import annotations

import argparse
import sys

NAME = "ls"
ORDER = 20
HELP = ("List episodes: id, env, task, steps, return, outcome, failures/retries/recoveries, and the model calls' "
        "tokens, seconds and cost.")
EXAMPLES = """  trajrec ls runs/                    every episode under runs/, recursively
  trajrec ls runs/ --json | jq .      one JSON object per line, for scripts
  trajrec ls a.msgpack.zst b.msgpack.zst"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="episode files or folders (searched recursively)")
    p.add_argument("--json", action="store_true", help="print one JSON object per episode")


def run(args: argparse.Namespace) -> int:
    from trajrec.recorder import read_index
    from trajrec.recorder.model_call import model_usage_totals
    from trajrec.recorder.errors import EmptyEpisodeError, TrajrecFormatError

    from ._common import dumps, find_episodes
    from trajrec.replay.render import one_line

    paths = find_episodes(args.paths)
    bad = 0
    incomplete = 0
    if not args.json:
        print(f"{'episode':<44} {'env':<22} {'task':<18} {'steps':>6} {'return':>8} {'outcome':<10} {'fail/retry/recov':>16}"
              f" {'tokens':>8} {'model s':>8} {'cost':>8}")
    empty = 0
    for path in paths:
        try:
            index = read_index(path)
        except EmptyEpisodeError:
            empty += 1  # a writer killed at its first write: nothing was recorded, nothing to list
            print(f"trajrec ls: skipped {path}: empty episode, nothing recorded", file=sys.stderr)
            continue
        except (TrajrecFormatError, OSError) as exc:
            bad += 1
            print(f"trajrec ls: {exc}", file=sys.stderr)
            continue
        header = index.get("header") or {}
        task = header.get("task") or {}
        s = index.get("summary") or {}
        row = {
            "episode_id": header.get("episode_id"),
            "path": str(path),
            "env_id": task.get("env_id"),
            "task_id": task.get("id"),
            "steps": s.get("steps", index.get("steps")),
            "return": s.get("return"),
            "outcome": s.get("outcome"),
            "failures": s.get("failures", 0),
            "retries": s.get("retries", 0),
            "recoveries": s.get("recoveries", 0),
            "checks": s.get("checks"),
            "model": model_usage_totals(s),
            "complete": index.get("complete", True),
        }
        incomplete += not row["complete"]
        if args.json:
            print(dumps(row))
        else:
            mark = "" if row["complete"] else " *"
            frr = f"{row['failures']}/{row['retries']}/{row['recoveries']}"
            ret = row["return"]
            print(f"{one_line(str(row['episode_id']), 44):<44} {one_line(str(row['env_id']), 22):<22} "
                  f"{one_line(str(row['task_id']), 18):<18} {row['steps']:>6} "
                  f"{(f'{ret:.3g}' if isinstance(ret, (int, float)) else '-'):>8} {str(row['outcome']) + mark:<10} {frr:>16}"
                  f" {_usage_columns(row['model'])}")
    if not args.json:
        print(f"{len(paths) - bad - empty} episodes" + (f", {bad} unreadable" if bad else "")
              + (f", {empty} empty skipped" if empty else "")
              + ("  (* no index: the writer did not close the file; `trajrec fsck --repair` adds one)"
                 if incomplete else ""), file=sys.stderr)
    return 1 if bad else 0


def _usage_columns(totals: dict) -> str:  # type: ignore[type-arg]
    """Tokens, seconds waiting on the model and cost; dashes for episodes without model calls."""
    if not totals.get("calls"):
        return f"{'-':>8} {'-':>8} {'-':>8}"
    tokens = int(totals.get("total_tokens") or 0)
    tok = f"{tokens:,}" if tokens < 100_000 else f"{tokens / 1000:,.0f}k"
    cost = totals.get("cost")
    return f"{tok:>8} {float(totals.get('latency') or 0):>8.2f} {(f'${cost:.3g}' if isinstance(cost, (int, float)) else '-'):>8}"
