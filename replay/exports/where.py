"""``--where`` filters: which episodes an export takes.

Grammar: ``FIELD OP VALUE`` with OP one of ``=`` (or ``==``), ``!=``, ``>``, ``>=``, ``<``, ``<=``. Several filters
all have to hold. Text fields compare with ``=``/``!=`` only, and their VALUE may hold shell wildcards
(``env=trajrec/*``); numbers compare with any OP; booleans take ``true``/``false``. A field that is unknown for
an episode (e.g. ``agreement`` with no step labeled twice) fails every comparison but ``!=``.

>>> f = parse_where("failures>0")
>>> f.matches({"failures": 2}), f.matches({"failures": 0})
(True, False)
>>> parse_where("env=trajrec/*").matches({"env": "trajrec/Shell-v0"})
True
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from recorder.errors import TrajrecUsageError

__all__ = ["FIELDS", "OUTCOMES", "Filter", "episode_facts", "parse_where"]

#: The filterable fields: name -> (type, description).
FIELDS: dict[str, tuple[str, str]] = {
    "episode": ("text", "episode id"),
    "env": ("text", "env id (task.env_id), e.g. trajrec/Shell-v0"),
    "task": ("text", "task id"),
    "split": ("text", "task split (train/test)"),
    "agent": ("text", "agent name (provenance.agent.name)"),
    "run": ("text", "run id (provenance.run_id)"),
    "outcome": ("text", "passed, failed, error, terminated, truncated, stopped or incomplete"),
    "steps": ("number", "number of steps"),
    "return": ("number", "sum of rewards"),
    "failures": ("number", "failed steps"),
    "retries": ("number", "retry steps"),
    "recoveries": ("number", "recovering steps"),
    "checks": ("number", "recorded checks"),
    "labels": ("number", "live labels (any target)"),
    "labeled": ("bool", "the episode has at least one live label"),
    "labeled_fraction": ("number", "share of steps with a live label, 0..1"),
    "judge": ("text", "a judge of the episode's live labels (true if any matches)"),
    "complete": ("bool", "the file was closed properly (has its index)"),
    "agreement": ("number", "share of steps labeled by 2+ judges where all agree, 0..1 (unknown if none)"),
}

OUTCOMES = ("passed", "failed", "error", "terminated", "truncated", "stopped", "incomplete")

_OPS = ("==", "!=", ">=", "<=", "=", ">", "<")
_EXPR = re.compile(r"^\s*([A-Za-z_][A-Za-z_0-9.]*)\s*(==|!=|>=|<=|=|>|<)\s*(.*?)\s*$")
_TRUE = {"true", "yes", "1", "y", "t"}
_FALSE = {"false", "no", "0", "n", "f"}
_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
}


@dataclass(frozen=True)
class Filter:
    """One parsed ``FIELD OP VALUE``."""

    text: str
    field: str
    op: str
    value: Any

    def matches(self, facts: Mapping[str, Any]) -> bool:
        have = facts.get(self.field)
        kind = FIELDS[self.field][0]
        if kind == "text":
            values = have if isinstance(have, (set, frozenset, list, tuple)) else [have]
            hit = any(v is not None and fnmatch.fnmatchcase(str(v), self.value) for v in values)
            return hit if self.op == "=" else not hit
        if have is None or (isinstance(have, float) and math.isnan(have)):
            return self.op == "!="
        return _CMP[self.op](have, self.value)


def _fields_text() -> str:
    return ", ".join(FIELDS)


def parse_where(text: str) -> Filter:
    """Parse one ``--where`` expression; a clear :class:`TrajrecUsageError` names the problem and the fix."""
    m = _EXPR.match(text or "")
    if not m:
        raise TrajrecUsageError(f"--where {text!r}: expected FIELD OP VALUE (e.g. outcome=failed, failures>0, "
                                f"env=trajrec/*); OP is one of = != > >= < <=; fields: {_fields_text()}")
    name, op, raw = m.group(1), m.group(2), m.group(3)
    op = "=" if op == "==" else op
    if name not in FIELDS:
        near = difflib.get_close_matches(name, list(FIELDS), n=1, cutoff=0.6)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise TrajrecUsageError(f"--where {text!r}: unknown field {name!r}{hint}; fields: {_fields_text()}")
    kind = FIELDS[name][0]
    if raw == "":
        raise TrajrecUsageError(f"--where {text!r}: no value after {op!r}; e.g. {name}{op}{_example(name)}")
    if kind == "text":
        if op not in ("=", "!="):
            raise TrajrecUsageError(f"--where {text!r}: {name} is text; compare it with = or != (wildcards * ? "
                                    "allowed)")
        value = raw.strip("'\"")
        if name == "outcome" and value not in OUTCOMES and not any(c in value for c in "*?["):
            near = difflib.get_close_matches(value, OUTCOMES, n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise TrajrecUsageError(f"--where {text!r}: outcome is never {value!r}{hint}; outcomes: "
                                    f"{', '.join(OUTCOMES)}")
        return Filter(text, name, op, value)
    if kind == "bool":
        if op not in ("=", "!="):
            raise TrajrecUsageError(f"--where {text!r}: {name} is true or false; compare it with = or !=")
        low = raw.lower()
        if low not in _TRUE | _FALSE:
            raise TrajrecUsageError(f"--where {text!r}: {name} is true or false, got {raw!r}")
        return Filter(text, name, op, low in _TRUE)
    try:
        value = float(raw)
    except ValueError:
        raise TrajrecUsageError(f"--where {text!r}: {name} is a number; {raw!r} is not a number "
                                f"(e.g. {name}{op}{_example(name)})") from None
    if math.isnan(value):
        raise TrajrecUsageError(f"--where {text!r}: compare {name} with a number, not NaN")
    return Filter(text, name, op, value)


def _example(name: str) -> str:
    return {"text": "failed" if name == "outcome" else "trajrec/Shell-v0" if name == "env" else "x",
            "bool": "true", "number": "0.8" if name in ("agreement", "labeled_fraction") else "1"}[FIELDS[name][0]]


def parse_all(texts: Iterable[str]) -> list[Filter]:
    return [parse_where(t) for t in texts]


def episode_facts(ref: Any, labels: list[Any], agreement: float | None) -> dict[str, Any]:
    """The filterable facts of an episode (an :class:`~replay.exports.source.EpisodeRef`) and its live labels."""
    task, prov, s = ref.task, ref.provenance, ref.summary
    agent = prov.get("agent")
    n = ref.n_steps
    labeled_steps = {lab.target for lab in labels if isinstance(lab.target, int) and lab.target < n}
    return {
        "episode": ref.episode_id,
        "env": task.get("env_id"),
        "task": task.get("id"),
        "split": task.get("split"),
        "agent": agent.get("name") if isinstance(agent, dict) else agent,
        "run": prov.get("run_id"),
        "outcome": s.get("outcome"),
        "steps": n,
        "return": s.get("return"),
        "failures": s.get("failures", 0),
        "retries": s.get("retries", 0),
        "recoveries": s.get("recoveries", 0),
        "checks": (s.get("checks") or {}).get("total", 0),
        "labels": len(labels),
        "labeled": bool(labels),
        "labeled_fraction": len(labeled_steps) / n if n else 0.0,
        "judge": {lab.judge for lab in labels},
        "complete": bool(ref.index.get("complete", True)),
        "agreement": agreement,
    }
