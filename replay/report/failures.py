"""Failure taxonomy: failed steps by kind, tool and normalized message (:func:`.messages.normalize_message`),
retries per failure, recovery rate and steps to recover.

Definitions follow the recorder's classification (``docs/FORMAT.md``): a failed step is *retried* by each later
step whose ``retry_of`` names it, and *recovered* by the first later step whose ``recovers`` lists it; steps to
recover is the recovering step's index minus the failed step's.

A retry names the most recent failed step of its operation, so a step retried again and again forms a chain
(0 <- 1 <- 2: step 1 retries 0, step 2 retries 1) in which each failed step has at most one retry. Retries are
therefore counted per *retry chain*: a failed step that is not itself a retry starts a chain, and its retries are
every step reached from it through ``retry_of`` links (the chain's length minus one).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .episode import EpisodeFacts
from .messages import normalize_message
from .notable import Notable
from .stats import spread_of_counts

__all__ = ["Failures"]

_MAX_SHAPES = 5_000  # distinct message shapes kept; the rest count under "(other messages)"


class Failures:
    """Running failure counts; see the module docstring."""

    def __init__(self, notable: Notable) -> None:
        self.notable = notable
        self.failed_steps = 0
        self.steps = 0
        self.episodes = 0
        self.episodes_failing = 0
        self.episodes_recovering = 0
        self.by_kind: dict[str, list[int]] = {}  # kind -> [failures, recovered]
        self.by_tool: dict[str, list[int]] = {}
        self.shapes: dict[str, list[Any]] = {}  # shape -> [count, Counter(kind), Counter(tool), example]
        self.retries_per_chain: Counter[int] = Counter()
        self.to_recover: Counter[int] = Counter()
        self.recovered = 0

    def add(self, ep: EpisodeFacts) -> None:
        self.episodes += 1
        self.steps += ep.steps
        if not ep.failures:
            return
        self.episodes_failing += 1
        self.failed_steps += len(ep.failures)
        recovered_here = 0
        retried_steps = {j for steps in ep.retries.values() for j in steps}
        first_unrecovered = None
        first_exception = None
        for f in ep.failures:
            rec_at = ep.recovered.get(f.step)
            ok = rec_at is not None
            for table, key in ((self.by_kind, f.kind), (self.by_tool, f.tool)):
                row = table.get(key)
                if row is None:
                    row = table[key] = [0, 0]
                row[0] += 1
                row[1] += ok
            shape = normalize_message(f.message)
            row = self.shapes.get(shape)
            if row is None:
                if len(self.shapes) >= _MAX_SHAPES:
                    shape = "(other messages)"
                    row = self.shapes.get(shape)
                if row is None:
                    row = self.shapes[shape] = [0, Counter(), Counter(), {"message": f.message[:300],
                                                                          "episode": ep.episode_id,
                                                                          "path": ep.path, "step": f.step}]
            row[0] += 1
            row[1][f.kind] += 1
            row[2][f.tool] += 1
            if f.step not in retried_steps:  # a chain starts here
                self.retries_per_chain[_chain_retries(ep.retries, f.step)] += 1
            if ok:
                recovered_here += 1
                self.to_recover[rec_at - f.step] += 1
            elif first_unrecovered is None:
                first_unrecovered = f.step
            if f.kind == "exception" and first_exception is None:
                first_exception = f.step
        self.recovered += recovered_here
        if recovered_here:
            self.episodes_recovering += 1
        n = len(ep.failures)
        base = {"episode": ep.episode_id, "path": ep.path, "env": ep.env, "task": ep.task, "outcome": ep.outcome}
        if ep.solved and recovered_here:
            step = min(ep.recovered[f.step] for f in ep.failures if f.step in ep.recovered)
            self.notable.offer("recovered", recovered_here, ep.ordinal,
                               {**base, "step": step, "detail": f"recovered {recovered_here} of {n} failed steps"})
        if first_unrecovered is not None:
            left = n - recovered_here
            # Unrecovered failures in an episode that then failed matter more than in one that passed anyway.
            self.notable.offer("unrecovered", left + (1_000 if ep.solved is False else 0), ep.ordinal,
                               {**base, "step": first_unrecovered, "detail": f"{left} of {n} failed steps never "
                                                                            "recovered"})
        if first_exception is not None:
            self.notable.offer("exception", n, ep.ordinal,
                               {**base, "step": first_exception, "detail": "env.step raised"})

    def result(self, *, top_messages: int = 50) -> dict[str, Any]:
        def rows(table: dict[str, list[int]], name: str) -> list[dict[str, Any]]:
            return [{name: k, "failures": v[0], "recovered": v[1], "recovery_rate": v[1] / v[0] if v[0] else None}
                    for k, v in sorted(table.items(), key=lambda kv: (-kv[1][0], kv[0]))]

        shapes = sorted(self.shapes.items(), key=lambda kv: (-kv[1][0], kv[0]))
        messages = [{"message": shape, "count": row[0], "kinds": dict(row[1].most_common()),
                     "tools": dict(row[2].most_common(5)), "example": row[3]} for shape, row in shapes[:top_messages]]
        return {
            "failed_steps": self.failed_steps,
            "steps": self.steps,
            "failed_step_share": self.failed_steps / self.steps if self.steps else None,
            "episodes_with_failures": self.episodes_failing,
            "episodes_with_recoveries": self.episodes_recovering,
            "by_kind": rows(self.by_kind, "kind"),
            "by_tool": rows(self.by_tool, "tool"),
            "messages": messages,
            "message_shapes": len(self.shapes),
            "retry_chains": sum(self.retries_per_chain.values()),
            "chains_retried": sum(c for k, c in self.retries_per_chain.items() if k > 0),
            "retries_per_chain": {"histogram": {str(k): c for k, c in sorted(self.retries_per_chain.items())},
                                  **spread_of_counts(self.retries_per_chain)},
            "recovered": self.recovered,
            "recovery_rate": self.recovered / self.failed_steps if self.failed_steps else None,
            "steps_to_recover": {"histogram": {str(k): c for k, c in sorted(self.to_recover.items())},
                                 **spread_of_counts(self.to_recover)},
        }


def _chain_retries(retries: dict[int, list[int]], start: int) -> int:
    """How many steps retry ``start``, directly or through retries of its retries (each counted once)."""
    seen = {start}
    todo = [start]
    while todo:
        for j in retries.get(todo.pop(), ()):
            if j not in seen:  # a hand-made file could loop
                seen.add(j)
                todo.append(j)
    return len(seen) - 1
