"""``trajrec diff``: two episodes compared step by step."""

from __future__ import annotations

import argparse

NAME = "diff"
ORDER = 35
HELP = ("Compare two episodes: task, reset (first observation, info, state) and, step by step, actions, observations, "
        "rewards, failures, info and state.")
EXAMPLES = """  trajrec diff runs/a/ep1.msgpack.zst runs/b/ep1.msgpack.zst
  trajrec replay ep.msgpack.zst --record replays/ && trajrec diff ep.msgpack.zst replays/<new>.msgpack.zst
  trajrec diff A B --ignore info.elapsed --ignore state.clock      leave these paths out
  trajrec diff A B --ignore action --ignore task.seed               two agents or seeds: compare what follows
  trajrec diff A B --ignore reset.observation                        two prompts: compare what the agents did
  trajrec diff A B --json | jq -c 'select(.type == "step")'          one JSON line per differing step

The reset is compared as `trajrec replay` compares it: its failure, observation (an LLM agent's prompt), info and
state. A step field's path leaves it out at the reset too (info.elapsed, state.clock); reset.PATH only at the reset
(reset.observation, reset.info.difficulty, reset.state.seeded); reset (or reset.*) leaves the reset out.
A repaired file whose header or reset record was lost to damage: that part is named as not compared
("B: header record lost (task unknown): task not compared"), never reported as a difference.

Exit status, as with diff(1) and `trajrec replay`: 0 when the episodes are the same, 1 when they differ, 2 on
an error (a missing or unreadable file, a bad --ignore path; the message goes to stderr)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", metavar="A", help="an episode file")
    p.add_argument("b", metavar="B", help="another episode file")
    p.add_argument("--ignore", action="append", default=[], metavar="PATH",
                   help="leave PATH out (repeatable): a step field (action, failure, observation, reward, terminated, "
                        "truncated, info, state; at the reset too), task or reset (failure, observation, info, "
                        "state at the reset only), with dotted keys below, e.g. info.elapsed, state.files.x, "
                        "task.seed, reset.observation")
    p.add_argument("--no-state", action="store_true",
                   help="do not compare the state (at the reset and after each step)")
    p.add_argument("--limit", type=int, default=10, metavar="N",
                   help="show the differences of the first N differing steps (default 10; 0: all)")
    p.add_argument("--width", type=int, default=100, help="line width (default 100)")
    p.add_argument("--json", action="store_true",
                   help="JSON lines: one {\"type\": \"step\"} per differing step, then {\"type\": \"summary\"} "
                        "(with the task's and the reset's differences, \"task\" and \"reset\"); each difference has "
                        "the two values as \"a\" and \"b\"")


def run(args: argparse.Namespace) -> int:
    import sys

    from trajrec.recorder.errors import TrajrecError

    from ._common import dumps

    try:
        return _diff(args)
    except BrokenPipeError:
        raise  # the reader of stdout went away: the command line exits with args.verdict (cli._run)
    except (TrajrecError, OSError) as exc:
        # 2, not 1: a script reading "1" as "they differ" must not take a missing file for a difference.
        message = str(exc) if isinstance(exc, TrajrecError) else f"{exc.filename or ''}: {exc.strerror or exc}"
        message = " ".join(message.split("\n"))
        if args.json:
            print(dumps({"type": "error", "error": message, "error_type": type(exc).__name__}))
        print(f"trajrec diff: error: {message}", file=sys.stderr)
        return 2


def _diff(args: argparse.Namespace) -> int:
    from trajrec.recorder import open_episode
    from trajrec.replay.episode_diff import diff_episodes, render_reset_diff, render_step_diff
    from trajrec.replay.render import number_text, one_line

    from ._common import dumps, plural

    with open_episode(args.a) as a, open_episode(args.b) as b:
        result = diff_episodes(a, b, ignore=args.ignore, state=not args.no_state)
        # Decided before any output: `trajrec diff A B | head` closing the pipe still exits 0/1 by the episodes.
        args.verdict = 0 if result.same else 1
        if args.json:
            for d in result.steps:
                print(dumps({"type": "step", **d.to_dict()}))
            print(dumps({"type": "summary", **result.to_dict()}))
            return 0 if result.same else 1
        for name, ep in (("A", a), ("B", b)):
            task = ep.task
            # Recorded text goes through one_line: control characters are shown escaped, never sent raw.
            print(f"{name}  {one_line(str(ep.path), 1000)}\n   {one_line(ep.episode_id, 80)}  "
                  f"{one_line(task.get('env_id') or '-', 60)}  task {one_line(task.get('id') or '-', 40)}  "
                  f"seed {one_line(task.get('seed'), 30)}  {plural(len(ep), 'step')}  "
                  f"return {number_text(ep.summary.get('return'))}  {ep.summary.get('outcome') or '-'}")
        # Steps are compared by number; a side that lost env steps numbers the later ones lower: say where.
        for line in result.gap_lines():
            print(f"✗ {line}")
        if result.task:
            print("\ntask differs (A → B):")
            for row in result.task:
                print(f"  ~ {row.where}: {one_line(row.recorded, args.width // 2)} → "
                      f"{one_line(row.replayed, args.width // 2)}")
        if result.reset:
            print()
            print(render_reset_diff(result.reset, width=args.width))
        shown = result.steps if args.limit <= 0 else result.steps[:args.limit]
        for d in shown:
            print()
            print(render_step_diff(d, a, width=args.width))
        if len(shown) < len(result.steps):
            print(f"\n… {len(result.steps) - len(shown)} more differing steps (--limit 0 shows all): "
                  + ", ".join(str(d.step) for d in result.steps[len(shown):][:20])
                  + (" …" if len(result.steps) - len(shown) > 20 else ""))
        print()
        print(result.summary())
    return 0 if result.same else 1
