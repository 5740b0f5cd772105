"""Judges for answers that no exact rule can check, and how a judge is named in a check.

A judge is any callable ``judge(task, answer, transcript) -> {"value", "score", "rationale"}``:

- ``task``: the public task dict plus ``"rubric"`` (see :meth:`trajrec.envs.support_kb.Ticket.rubric`) and
  ``"reference"`` (``[{"id", "title", "body"}]`` of the articles that answer it);
- ``answer``: the agent's final answer text;
- ``transcript``: the steps before the answer, ``[{"step", "tool", "args", "observation", "error"}]``.

Its identity in checks is ``judge.judge_id`` when set, else ``"model:<qualified name>"``.
:class:`RubricJudge` is the transparent default.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Judge = Callable[[dict[str, Any], str, list[dict[str, Any]]], Mapping[str, Any]]

_DOC_ID = re.compile(r"\bKB-\d{3}\b", re.IGNORECASE)


def judge_identity(judge: Callable[..., Any]) -> str:
    """Return the id a judge's checks carry.

    >>> def strict(task, answer, transcript):
    ...     return {"value": False, "score": 0.0, "rationale": "never satisfied"}
    >>> judge_identity(strict), judge_identity(RubricJudge())
    ('model:strict', 'rubric-heuristic@1')
    """
    explicit = getattr(judge, "judge_id", None)
    if explicit:
        return str(explicit)
    name = getattr(judge, "__qualname__", None) or type(judge).__qualname__
    return f"model:{name}"


def validate_verdict(judge: Callable[..., Any], verdict: Any) -> dict[str, Any]:
    """Check a judge's return value and normalize it to ``{"value", "score", "rationale"}``.

    Raises:
        TypeError: The judge returned something else (the message names the judge).
    """
    who = judge_identity(judge)
    if not isinstance(verdict, Mapping) or "value" not in verdict:
        raise TypeError(
            f"judge {who} returned {type(verdict).__name__}; expected a dict with keys "
            "'value' (True/False or a score), 'score' (float or None) and 'rationale' (str)"
        )
    score = verdict.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
        raise TypeError(f"judge {who} returned score={score!r}; expected a float in [0, 1] or None")
    rationale = verdict.get("rationale", "")
    if not isinstance(rationale, str):
        raise TypeError(f"judge {who} returned rationale of type {type(rationale).__name__}; expected str")
    return {"value": verdict["value"], "score": None if score is None else float(score), "rationale": rationale}


class RubricJudge:
    """A transparent heuristic: key facts, a citation of a relevant article, length, forbidden phrases.

    The score is ``0.6 * facts found / facts + 0.25 * (cites a relevant article) + 0.15 * (length within
    bounds)``, minus 0.5 per forbidden phrase, floored at 0. The answer passes when the score reaches
    ``threshold`` and no forbidden phrase appears. Matching is case-insensitive substring matching
    over whitespace-normalized text, so the rationale can say exactly what was found.

    Args:
        threshold: Lowest passing score.

    >>> judge = RubricJudge()
    >>> task = {"rubric": {"docs": ["KB-1"], "facts": [{"label": "30 days", "any_of": ["30 days"]}],
    ...         "forbidden": [], "min_chars": 10, "max_chars": 200}}
    >>> judge(task, "Refunds are possible within 30 days (see KB-001).", [])["score"]
    0.75
    """

    judge_id = "rubric-heuristic@1"

    def __init__(self, threshold: float = 0.8) -> None:
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], found {threshold!r}")
        self.threshold = threshold

    def __call__(self, task: Mapping[str, Any], answer: str, transcript: list[dict[str, Any]]) -> dict[str, Any]:
        """Score ``answer`` against ``task["rubric"]``."""
        rubric = task["rubric"]
        text = " ".join(answer.lower().split())
        found: list[str] = []
        missing: list[str] = []
        for fact in rubric["facts"]:
            hit = next((alt for alt in fact["any_of"] if " ".join(alt.lower().split()) in text), None)
            (found if hit else missing).append(fact["label"])
        cited = sorted({m.upper() for m in _DOC_ID.findall(answer)})
        relevant = [c for c in cited if c in rubric["docs"]]
        bad = [f["label"] for f in rubric["forbidden"] if any(alt.lower() in text for alt in f["any_of"])]
        length_ok = rubric["min_chars"] <= len(answer) <= rubric["max_chars"]

        facts = rubric["facts"]
        score = 0.6 * (len(found) / len(facts) if facts else 1.0) + 0.25 * bool(relevant) + 0.15 * length_ok
        score = round(max(0.0, score - 0.5 * len(bad)), 3)
        passed = score >= self.threshold and not bad

        parts = [f"facts {len(found)}/{len(facts)}"]
        if found:
            parts.append("found: " + ", ".join(found))
        if missing:
            parts.append("missing: " + ", ".join(missing))
        if relevant:
            parts.append(f"cites {', '.join(relevant)}")
        elif cited:
            parts.append(f"cites {', '.join(cited)} but not a relevant article ({', '.join(rubric['docs'])})")
        else:
            parts.append(f"no article cited (expected {' or '.join(rubric['docs'])})")
        bounds = f"{rubric['min_chars']}-{rubric['max_chars']}"
        parts.append(f"length {len(answer)} chars {'within' if length_ok else 'outside'} {bounds}")
        if bad:
            parts.append("forbidden: " + ", ".join(bad))
        verdict = "pass" if passed else "fail"
        rationale = f"{'; '.join(parts)}; score {score:.2f} vs threshold {self.threshold:.2f}: {verdict}"
        return {"value": passed, "score": score, "rationale": rationale}
