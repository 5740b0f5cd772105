"""How much annotators and judges agree: label distributions and pairwise Cohen's kappa on steps both labeled.

Values are compared as categories: a rating -1/0/+1 as itself, pass/fail (bool or a verdict word such as
``"pass"``) as +1/-1, ``good``/``bad``/``neutral`` as +1/-1/0, other text as its own category. Scores (floats
other than -1.0, 0.0, 1.0) are continuous and left out of kappa (counted apart as ``scores``).

Cohen's kappa for two raters over the ``n`` items both rated::

    p_o = (items where they agree) / n
    p_e = sum over categories k of (a_k / n) * (b_k / n)      a_k, b_k: how often each rater chose k
    kappa = (p_o - p_e) / (1 - p_e)

It is undefined when ``n == 0`` (no overlap) or ``p_e == 1`` (both raters used one and the same category
for every item: agreement is total but says nothing beyond chance); the report says which.

>>> k = cohen_kappa([(1, 1), (1, 1), (-1, -1), (1, -1)])
>>> k.n, k.observed, k.expected, round(k.kappa, 3)
(4, 0.75, 0.5, 0.5)
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Hashable, Iterable

from .labels import Label, rating

__all__ = ["AgreementReport", "JudgeStats", "Kappa", "PairAgreement", "agreement", "category", "category_name",
           "cohen_kappa", "episode_agreement", "latest_categories"]

SCORE = "score"  # the category of continuous scores, left out of kappa


def category(value: Any) -> Hashable | None:
    """The category a label value counts as for agreement: +1/0/-1, a category name, or :data:`SCORE`.

    >>> [category(v) for v in (1, True, "fail", "neutral", 0.0, 0.7, "typo", None)]
    [1, 1, -1, 0, 0, 'score', 'typo', None]
    """
    if value is None:
        return None
    if isinstance(value, float) and value not in (-1.0, 0.0, 1.0):
        return SCORE
    r = rating(value)
    if r is not None:
        return r
    if isinstance(value, str):
        return value.strip()
    return None


def category_name(cat: Hashable) -> str:
    """A category as text: ``+1``, ``0``, ``-1`` or the name."""
    if isinstance(cat, int) and not isinstance(cat, bool):
        return f"{cat:+d}" if cat else "0"
    return str(cat)


@dataclass
class Kappa:
    """Cohen's kappa with what it was computed from; ``kappa`` is None when undefined (``note`` says why)."""

    n: int
    observed: float | None
    expected: float | None
    kappa: float | None
    note: str | None = None
    confusion: dict[tuple[Hashable, Hashable], int] = field(default_factory=dict)


def cohen_kappa(pairs: Iterable[tuple[Hashable, Hashable]]) -> Kappa:
    """Cohen's kappa of two raters, from ``(category_a, category_b)`` per item both rated."""
    confusion: Counter[tuple[Hashable, Hashable]] = Counter(pairs)
    n = sum(confusion.values())
    if n == 0:
        return Kappa(0, None, None, None, "undefined: no step labeled by both")
    agree = sum(c for (a, b), c in confusion.items() if a == b)
    a_counts: Counter[Hashable] = Counter()
    b_counts: Counter[Hashable] = Counter()
    for (a, b), c in confusion.items():
        a_counts[a] += c
        b_counts[b] += c
    p_o = agree / n
    p_e = sum((a_counts[k] / n) * (b_counts[k] / n) for k in a_counts.keys() | b_counts.keys())
    if abs(1.0 - p_e) < 1e-12:
        only = category_name(next(iter(a_counts)))
        return Kappa(n, p_o, p_e, None, f"undefined: both used only one category ({only}) on these steps",
                     dict(confusion))
    return Kappa(n, p_o, p_e, (p_o - p_e) / (1 - p_e), None, dict(confusion))


@dataclass
class JudgeStats:
    """One judge's labels: how many, on how many episodes, and the distribution of categories."""

    judge: str
    kind: str
    episodes: int
    steps: int
    episode_labels: int
    distribution: dict[str, int]


@dataclass
class PairAgreement:
    """Agreement of two judges on the steps both labeled."""

    a: str
    b: str
    kappa: Kappa

    def to_dict(self) -> dict[str, Any]:
        k = self.kappa
        return {"a": self.a, "b": self.b, "n": k.n, "observed": k.observed, "expected": k.expected,
                "kappa": k.kappa, "note": k.note,
                "confusion": [[category_name(x), category_name(y), c] for (x, y), c in sorted(
                    k.confusion.items(), key=lambda kv: (category_name(kv[0][0]), category_name(kv[0][1])))]}


@dataclass
class AgreementReport:
    judges: list[JudgeStats]
    pairs: list[PairAgreement]
    items: int

    def to_dict(self) -> dict[str, Any]:
        return {"items": self.items,
                "judges": [{"judge": j.judge, "kind": j.kind, "episodes": j.episodes, "steps": j.steps,
                            "episode_labels": j.episode_labels, "distribution": j.distribution} for j in self.judges],
                "pairs": [p.to_dict() for p in self.pairs]}


def latest_categories(labels: Iterable[Label]) -> dict[str, dict[tuple[str, int], Hashable]]:
    """judge -> (episode_id, step) -> category of that judge's latest live label on the step (step labels only).

    >>> from trajrec.replay.labels import Label
    >>> latest_categories([Label("e", 2, "judge", "human:a", "good", time=1), Label("e", 2, "judge", "human:a", -1, time=2)])
    {'human:a': {('e', 2): -1}}
    """
    latest: dict[tuple[str, str, int], Label] = {}
    for lab in labels:
        if lab.deleted or not isinstance(lab.target, int):
            continue
        key = (lab.judge, lab.episode_id, lab.target)
        old = latest.get(key)
        if old is None or (lab.time or 0.0, lab.id or "") > (old.time or 0.0, old.id or ""):
            latest[key] = lab
    out: dict[str, dict[tuple[str, int], Hashable]] = {}
    for (judge, eid, step), lab in latest.items():
        cat = category(lab.value)
        if cat is not None:
            out.setdefault(judge, {})[(eid, step)] = cat
    return out


def agreement(labels: Iterable[Label]) -> AgreementReport:
    """Distribution per judge and pairwise agreement on steps both labeled, over live labels (or checks as
    labels) of any number of episodes."""
    labels = [lab for lab in labels if not lab.deleted]
    stats: list[JudgeStats] = []
    by_judge: dict[str, list[Label]] = {}
    for lab in labels:
        by_judge.setdefault(lab.judge, []).append(lab)
    for judge in sorted(by_judge):
        labs = by_judge[judge]
        dist: Counter[str] = Counter()
        for lab in labs:
            cat = category(lab.value)
            dist["?" if cat is None else category_name(cat)] += 1
        kinds = Counter(lab.kind for lab in labs)
        stats.append(JudgeStats(judge, kinds.most_common(1)[0][0], len({lab.episode_id for lab in labs}),
                                sum(1 for lab in labs if isinstance(lab.target, int)),
                                sum(1 for lab in labs if lab.target == "episode"), dict(sorted(dist.items()))))
    items = latest_categories(labels)
    pairs = []
    for a, b in itertools.combinations(sorted(by_judge), 2):
        ia, ib = items.get(a, {}), items.get(b, {})
        both = [(ia[k], ib[k]) for k in ia.keys() & ib.keys() if ia[k] != SCORE and ib[k] != SCORE]
        pairs.append(PairAgreement(a, b, cohen_kappa(both)))
    n_items = len({k for per in items.values() for k in per})
    return AgreementReport(stats, pairs, n_items)


def episode_agreement(labels: Iterable[Label]) -> float | None:
    """Share of an episode's steps labeled by two or more judges on which all of them agree (same category);
    None when no step has two judges' labels."""
    items = latest_categories(labels)
    cats: dict[tuple[str, int], list[Hashable]] = {}
    for per in items.values():
        for key, cat in per.items():
            if cat != SCORE:
                cats.setdefault(key, []).append(cat)
    multi = [c for c in cats.values() if len(c) >= 2]
    if not multi:
        return None
    return sum(1 for c in multi if len(set(c)) == 1) / len(multi)
