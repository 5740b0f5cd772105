"""The task banks of the built-in envs, for coverage reports: which task ids an env can pose, and their splits.

Each built-in env declares its bank with :meth:`trajrec.envs._base.ToolEnv.task_bank`; :func:`task_bank` finds
the env class through the ids :mod:`trajrec.envs` registers, never through a module named in an episode file.
"""

from __future__ import annotations

import importlib

from trajrec.envs import ENTRY_POINTS

__all__ = ["task_bank"]


def task_bank(env_id: str) -> dict[str, str] | None:
    """The task bank of a built-in env as ``{task id: split}`` in seed order, or None for any other id.

    >>> bank = task_bank("trajrec/MathCalc-v0")
    >>> len(bank), sorted(set(bank.values())), task_bank("CartPole-v1")
    (24, ['test', 'train'], None)
    """
    entry = ENTRY_POINTS.get(env_id)
    if entry is None:
        return None
    module, _, attr = entry.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    return dict(cls.task_bank())
