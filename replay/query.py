"""The one filter grammar for episodes: the viewer's filter box, ``--where`` of ``ls``/``export``/``label``, and
:meth:`trajrec.Run.where` all parse with :func:`parse_query`.

A query is whitespace-separated terms, all of which must hold:

=====================  ===========================================================================================
term                   matches an episode when
=====================  ===========================================================================================
``word``               the word is in its episode id, file name, env id, task id or task text (any case)
``"two words"``        the phrase is there (quotes also make a flag word plain text: ``"failed"``)
``passed``/``failed``  its outcome is passed / failed (the terminal check's verdict)
``retried``            it has at least one retry step (``recovered``: a recovery; ``faulty``: a failed step)
``incomplete``         it did not run to its end or lost steps (``ended=false``): stopped (Ctrl-C, SIGTERM), raised
                       (outcome ``error``), never closed (no index), steps lost to damage or env steps a failed
                       write kept out of the file: the episodes ``trajrec record --resume`` records again (not
                       those the env's exception ended, unless ``--retry-errors``), and those that lost steps
``labeled``            it has a live label (``unlabeled``: none)
``FIELD:VALUE``        text fields: VALUE is in the field (``env:shell`` matches ``trajrec/Shell-v0``);
                       ``outcome:`` matches a prefix; numbers and booleans: same as ``FIELD=VALUE``. An
                       unknown FIELD is an error, unless it is one letter or the term holds ``/`` or ``.``
                       (``http://x``, ``run.py:12``): then the term is free text
``FIELD OP VALUE``     OP is ``=`` ``!=`` ``>`` ``>=`` ``<`` ``<=``; text compares whole values with shell wildcards
                       (``env=trajrec/*``), numbers with any OP (``failures>0``, ``return >= 1``), booleans take
                       ``true``/``false``
``-TERM``              negates any term (``-failed``, ``-env:math``, ``!outcome=passed``)
``AND``                optional between terms (they all hold anyway); ``OR`` is an error: there is none
=====================  ===========================================================================================

Several ``FIELD:VALUE`` terms of one field (``env:shell env:math``) match either. A field that is unknown for an
episode (``agreement`` with no step labeled twice) fails every comparison but ``!=``.

Matching reads a *facts* mapping (:data:`FIELDS` keys plus ``text``, the searchable text); :func:`index_facts`
builds it from an episode's index. Label fields (``labels``, ``labeled``, ``labeled_fraction``, ``judge``,
``agreement``) need the label store: :attr:`Query.needs_labels` says whether a query reads them.

>>> q = parse_query("env:shell failures>0 -outcome:passed")
>>> q.matches({"env": "trajrec/Shell-v0", "failures": 2, "outcome": "failed", "text": ""})
True
>>> parse_query("failures > 0").matches({"failures": 0})
False
>>> parse_query("env=trajrec/*").matches({"env": "trajrec/Shell-v0"})
True
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from trajrec.recorder.errors import TrajrecUsageError
from trajrec.recorder.model import gaps, ran_to_end

__all__ = ["FIELDS", "FLAGS", "LABEL_FIELDS", "OUTCOMES", "QUERY_HELP", "Query", "QueryError", "Term",
           "index_facts", "parse_query"]

#: The filterable fields: name -> (type, description).
FIELDS: dict[str, tuple[str, str]] = {
    "episode": ("text", "episode id"),
    "env": ("text", "env id (task.env_id), e.g. trajrec/Shell-v0"),
    "task": ("text", "task id"),
    "split": ("text", "task split (train/test)"),
    "agent": ("text", "agent name (provenance.agent.name)"),
    "model": ("text", "model name (provenance.agent.model)"),
    "run": ("text", "run id (provenance.run_id)"),
    "outcome": ("text", "passed, failed, error, terminated, truncated, stopped, incomplete or unreadable"),
    "steps": ("number", "number of steps"),
    "return": ("number", "sum of rewards"),
    "failures": ("number", "failed steps"),
    "retries": ("number", "retry steps"),
    "recoveries": ("number", "recovering steps"),
    "checks": ("number", "recorded checks"),
    "tokens": ("number", "model tokens over the episode's model calls (summary.model.total_tokens; unknown "
                         "without calls)"),
    "cost": ("number", "model cost over the episode's model calls (summary.model.cost; unknown when no call "
                       "was priced)"),
    "complete": ("bool", "the file was closed properly (has its index) and lost no step"),
    "ended": ("bool", "it ran to its end (judged, terminated or truncated) and lost no step; false: the flag "
                      "word incomplete"),
    "labels": ("number", "live labels (any target)"),
    "labeled": ("bool", "the episode has at least one live label"),
    "labeled_fraction": ("number", "share of steps with a live label, 0..1"),
    "judge": ("text", "a judge of the episode's live labels (true if any matches)"),
    "agreement": ("number", "share of steps labeled by 2+ judges where all agree, 0..1 (unknown if none)"),
}

#: Fields whose facts come from the label store, not the episode file.
LABEL_FIELDS = frozenset({"labels", "labeled", "labeled_fraction", "judge", "agreement"})

OUTCOMES = ("passed", "failed", "error", "terminated", "truncated", "stopped", "incomplete", "unreadable")

#: Flag words: word -> (field, op, value), the term it stands for.
FLAGS: dict[str, tuple[str, str, Any]] = {
    "passed": ("outcome", "=", "passed"),
    "failed": ("outcome", "=", "failed"),
    "faulty": ("failures", ">", 0.0),
    "retried": ("retries", ">", 0.0),
    "recovered": ("recoveries", ">", 0.0),
    "incomplete": ("ended", "=", False),
    "labeled": ("labeled", "=", True),
    "unlabeled": ("labeled", "=", False),
}

QUERY_HELP = """\
Terms (all must hold, any case):
  word / "a phrase"  in the episode id, file name, env id, task id or task text
  passed, failed     outcome (the terminal check's verdict)
  faulty, retried, recovered   has a failed / retry / recovery step
  incomplete         did not run to its end (stopped, raised, never closed) or lost steps
  labeled, unlabeled has a live label / none
  env:shell          text field contains (outcome: matches a prefix)
  failures>0  return>=1  env=trajrec/*  split!=test   compare (= != > >= < <=; * ? wildcards)
  -TERM              negates a term: -failed, -env:math
  (no OR: terms of one field match either, env:shell env:math)
Fields: """ + ", ".join(FIELDS)

_OPS = ("==", "!=", ">=", "<=", "=", ">", "<")
# A token: optional negation, then a quoted phrase (an unclosed quote runs to the end) or a run of non-spaces.
_TOKEN = re.compile(r"""(?P<neg>[-!](?=\S))?(?:"(?P<dq>[^"]*)"?|'(?P<sq>[^']*)'?|(?P<word>\S+))""")
_COMPARE = re.compile(r"^([A-Za-z_][A-Za-z_0-9]*)(==|!=|>=|<=|=|>|<|:)(.*)$", re.S)
_TRUE = {"true", "yes", "1", "y", "t"}
_FALSE = {"false", "no", "0", "n", "f"}
_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
}


class QueryError(TrajrecUsageError):
    """Raised when a filter query does not parse: an unknown field, a wrong operator or value for a field."""


@dataclass(frozen=True)
class Term:
    """One parsed term. ``op`` is ``=`` ``!=`` ``>`` ``>=`` ``<`` ``<=``, ``:`` (contains / prefix), or ``~``
    (free text against ``facts["text"]``, with ``field`` empty). ``values`` holds one value, or several for
    ``FIELD:VALUE`` terms of one field (any may match)."""

    text: str
    field: str
    op: str
    values: tuple[Any, ...]
    negated: bool = False

    def matches(self, facts: Mapping[str, Any]) -> bool:
        return self._test(facts) != self.negated

    def _test(self, facts: Mapping[str, Any]) -> bool:
        if self.op == "~":
            return self.values[0] in (facts.get("text") or "")
        have = facts.get(self.field)
        kind = FIELDS[self.field][0]
        if kind == "text":
            # A set of values (the judges of an episode's labels) matches when any member does.
            haves = [str(v).lower() for v in (have if isinstance(have, (set, frozenset, list, tuple)) else [have])
                     if v is not None]
            if self.op == ":":
                if self.field == "outcome":
                    return any(h.startswith(v) for v in self.values for h in haves)
                return any(v in h for v in self.values for h in haves)
            hit = any(fnmatch.fnmatchcase(h, self.values[0]) for h in haves)
            return hit if self.op == "=" else not hit
        if have is None or (isinstance(have, float) and math.isnan(have)):
            return self.op == "!="
        if kind == "bool":
            return (bool(have) == self.values[0]) == (self.op != "!=")
        return _CMP[self.op](have, self.values[0])


@dataclass(frozen=True)
class Query:
    """A parsed query (see the module docs); the empty query matches everything."""

    text: str = ""
    terms: tuple[Term, ...] = ()

    def matches(self, facts: Mapping[str, Any]) -> bool:
        for term in self.terms:
            if not term.matches(facts):
                return False
        return True

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(t.field for t in self.terms if t.field)

    @property
    def needs_labels(self) -> bool:
        """True when a term reads a label field, so facts must include the label store's."""
        return bool(self.fields & LABEL_FIELDS)

    def __and__(self, other: Query) -> Query:
        text = " ".join(t for t in (self.text, other.text) if t)
        return Query(text, self.terms + other.terms)

    def __bool__(self) -> bool:
        return bool(self.terms)


def parse_query(query: str | Iterable[str] | None) -> Query:
    """Parse a query, or several (each one's terms must all hold): the grammar is in the module docs.

    Raises:
        QueryError: an unknown field (with the nearest one), an operator the field does not take, a value of the
            wrong type, an outcome that never occurs.

    >>> parse_query("evn:shell")
    Traceback (most recent call last):
    ...
    trajrec.replay.query.QueryError: in 'evn:shell': unknown field 'evn' (did you mean 'env'?); fields: ...
    >>> parse_query(["outcome=passed", "steps<=3"]).text
    'outcome=passed steps<=3'
    """
    if query is None:
        return Query()
    if not isinstance(query, str):
        q = Query()
        for part in query:
            q = q & parse_query(part)
        return q
    terms: list[Term] = []
    contains: dict[tuple[bool, str], list[str]] = {}
    for negated, token, quoted in _tokens(query):
        if quoted:
            if token:
                terms.append(Term(token, "", "~", (token.lower(),), negated))
            continue
        if token in ("AND", "&&") and not negated:
            continue  # every term must hold already: the join a user spells out
        if token in ("OR", "||"):
            # It was searched as a word, so a query meaning "either" silently matched (almost) nothing.
            raise QueryError(f"in {query.strip()!r}: there is no OR, every term must hold; terms of one field match "
                             "either (`env:shell env:math`), or run the query once per alternative; quote \"OR\" "
                             "to search the word")
        low = token.lower()
        if low in FLAGS:
            field, op, value = FLAGS[low]
            terms.append(Term(token, field, op, (value,), negated))
            continue
        m = _COMPARE.match(token)
        if m is None:
            terms.append(Term(token, "", "~", (low,), negated))
            continue
        name, op, raw = m.group(1).lower(), m.group(2), m.group(3)
        if name not in FIELDS:
            near = difflib.get_close_matches(name, list(FIELDS), n=1, cutoff=0.6)
            if op == ":" and not near and not _looks_like_field(name, token):
                terms.append(Term(token, "", "~", (low,), negated))  # "http://x" or "a:b" in a task text
                continue
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise QueryError(f"in {token!r}: unknown field {name!r}{hint}; fields: {', '.join(FIELDS)}")
        kind = FIELDS[name][0]
        if op == ":" and kind == "text":
            value = raw.strip("'\"").lower()
            if value:
                contains.setdefault((negated, name), []).append(value)
            continue
        op = "=" if op in ("==", ":") else op
        terms.append(Term(token, name, op, (_value(token, name, kind, op, raw),), negated))
    for (negated, name), values in contains.items():
        text = " ".join(f"{name}:{v}" for v in values)
        terms.append(Term(text, name, ":", tuple(values), negated))
    return Query(query.strip(), tuple(terms))


def _looks_like_field(name: str, token: str) -> bool:
    """Whether ``name:...`` in ``token`` is meant as a field (so an unknown name is an error, as ``evn:shell``
    is) rather than text that holds a colon: a name of 2+ letters, in a term with no ``/`` or ``.``
    (``http://x``, ``a.py:12`` and ``x:y`` stay free text)."""
    return bool(_FIELD_LIKE.fullmatch(name)) and "/" not in token and "." not in token


_FIELD_LIKE = re.compile(r"[a-z_][a-z_0-9]*[a-z_0-9]")


def _tokens(query: str) -> Iterable[tuple[bool, str, bool]]:
    """(negated, text, quoted) per term; ``failures > 0`` (spaces around an operator) is joined into one term."""
    raw = [(bool(m.group("neg")), m.group("dq") if m.group("dq") is not None else
            m.group("sq") if m.group("sq") is not None else m.group("word"),
            m.group("dq") is not None or m.group("sq") is not None) for m in _TOKEN.finditer(query)]
    out: list[tuple[bool, str, bool]] = []
    i = 0
    while i < len(raw):
        neg, text, quoted = raw[i]
        while not quoted and i + 1 < len(raw) and (
                text.endswith(_OPS) or (raw[i + 1][1].startswith(_OPS) and not raw[i + 1][2])):
            i += 1
            nxt_neg, nxt, _q = raw[i]
            text += ("-" if nxt_neg else "") + nxt
        out.append((neg, text, quoted))
        i += 1
    return out


def _value(token: str, name: str, kind: str, op: str, raw: str) -> Any:
    if raw == "":
        raise QueryError(f"in {token!r}: no value after {op!r}; e.g. {name}{op}{_example(name)}")
    if kind == "text":
        if op not in ("=", "!="):
            raise QueryError(f"in {token!r}: {name} is text; compare it with = or != (wildcards * ? allowed) or "
                             f"use {name}:VALUE for 'contains'")
        value = raw.strip("'\"").lower()
        if name == "outcome" and value not in OUTCOMES and not any(c in value for c in "*?["):
            near = difflib.get_close_matches(value, OUTCOMES, n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise QueryError(f"in {token!r}: outcome is never {value!r}{hint}; outcomes: {', '.join(OUTCOMES)}")
        return value
    if kind == "bool":
        if op not in ("=", "!="):
            raise QueryError(f"in {token!r}: {name} is true or false; compare it with = or !=")
        low = raw.lower()
        if low not in _TRUE | _FALSE:
            raise QueryError(f"in {token!r}: {name} is true or false, got {raw!r}")
        return low in _TRUE
    try:
        value = float(raw)
    except ValueError:
        raise QueryError(f"in {token!r}: {name} is a number; {raw!r} is not a number "
                         f"(e.g. {name}{op}{_example(name)})") from None
    if math.isnan(value):
        raise QueryError(f"in {token!r}: compare {name} with a number, not NaN")
    return value


def _example(name: str) -> str:
    return {"text": "failed" if name == "outcome" else "trajrec/Shell-v0" if name == "env" else "x",
            "bool": "true", "number": "0.8" if name in ("agreement", "labeled_fraction") else "1"}[FIELDS[name][0]]


def _text(x: Any) -> str | None:
    return x if isinstance(x, str) else None if x is None else str(x)


def index_facts(path: str | os.PathLike[str], index: Mapping[str, Any]) -> dict[str, Any]:
    """The facts of an episode that its index gives (every field but the label fields), plus ``text``.

    ``index`` is what :func:`trajrec.recorder.read_index` returns; fields of unexpected types read as unknown.
    """
    header = index.get("header")
    header = header if isinstance(header, Mapping) else {}
    task = header.get("task") if isinstance(header.get("task"), Mapping) else {}
    prov = header.get("provenance") if isinstance(header.get("provenance"), Mapping) else {}
    s = index.get("summary") if isinstance(index.get("summary"), Mapping) else {}
    agent = prov.get("agent")
    agent_name = agent.get("name") if isinstance(agent, Mapping) else agent
    model = agent.get("model") if isinstance(agent, Mapping) else None
    checks = s.get("checks") if isinstance(s.get("checks"), Mapping) else {}
    name = os.path.basename(os.fspath(path))
    episode = _text(header.get("episode_id")) or name
    env, task_id, task_text = _text(task.get("env_id")), _text(task.get("id")), _text(task.get("text"))
    # Steps an earlier fsck --repair found lost to damage (the index's ``damaged`` rows): not complete, and the
    # step count is what can be read. Env steps a failed write kept out of the file (the summary's
    # ``lost_steps``) make it not complete either; they were never numbered, so the count stays.
    lost = sum(r["n"] for r in index.get("damaged") or ()
               if isinstance(r, Mapping) and type(r.get("n")) is int and not r.get("unverified"))
    # Salvaged steps (``unverified`` rows) are there to read: the episode is whole, as the exports call it
    # (exports.chat.episode_complete); any other damaged row (lost steps, or one that cannot be read) is not.
    complete = (bool(index.get("complete", True)) and not gaps(index) and not isinstance(header.get("lost"), Mapping)
                and all(isinstance(r, Mapping) and r.get("unverified") for r in index.get("damaged") or ()))
    # The summary's counts are the writer's, from before the damage: with no readable step left, no step can be
    # shown to have failed, retried or recovered (0, not the old counts).
    none_left = bool(lost) and _num(index.get("steps", 0)) is not None and index.get("steps", 0) - lost <= 0
    return {
        "episode": episode,
        "env": env,
        "task": task_id,
        "split": _text(task.get("split")),
        "agent": _text(agent_name),
        "model": _text(model),
        "run": _text(prov.get("run_id")),
        "outcome": _text(s.get("outcome")) or ("incomplete" if not complete else None),
        "steps": _num(index.get("steps", 0) - lost if lost else s.get("steps", index.get("steps", 0))),
        "return": _num(s.get("return")),
        "failures": 0 if none_left else _num(s.get("failures", 0)),
        "retries": 0 if none_left else _num(s.get("retries", 0)),
        "recoveries": 0 if none_left else _num(s.get("recoveries", 0)),
        "checks": _num(checks.get("total", 0)),
        **usage_facts(s),
        "complete": complete,
        "ended": ran_to_end(s, complete),
        "text": " ".join(x for x in (episode, name, env, task_id, task_text) if x).lower(),
    }


def usage_facts(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The ``tokens`` and ``cost`` facts of an episode's summary: its model totals as the listings show them (a
    total that is no count or amount, or absent, is unknown: None).

    >>> usage_facts({"model": {"calls": 2, "total_tokens": 840, "cost": 0.0125}}), usage_facts({})
    ({'tokens': 840, 'cost': 0.0125}, {'tokens': None, 'cost': None})
    """
    from trajrec.recorder.model_call import model_usage_totals

    if not isinstance(summary.get("model"), Mapping):
        return {"tokens": None, "cost": None}
    totals = model_usage_totals(summary)
    calls = totals.get("calls")
    return {"tokens": _num(totals.get("total_tokens")) if calls else None,
            "cost": _num(totals.get("cost")) if calls else None}


def _num(x: Any) -> float | None:
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) else None
