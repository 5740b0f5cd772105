"""``trajrec envs``: the built-in environments, their check kinds and task counts."""

from __future__ import annotations

import argparse

NAME = "envs"
ORDER = 5
HELP = "List the built-in tool environments with their check kinds, task counts and tools."
EXAMPLES = """  trajrec envs
  trajrec envs --json"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="one JSON object per env")


def run(args: argparse.Namespace) -> int:
    import gymnasium as gym
    from trajrec import envs

    from ._common import dumps

    rows = []
    for env_id in envs.ENV_IDS:
        spec = gym.spec(env_id)
        cls = spec.make().unwrapped.__class__ if not isinstance(spec.entry_point, str) else _load(spec.entry_point)
        verification = getattr(cls, "verification", None)
        kinds = [verification] if isinstance(verification, str) else list(verification or [])
        tools = [t.name for t in getattr(cls, "tool_specs", ())]
        rows.append({"id": env_id, "checks": kinds, "tasks": len(getattr(cls, "tasks", ())), "tools": tools,
                     "entry_point": spec.entry_point, "doc": _plain((cls.__doc__ or "").strip().splitlines()[0])})
    if args.json:
        for row in rows:
            print(dumps(row))
        return 0
    print(f"{'id':<28} {'checks':<12} {'tasks':>5}  tools")
    for row in rows:
        check_text, tool_text = ",".join(map(str, row["checks"])), ", ".join(map(str, row["tools"]))
        print(f"{row['id']:<28} {check_text:<12} {row['tasks']:>5}  {tool_text}")
        print(f"{'':<28} {row['doc']}")
    return 0


def _load(entry_point: str) -> type:
    import importlib

    module, _, attr = entry_point.partition(":")
    return getattr(importlib.import_module(module), attr)


def _plain(text: str) -> str:
    """A docstring line as plain text: reStructuredText literals (````calc````) and roles (``:class:`X```) bare."""
    import re

    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text)
    return text.replace("``", "")
