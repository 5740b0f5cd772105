"""Checks and labels: verdicts by check kind and judge id, label coverage per step, Cohen's kappa between every
pair of judges (as a matrix), and the steps where judges disagree most.

Verdicts count both sources of checking signals: the checks recorded in the episode files and the live labels of
the label store. Agreement compares judges on the steps both labeled, with the categories and the estimator of
:mod:`trajrec.replay.agreement`; it reads labels only, unless recorded step checks are asked for too
(``with_recorded``), as ``trajrec agreement --with-recorded`` does. Pair counts are kept as running confusion
tables, so no label is held beyond its episode.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from typing import Any, Hashable

from trajrec.recorder.model import verdict

from ..agreement import SCORE, category_name, cohen_kappa, latest_categories
from ..labels import Label
from .episode import EpisodeFacts
from .notable import Notable, commands

__all__ = ["Judging"]


def _verdict_name(value: Any) -> str:
    v = verdict(value)
    return "pass" if v is True else "fail" if v is False else "other"


class Judging:
    """Running verdict, coverage and agreement counts; see the module docstring."""

    def __init__(self, notable: Notable, *, with_recorded: bool = False, top: int = 10) -> None:
        self.notable = notable
        self.with_recorded = with_recorded
        self.top = top
        # Flat counters, one increment per check: (source, kind, verdict) and (source, judge, kind, verdict).
        self.by_kind: Counter[tuple[str, str, str]] = Counter()
        self.by_judge: Counter[tuple[str, str, str, str]] = Counter()
        self.steps = 0
        self.labeled_steps = 0
        self.labeled_episodes = 0
        self.judges_per_step: Counter[int] = Counter()
        self.steps_by_judge: Counter[str] = Counter()
        self.confusion: dict[tuple[str, str], Counter[tuple[Hashable, Hashable]]] = {}
        self.judges: set[str] = set()
        self._worst: list[tuple[float, int, int, int, dict[str, Any]]] = []

    def add(self, ep: EpisodeFacts) -> None:
        self.steps += ep.steps
        for c in ep.checks:
            kind, judge = str(c.get("kind")), str(c.get("judge"))
            v = _verdict_name(c.get("value"))
            self.by_kind["recorded", kind, v] += 1
            self.by_judge["recorded", judge, kind, v] += 1
        labels: list[Label] = ep.labels
        for lab in labels:
            v = _verdict_name(lab.value)
            self.by_kind["label", lab.kind, v] += 1
            self.by_judge["label", lab.judge, lab.kind, v] += 1
        if labels:
            self.labeled_episodes += 1
        if self.with_recorded:
            labels = labels + [Label(ep.episode_id, c["target"], str(c.get("kind")), str(c.get("judge")),
                                     c.get("value")) for c in ep.checks if type(c.get("target")) is int]
        if not labels:
            return
        per_step: dict[int, dict[str, Hashable]] = {}
        for judge, items in latest_categories(labels).items():
            self.judges.add(judge)
            for (_eid, step), cat in items.items():
                if 0 <= step < ep.steps + ep.damaged_steps or not ep.steps:  # step numbers run over the lost ones too
                    per_step.setdefault(step, {})[judge] = cat
        self.labeled_steps += len(per_step)
        disagreeing = 0
        first = None
        for step, cats in sorted(per_step.items()):
            self.judges_per_step[len(cats)] += 1
            for judge in cats:
                self.steps_by_judge[judge] += 1
            comparable = {j: c for j, c in cats.items() if c != SCORE}
            if len(comparable) < 2:
                continue
            for a, b in itertools.combinations(sorted(comparable), 2):
                conf = self.confusion.get((a, b))
                if conf is None:
                    conf = self.confusion[(a, b)] = Counter()
                conf[(comparable[a], comparable[b])] += 1
            counts = Counter(comparable.values())
            if len(counts) > 1:
                disagreeing += 1
                first = step if first is None else first
                score = 1.0 - counts.most_common(1)[0][1] / len(comparable)
                item = {"episode": ep.episode_id, "path": ep.path, "step": step, "judges": len(comparable),
                        "disagreement": round(score, 4),
                        "values": {j: category_name(c) for j, c in sorted(comparable.items())}}
                entry = (score, len(comparable), -ep.ordinal, -step, item)
                if len(self._worst) < self.top:
                    heapq.heappush(self._worst, entry)
                elif entry[:4] > self._worst[0][:4]:
                    heapq.heapreplace(self._worst, entry)
        if disagreeing:
            self.notable.offer("disagreement", disagreeing, ep.ordinal,
                               {"episode": ep.episode_id, "path": ep.path, "env": ep.env, "task": ep.task,
                                "outcome": ep.outcome, "step": first,
                                "detail": f"judges disagree on {disagreeing} step{'s' * (disagreeing != 1)}"})

    def result(self) -> dict[str, Any]:
        def verdict_rows(table: Counter[Any], names: tuple[str, ...]) -> list[dict[str, Any]]:
            grouped: dict[tuple[str, ...], Counter[str]] = {}
            for (*key, v), n in table.items():
                grouped.setdefault(tuple(key), Counter())[v] += n
            out = []
            for key, counts in sorted(grouped.items()):
                row: dict[str, Any] = dict(zip(names, key))
                row.update(total=sum(counts.values()), passed=counts["pass"], failed=counts["fail"],
                           other=counts["other"])
                out.append(row)
            return out

        judges = sorted(self.judges)
        matrix: list[list[float | None]] = [[None] * len(judges) for _ in judges]
        overlap: list[list[int]] = [[0] * len(judges) for _ in judges]
        pairs = []
        at = {j: i for i, j in enumerate(judges)}
        for i, j in enumerate(judges):
            overlap[i][i] = self.steps_by_judge[j]
            matrix[i][i] = 1.0 if self.steps_by_judge[j] else None
        for a, b in itertools.combinations(judges, 2):
            conf = self.confusion.get((a, b), Counter())
            k = cohen_kappa(itertools.chain.from_iterable(itertools.repeat(pair, n) for pair, n in conf.items()))
            i, j = at[a], at[b]
            matrix[i][j] = matrix[j][i] = k.kappa
            overlap[i][j] = overlap[j][i] = k.n
            pairs.append({"a": a, "b": b, "n": k.n, "observed": k.observed, "kappa": k.kappa, "note": k.note})
        worst = [e[4] for e in sorted(self._worst, key=lambda e: e[:4], reverse=True)]
        for item in worst:
            item.update(commands(item["path"], item["step"]))
        return {
            "verdicts_by_kind": verdict_rows(self.by_kind, ("source", "kind")),
            "verdicts_by_judge": verdict_rows(self.by_judge, ("source", "judge", "kind")),
            "label_coverage": {
                "steps": self.steps, "labeled_steps": self.labeled_steps,
                "fraction": self.labeled_steps / self.steps if self.steps else None,
                "labeled_episodes": self.labeled_episodes,
                "judges_per_step": {str(k): v for k, v in sorted(self.judges_per_step.items())},
                "by_judge": [{"judge": j, "steps": n, "fraction": n / self.steps if self.steps else None}
                             for j, n in sorted(self.steps_by_judge.items())],
            },
            "agreement": {"judges": judges, "kappa": matrix, "overlap": overlap, "pairs": pairs,
                          "with_recorded": self.with_recorded},
            "disagreements": worst,
        }

