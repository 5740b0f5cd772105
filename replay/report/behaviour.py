"""Behaviour: steps per episode, thought length against outcome, duplicate and near-duplicate trajectories, and
tokens and cost when the agent's notes recorded them.

- *Thought length* of an episode is the mean number of characters of ``note["thought"]`` over its steps that
  have one. Whether it predicts success is read three ways: its spread among solved and unsolved episodes, its
  point-biserial correlation with success (Pearson's r against 0/1), and the solve rate per quartile.
- *Duplicates* share the exact same action sequence; *near-duplicates* share the same sequence of operations
  (tool names, command words; :func:`trajrec.recorder.classify.default_action_key`) with different arguments.
  Sequences are compared by a 128-bit BLAKE2b digest, not kept.
- *Tokens and cost* are summed over the steps whose note records them (:func:`.episode.usage_of`).

Memory: three numbers per episode (steps, thought length, outcome) and one digest entry per distinct sequence.
"""

from __future__ import annotations

from array import array
from collections import Counter
from typing import Any

from .episode import EpisodeFacts
from .notable import Notable
from .stats import histogram, pearson, quantile, spread, spread_of_counts

__all__ = ["Behaviour"]

_OUTCOME_CODE = {True: 1, False: 0, None: -1}


class Behaviour:
    """Running behaviour figures; see the module docstring."""

    def __init__(self, notable: Notable, *, top: int = 10) -> None:
        self.notable = notable
        self.top = top
        self.task_steps: dict[tuple[str, str], array[int]] = {}
        self.longest: dict[tuple[str, str], list[tuple[int, int, dict[str, Any]]]] = {}  # 3 longest per task
        self.steps = array("l")
        self.thought = array("d")  # mean thought characters per step; -1 when the episode has no thought
        self.solved = array("b")  # 1 solved, 0 not, -1 unjudged
        self.exact: dict[bytes, list[Any]] = {}  # digest -> [count, first ordinals (<= 3)]
        self.ops: dict[bytes, list[Any]] = {}
        self.tokens = Counter()  # type: Counter[str]
        self.cost = 0.0  # the sum of the known costs
        self.cost_episodes = 0  # episodes whose cost is known (a call or note carried one): the rest are unpriced
        self.usage_steps = 0
        self.usage_episodes = 0
        self.calls_without_usage = 0
        self.model_calls = 0
        self.failed_attempts = 0
        self.latency = 0.0
        self.by_model: dict[str, list[float]] = {}  # model -> [episodes, tokens, known cost, priced episodes]
        self.by_outcome_usage: dict[str, list[float]] = {}
        self.outcomes: Counter[str] = Counter()

    def add(self, ep: EpisodeFacts) -> None:
        self.steps.append(ep.steps)
        self.thought.append(ep.thought_chars / ep.thought_steps if ep.thought_steps else -1.0)
        self.solved.append(_OUTCOME_CODE[ep.solved])
        self.outcomes[ep.outcome] += 1
        key = (ep.env, ep.task)
        lengths = self.task_steps.get(key)
        if lengths is None:
            lengths = self.task_steps[key] = array("l")
            self.longest[key] = []
        lengths.append(ep.steps)
        longest = self.longest[key]
        if len(longest) < 3 or ep.steps > longest[-1][0]:
            longest.append((ep.steps, ep.ordinal, {"episode": ep.episode_id, "path": ep.path, "env": ep.env,
                                                   "task": ep.task, "outcome": ep.outcome}))
            longest.sort(key=lambda e: (-e[0], e[1]))
            del longest[3:]
        for table, digest in ((self.exact, ep.actions_digest), (self.ops, ep.ops_digest)):
            if not ep.steps:
                continue
            row = table.get(digest)
            if row is None:
                table[digest] = [1, [ep.ordinal]]
            else:
                row[0] += 1
                if len(row[1]) < 3:
                    row[1].append(ep.ordinal)
        if ep.usage_steps or ep.model_calls:
            self.usage_episodes += 1
            self.usage_steps += ep.usage_steps
            self.tokens["input"] += ep.tokens_in
            self.tokens["output"] += ep.tokens_out
            self.tokens["total"] += ep.tokens_total
            if ep.cost is not None:
                self.cost += ep.cost
                self.cost_episodes += 1
            self.model_calls += ep.model_calls
            self.failed_attempts += ep.failed_attempts
            self.calls_without_usage += ep.calls_without_usage
            self.latency += ep.latency
            agent = ep.provenance.get("agent")
            model = str(agent.get("model") or "") if isinstance(agent, dict) else ""
            if not model:  # the model the calls reported, when the agent did not name one
                called = (ep.summary.get("model") or {}).get("models") if type(ep.summary.get("model")) is dict \
                    else None
                model = max(called, key=called.get) if isinstance(called, dict) and called else "(no model)"
            for table, key in ((self.by_model, model), (self.by_outcome_usage, ep.outcome or "(none)")):
                row = table.setdefault(key, [0, 0, 0.0, 0])
                row[0] += 1
                row[1] += ep.tokens_total
                if ep.cost is not None:
                    row[2] += ep.cost
                    row[3] += 1

    def _dupes(self, table: dict[bytes, list[Any]], paths: list[str]) -> dict[str, Any]:
        groups = [row for row in table.values() if row[0] > 1]
        groups.sort(key=lambda r: (-r[0], r[1][0]))
        return {"groups": len(groups), "episodes": sum(r[0] for r in groups),
                "redundant": sum(r[0] - 1 for r in groups), "distinct": len(table),
                "largest": [{"size": r[0], "examples": [paths[i] for i in r[1]]} for r in groups[: self.top]]}

    def _by_quartile(self, xs: list[float], ys: list[int]) -> list[dict[str, Any]]:
        """Solve rate per quartile bin of ``xs``: bins ``[lo, hi)`` between the quartiles (the last one closed);
        quartiles that coincide (many ties, e.g. most episodes 2 steps long) merge into one bin."""
        if len(xs) < 4:
            return []
        srt = sorted(xs)
        edges: list[float] = []
        for q in (0.0, 0.25, 0.5, 0.75, 1.0):
            e = quantile(srt, q)
            assert e is not None
            if not edges or e > edges[-1]:
                edges.append(e)
        if len(edges) == 1:
            edges.append(edges[0])
        out = []
        last = len(edges) - 2
        for i in range(len(edges) - 1):
            lo, hi = edges[i], edges[i + 1]
            inside = [y for x, y in zip(xs, ys) if lo <= x < hi or (i == last and x == hi)]
            out.append({"lo": lo, "hi": hi, "episodes": len(inside),
                        "solve_rate": sum(inside) / len(inside) if inside else None})
        return out

    def _offer_long(self) -> None:
        # Known only at the end: an episode is long against its task's median, which streaming cannot know sooner.
        for key, longest in self.longest.items():
            med = quantile(sorted(self.task_steps[key]), 0.5) or 0.0
            for steps, ordinal, item in longest:
                if len(self.task_steps[key]) >= 3 and steps >= max(3 * med, med + 5):
                    self.notable.offer("long", steps / max(med, 1.0), ordinal,
                                       {**item, "step": None,
                                        "detail": f"{steps} steps, task median {med:g}"})

    def result(self, paths: list[str]) -> dict[str, Any]:
        self._offer_long()
        steps = list(self.steps)
        by_outcome: dict[str, Counter[int]] = {}
        for s, o in zip(self.steps, self.solved):
            by_outcome.setdefault({1: "solved", 0: "unsolved", -1: "unjudged"}[o], Counter())[s] += 1
        judged = [(t, s, o) for t, s, o in zip(self.thought, self.steps, self.solved) if o >= 0]
        with_thought = [(t, o) for t, _s, o in judged if t >= 0]
        tx = [t for t, _o in with_thought]
        ty = [o for _t, o in with_thought]
        sx = [float(s) for _t, s, _o in judged]
        sy = [o for _t, _s, o in judged]
        thoughts = [t for t in self.thought if t >= 0]
        return {
            "outcomes": dict(self.outcomes.most_common()),
            "steps": {**spread(steps), "histogram": histogram(steps),
                      "by_outcome": {k: spread_of_counts(v) for k, v in sorted(by_outcome.items())},
                      "correlation_with_success": pearson(sx, sy),
                      "solve_rate_by_quartile": self._by_quartile(sx, sy)},
            "thought_length": {
                "episodes_with_thoughts": len(thoughts),
                "all": spread(thoughts),
                "solved": spread([t for t, o in with_thought if o == 1]),
                "unsolved": spread([t for t, o in with_thought if o == 0]),
                "correlation_with_success": pearson(tx, [float(y) for y in ty]),
                "solve_rate_by_quartile": self._by_quartile(tx, ty),
                "histogram": histogram(thoughts, integer=False) if thoughts else [],
            },
            "duplicates": self._dupes(self.exact, paths),
            "near_duplicates": self._dupes(self.ops, paths),
            "usage": {
                "episodes": self.usage_episodes, "steps": self.usage_steps,
                "tokens": {k: self.tokens[k] for k in ("input", "output", "total")},
                # None when no episode was priced; else the sum over the cost_episodes that were.
                "cost": self.cost if self.cost_episodes else None, "cost_episodes": self.cost_episodes,
                "model_calls": self.model_calls, "failed_attempts": self.failed_attempts,
                "calls_without_usage": self.calls_without_usage,
                "latency": self.latency if self.model_calls and self.latency else None,  # None: no time recorded
                "per_episode": {"tokens": self.tokens["total"] / self.usage_episodes,
                                "cost": self.cost / self.cost_episodes if self.cost_episodes else None}
                if self.usage_episodes else None,
                "by_model": [_usage_row("model", k, v) for k, v in sorted(self.by_model.items())],
                "by_outcome": [_usage_row("outcome", k, v) for k, v in sorted(self.by_outcome_usage.items())],
            },
        }


def _usage_row(name: str, key: str, row: list[float]) -> dict[str, Any]:
    """One ``by_model``/``by_outcome`` row: ``cost`` sums the priced episodes (``cost_episodes`` of them), None
    when none was priced."""
    return {name: key, "episodes": int(row[0]), "tokens": int(row[1]), "cost": row[2] if row[3] else None,
            "cost_episodes": int(row[3])}
