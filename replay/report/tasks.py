"""Coverage and difficulty: episodes per env, task and split; tasks of an env's bank never attempted; per task
solve rate and pass@k (:func:`.stats.pass_at_k_curve`), with tasks always or never solved flagged.

A task's attempts are its episodes; an attempt counts as solved when its terminal check passed (outcome
``passed``). Tasks none of whose episodes carries a verdict are *unverified*: they get no solve rate.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Mapping

from .episode import EpisodeFacts
from .stats import pass_at_k_curve

__all__ = ["TaskBank", "Tasks"]

#: ``task_bank(env_id) -> {task id: split}`` for envs whose bank is known, None for the others.
TaskBank = Callable[[str], "Mapping[str, str] | None"]


class Tasks:
    """Running counts per (env, task); see the module docstring."""

    def __init__(self, task_bank: TaskBank | None = None) -> None:
        self.task_bank = task_bank
        self.by_env: Counter[str] = Counter()
        self.by_split: Counter[str] = Counter()
        self.by_env_split: Counter[tuple[str, str]] = Counter()
        # (env, task) -> [attempts, solved, judged, split]
        self.tasks: dict[tuple[str, str], list[Any]] = {}

    def add(self, ep: EpisodeFacts) -> None:
        self.by_env[ep.env] += 1
        self.by_split[ep.split] += 1
        self.by_env_split[(ep.env, ep.split)] += 1
        row = self.tasks.get((ep.env, ep.task))
        if row is None:
            row = self.tasks[(ep.env, ep.task)] = [0, 0, 0, ep.split]
        row[0] += 1
        solved = ep.solved
        if solved is not None:
            row[2] += 1
            row[1] += solved

    def coverage(self) -> dict[str, Any]:
        envs = []
        never: list[dict[str, str]] = []
        banks: dict[str, int] = {}
        for env in sorted(self.by_env):
            seen = {task for (e, task) in self.tasks if e == env}
            bank = self.task_bank(env) if self.task_bank is not None and env else None
            row: dict[str, Any] = {"env": env, "episodes": self.by_env[env], "tasks": len(seen),
                                   "splits": {s: n for (e, s), n in sorted(self.by_env_split.items()) if e == env},
                                   "bank": None, "never_attempted": None}
            if bank is not None:
                missing = [t for t in bank if t not in seen]
                banks[env] = len(bank)
                row["bank"] = len(bank)
                row["never_attempted"] = len(missing)
                never.extend({"env": env, "task": t, "split": bank[t]} for t in missing)
            envs.append(row)
        tasks = [{"env": env, "task": task, "split": row[3], "episodes": row[0]}
                 for (env, task), row in sorted(self.tasks.items())]
        return {"by_env": envs, "by_split": dict(sorted(self.by_split.items())), "by_task": tasks,
                "never_attempted": never, "banks": banks}

    def difficulty(self) -> dict[str, Any]:
        rows = []
        always = never = unverified = 0
        curves: list[list[float]] = []
        unsolved: list[bool] = []  # per curve: the task was never solved
        for (env, task), (n, c, judged, split) in sorted(self.tasks.items()):
            if judged == 0:
                unverified += 1
                rows.append({"env": env, "task": task, "split": split, "attempts": n, "judged": 0, "solved": 0,
                             "solve_rate": None, "pass_at_k": [], "flag": "unverified"})
                continue
            # pass@k over the judged attempts: an episode nothing judged is no evidence either way.
            curve = pass_at_k_curve(judged, c)
            curves.append(curve)
            unsolved.append(c == 0)
            flag = "always-solved" if c == judged else "never-solved" if c == 0 else None
            always += flag == "always-solved"
            never += flag == "never-solved"
            rows.append({"env": env, "task": task, "split": split, "attempts": n, "judged": judged, "solved": c,
                         "solve_rate": c / judged, "pass_at_k": [round(p, 6) for p in curve], "flag": flag})
        longest = max((len(c) for c in curves), default=0)
        mean_curve = []
        for k in range(longest):
            # pass@k needs n >= k: each k averages only the tasks with at least k judged attempts, so the task
            # set shrinks as k grows; "tasks" and "unsolved" say which set each mean is over.
            vals = [c[k] for c in curves if len(c) > k]
            mean_curve.append({"k": k + 1, "mean": round(sum(vals) / len(vals), 6), "tasks": len(vals),
                               "unsolved": sum(u for c, u in zip(curves, unsolved) if len(c) > k)})
        judged_tasks = len(curves)
        return {"tasks": rows, "always_solved": always, "never_solved": never, "unverified": unverified,
                "judged_tasks": judged_tasks,
                "useful_tasks": judged_tasks - always - never,
                "pass_at_k_mean": mean_curve}
