"""``records``: one JSON line per episode holding the whole evidence record, in one stable shape.

Every field whose type the env, the agent or a judge decides (observations, actions, rewards, infos, states,
notes, diffs, the task, provenance, summary and checks) is written as JSON text (the export encoding of
:mod:`~trajrec.replay.exports.encode`): ``json.loads`` gives it back exactly, and the row's own shape never varies,
so ``datasets``, ``pyarrow.json``, Polars and DuckDB all read the file unchanged with every number exact. Fields
trajrec types itself (ids, flags, times, step indexes) are plain JSON. ``docs/EXPORT.md`` lists them.
"""

from __future__ import annotations

import json
import math
from itertools import repeat
from typing import Any, Callable, Iterable

from .base import EpisodeView, JsonlFormat
from .chat import episode_complete, unverified_of
from .encode import _encode_str as _S
from .encode import _fast, dumps, dumps_built, dumps_unchecked, needs_exact

_float_repr = float.__repr__

#: Value of the ``format`` field of each row.
RECORDS_FORMAT = "trajrec-records@3"


def _time(x: Any) -> float | None:
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        f = float(x)
        return f if math.isfinite(f) else None
    return None


def _index(x: Any) -> int | None:
    return x if type(x) is int else None


def _str(x: Any) -> str | None:
    return x if x is None or isinstance(x, str) else dumps(x)


def _step(rec: dict[str, Any]) -> dict[str, Any]:
    """The ``steps`` item of a row as a dict (what :func:`step_json` writes as text)."""
    return json.loads(step_json(rec))


def _text_field(enc: Callable[[Any], str], value: Any) -> str:
    """A recorded value as a row field: its export JSON text, itself written as a JSON string."""
    if type(value) is str:
        return _S(_S(value))
    if value is None:
        return '"null"'
    return _S(enc(value))


def _number(x: Any) -> str:
    """:func:`_time` as JSON text."""
    if type(x) is float:
        return _float_repr(x) if math.isfinite(x) else "null"
    f = _time(x)
    return "null" if f is None else _float_repr(f)


def step_json(rec: dict[str, Any], unverified: bool = False) -> str:
    """One item of a row's ``steps``, as the JSON text that encoding the step's dict would give (same fields, same
    order): built as text, so a step costs one encoding of each recorded value and no second pass over the row."""
    get = rec.get
    # Each recorded value decides for itself whether it needs the exact pass (dumps): text, numbers and maps of
    # them (a step's info, its note) in a few C loops, where a walk over the whole record cost more than
    # encoding it. A plain value gives the same text either way, so this is the text one walk gave.
    enc = dumps
    diff = get("diff")
    recovers = get("recovers")
    retry = get("retry_of")
    i = rec["i"]
    return (f'{{"i":{_fast(i)},"action":{_text_field(enc, get("action"))},'
            f'"observation":{_text_field(enc, get("observation"))},"reward":{_text_field(enc, get("reward"))},'
            f'"terminated":{"true" if get("terminated") else "false"},'
            f'"truncated":{"true" if get("truncated") else "false"},'
            f'"info":{_text_field(enc, get("info"))},"time":{_number(get("time"))},'
            f'"duration":{_number(get("duration"))},"note":{_text_field(enc, get("note"))},'
            f'"failure":{_text_field(enc, get("failure"))},'
            f'"retry_of":{retry if type(retry) is int else "null"},'
            f'"recovers":{_fast([k for k in recovers if type(k) is int]) if recovers else "[]"},'
            f'"diff":' + (_S(enc([{"path": r[0], "action": r[1], "value": r[2], "old_value": r[3]} for r in diff]))
                          if diff else '"[]"') + f',"unverified":{"true" if unverified else "false"}}}')


#: A label's item of ``checks`` (the fields of :meth:`Label.to_record` but ``v`` and ``deleted``, after ``origin``),
#: with the fields that repeat from label to label (kind to author) as one piece, made once for each of their sets.
_LABEL_ITEM = '{"origin":"label","id":%s,"episode_id":%s,"target":%s,%s,"time":%s,"supersedes":%s}'
_LABEL_MIDDLE = '"kind":%s,"judge":%s,"value":%s,"score":%s,"rationale":%s,"tags":%s,"author":%s'
_MIDDLES: dict[tuple[Any, ...], str] = {}
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_int_repr = int.__repr__


def _column_texts(col: tuple[Any, ...]) -> Iterable[str]:
    """The JSON text (:func:`dumps`) of each value of a column, with one C loop where its values share a type."""
    types = set(map(type, col))
    if len(types) == 1:
        t = types.pop()
        if t is str:
            return map(_S, col)
        if t is type(None):
            return repeat("null", len(col))
        if t is float and all(map(math.isfinite, col)):
            return map(_float_repr, col)
        if t is int and _I64_MIN <= min(col) and max(col) <= _I64_MAX:
            return map(_int_repr, col)
    return map(dumps, col)


def _middle(key: tuple[Any, ...]) -> str:
    kind, judge, _vt, value, _st, score, rationale, tags, author = key
    return _LABEL_MIDDLE % (dumps(kind), dumps(judge), dumps(value), dumps(score), dumps(rationale),
                            dumps(list(tags)), dumps(author))


def label_items(rows: list[Any]) -> list[str]:
    """The ``checks`` items of :class:`~trajrec.replay.label_model.LabelRow` s, as JSON text: what encoding
    ``{"origin": "label", **label.to_record()}`` without ``v`` and ``deleted`` gives, a column at a time."""
    (eids, targets, kinds, judges, values, scores, rationales, tags, authors, times, supersedes, ids,
     _deleted) = zip(*rows)
    # The repr is part of the key: 1, 1.0 and True (and 0.0 and -0.0) are equal as keys but not as JSON.
    keys = list(zip(kinds, judges, map(repr, values), values, map(repr, scores), scores, rationales, tags, authors))
    try:
        missing = set(keys) - _MIDDLES.keys()
    except TypeError:  # not hashable (a usual label's fields always are)
        middles: Iterable[str] = map(_middle, keys)
    else:
        if len(_MIDDLES) + len(missing) > 4096:
            _MIDDLES.clear()
            missing = set(keys)
        for key in missing:
            _MIDDLES[key] = _middle(key)
        middles = map(_MIDDLES.__getitem__, keys)
    return list(map(_LABEL_ITEM.__mod__, zip(
        _column_texts(ids), repeat(_S(eids[0])) if eids.count(eids[0]) == len(eids) else _column_texts(eids),
        _column_texts(targets), middles, _column_texts(times), _column_texts(supersedes))))


class RecordsFormat(JsonlFormat):
    name = "records"
    built_rows = True

    def rows(self, view: EpisodeView) -> tuple[Iterable[dict[str, Any]], int]:
        lines, steps = self.lines(view)
        return [json.loads(line) for line in lines], steps

    def lines(self, view: EpisodeView) -> tuple[list[str], int]:
        ep = view.ep
        reset = ep.reset
        doubt = unverified_of(ep)  # salvaged steps: flagged per step
        steps = [step_json(rec, rec["i"] in doubt) if doubt else step_json(rec) for rec in view.steps()]
        checks: list[dict[str, Any]] = []
        for c in ep.checks:
            rec = c.to_record()
            rec.pop("step", None)  # the index's copy of the target
            checks.append({"origin": "recorded", **rec})
        joined = view.joined
        if joined.usual:
            # The labels' items as text, field by field over all of them (what encoding their dicts gives).
            recorded = dumps(checks)
            labels = ",".join(label_items(joined.rows))
            checks_text = f"{recorded[:-1]},{labels}]" if checks else f"[{labels}]"
        else:
            for lab in joined.labels():
                rec = lab.to_record()
                rec.pop("v", None)
                rec.pop("deleted", None)
                checks.append({"origin": "label", **rec})
            checks_text = dumps(checks)
        task, summary = ep.task, ep.summary
        head = {
            "format": RECORDS_FORMAT,
            "episode_id": ep.episode_id,
            "file": view.ref.rel_path,
            "env_id": _str(task.get("env_id")),
            "task_id": _str(task.get("id")),
            "split": _str(task.get("split")),
            "outcome": _str(summary.get("outcome")),
            "task": dumps(task),
            "provenance": dumps(ep.provenance),
            "summary": dumps(summary),
            "reset": {"seed": dumps(reset.seed), "options": dumps(reset.options),
                      "observation": dumps(reset.observation), "info": dumps(reset.info),
                      "state": dumps(reset.state),
                      "failure": dumps(reset.failure._asdict() if reset.failure else None),
                      "time": _time(reset.time), "duration": _time(reset.duration)},
        }
        tail = {
            "checks": checks_text,
            "complete": episode_complete(ep),
            "lost": [[first, n] for first, n in ep.lost],
            "damage": [d if isinstance(d, str) else dumps(d) for d in ep.damage],
        }
        # The row's text is the encoding of head + {"steps": [...]} + tail as one dict: the steps are already
        # text, so they are spliced in rather than built as dicts and encoded again.
        line = f'{dumps_built(head)[:-1]},"steps":[{",".join(steps)}],{dumps_built(tail)[1:]}'
        return [line], len(steps)
