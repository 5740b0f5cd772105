"""Checking decoded records and indexes before the reader trusts them.

Bytes that decode are not yet a record: a crafted or damaged file can hold well-formed msgpack with a list where
a map belongs, a string step number, or an index whose frame table points outside the file. Each function here
returns ``None`` when the value has the shape ``docs/FORMAT.md`` gives, else a short description of the first
problem (``"step.diff row 3 is int, expected [path, action, value, old_value]"``), which the reader turns into a
:class:`~trajrec.recorder.errors.TrajrecFormatError` naming the file and offset.

Only fields the reader and the tools interpret are checked; ``action``, ``observation``, ``info``, ``reward``
and other recorded values are data of any type.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

#: The C fast path of :func:`steps_problem` (``recorder/_cdiff.c``: ``usual_steps``), the same tests as its inline
#: ones below. None where the extension was not built (no C compiler at install) or ``TRAJREC_PURE_PYTHON=1`` is
#: set (the switch ``recorder/diff.py`` reads): the checks then run in Python, with the same verdicts and messages.
_accel: Any = None
if not os.environ.get("TRAJREC_PURE_PYTHON"):
    try:
        from . import _cdiff as _accel
    except ImportError:  # pragma: no cover  (installed without a C compiler)
        _accel = None

_NUM = (int, float)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _opt(v: Any, types: type | tuple[type, ...]) -> bool:
    return v is None or isinstance(v, types)


def _type(v: Any) -> str:
    return type(v).__name__


def check_problem(c: Any, where: str) -> str | None:
    """The problem with a check record (recorded with a step, on its own, or copied into the index)."""
    if not isinstance(c, Mapping):
        return f"{where} is {_type(c)}, expected a map"
    target = c.get("target", "episode")
    if not (isinstance(target, str) or _is_int(target)):
        return f"{where}.target is {_type(target)}, expected 'episode' or a step index"
    for key in ("kind", "judge"):
        if not _opt(c.get(key), str):
            return f"{where}.{key} is {_type(c.get(key))}, expected text"
    # rationale, score, author, time...: recorded as the env or caller gave them (any value, kept exactly).
    tags = c.get("tags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
        return f"{where}.tags is not a list of text"
    if "step" in c and not _is_int(c["step"]):
        return f"{where}.step is {_type(c['step'])}, expected a step index"
    return None


def _failure_problem(f: Any, where: str) -> str | None:
    if f is None:
        return None
    if not isinstance(f, Mapping):
        return f"{where}.failure is {_type(f)}, expected a map or nil"
    for key in ("kind", "message", "traceback", "type"):
        if not _opt(f.get(key), str):
            return f"{where}.failure.{key} is {_type(f.get(key))}, expected text"
    return None


_FLOATS = (float, int)
_STEP_OPTIONAL = frozenset(("note", "failure", "retry_of", "recovers", "diff", "checks"))


def step_problem(rec: Mapping[str, Any], expected_i: int | None = None) -> str | None:
    """The problem with a step record, or None. ``expected_i``: the number it must carry.

    Runs for every step read, so the common record (the always-present fields, of their usual types, and no
    optional ones) is checked with a handful of exact type tests; anything else takes the detailed path.
    """
    get = rec.get
    i = get("i")
    if (type(i) is int and (expected_i is None or i == expected_i)
            and type(get("time", 0.0)) in _FLOATS and type(get("duration", 0.0)) in _FLOATS
            and (rec.keys().isdisjoint(_STEP_OPTIONAL) or _usual_optional(get))):
        return None
    return _step_problem(rec, expected_i)


def _usual_optional(get: Any) -> bool:
    """True when the optional fields are the usual ones of their usual exact types (a note map, recovered step
    indexes, diff rows, a failure map of text, no checks): what the detailed path would accept, checked with exact type tests
    (it was most of the cost of reading a tool env's steps). False sends the record down the detailed path."""
    note = get("note")
    if note is not None and type(note) is not dict:
        return False
    if get("checks") is not None:
        return False
    failure = get("failure")
    if failure is not None:
        if type(failure) is not dict:
            return False
        fget = failure.get
        for key in ("kind", "message", "traceback", "type"):
            v = fget(key)
            if v is not None and type(v) is not str:
                return False
    retry_of = get("retry_of")
    if retry_of is not None and type(retry_of) is not int:
        return False
    recovers = get("recovers")
    if recovers is not None:
        if type(recovers) is not list:
            return False
        for r in recovers:
            if type(r) is not int:
                return False
    diff = get("diff")
    if diff is not None:
        if type(diff) is not list:
            return False
        for row in diff:
            if type(row) is not list or len(row) != 4 or type(row[0]) is not list or type(row[1]) is not str:
                return False
    return True


def steps_problem(recs: Sequence[Mapping[str, Any]], first: int) -> tuple[int, str] | None:
    """The first problem among the step records of a frame, numbered from ``first``: ``(position, problem)``, or
    None. The same verdicts and messages as :func:`step_problem` on each record in turn.

    Each record is first tried with the exact type tests of the common record, inline (a call only for records
    with optional fields: the checks ran at ~1.5 µs a step, a third of decoding it); only a record that fails
    them (checks, subclasses, tuples for lists, a wrong number) takes :func:`step_problem`, which finds the
    message or accepts it. The inline tests must never pass a record :func:`step_problem` refuses.

    With the C extension, ``_cdiff.usual_steps`` makes the inline tests (~0.1 µs a tool env's step where Python
    took ~0.7: docs/PERFORMANCE.md, "Session 11"), and Python takes over only at the record it stops at.
    """
    if _accel is not None and type(recs) is list and type(first) is int:
        usual_steps = _accel.usual_steps
        k = usual_steps(recs, first, 0)
        while k < len(recs):  # len again: a hostile record's step_problem may run code
            problem = step_problem(recs[k], first + k)
            if problem:
                return k, problem
            k = usual_steps(recs, first, k + 1)
        return None
    i = first
    for rec in recs:
        if type(rec) is dict:
            get = rec.get
            v = get("i")
            if v == i and type(v) is int:
                t = type(get("time", 0.0))
                d = type(get("duration", 0.0))
                if ((t is float or t is int) and (d is float or d is int)
                        and (rec.keys().isdisjoint(_STEP_OPTIONAL) or _usual_optional(get))):
                    i += 1
                    continue
        problem = step_problem(rec, i)
        if problem:
            return i - first, problem
        i += 1
    return None


def _step_problem(rec: Mapping[str, Any], expected_i: int | None) -> str | None:
    i = rec.get("i")
    if not _is_int(i):
        return f"step record has i = {_type(i)}, expected a step index"
    where = f"step {i}"
    if expected_i is not None and i != expected_i:
        return f"step record numbered {i} where {expected_i} was expected"
    # terminated, truncated, reward...: what the env returned, recorded exactly whatever its type.
    for key in ("time", "duration"):
        v = rec.get(key, 0.0)
        if not isinstance(v, _NUM) or isinstance(v, bool):
            return f"{where}.{key} is {_type(v)}, expected a number"
    if not _opt(rec.get("note"), dict):
        return f"{where}.note is {_type(rec.get('note'))}, expected a map or nil"
    problem = _failure_problem(rec.get("failure"), where)
    if problem:
        return problem
    retry_of = rec.get("retry_of")
    if retry_of is not None and not _is_int(retry_of):
        return f"{where}.retry_of is {_type(retry_of)}, expected a step index or nil"
    recovers = rec.get("recovers")
    if recovers is not None and (not isinstance(recovers, list) or not all(_is_int(r) for r in recovers)):
        return f"{where}.recovers is not a list of step indexes"
    diff = rec.get("diff")
    if diff is not None:
        if not isinstance(diff, list):
            return f"{where}.diff is {_type(diff)}, expected a list of rows"
        for k, row in enumerate(diff):
            if not isinstance(row, (list, tuple)) or len(row) != 4 or not isinstance(row[0], (list, tuple)) \
                    or not isinstance(row[1], str):
                return f"{where}.diff row {k} is not [path, action, value, old_value]"
    checks = rec.get("checks")
    if checks is not None:
        if not isinstance(checks, list):
            return f"{where}.checks is {_type(checks)}, expected a list"
        for k, c in enumerate(checks):
            problem = check_problem(c, f"{where}.checks[{k}]")
            if problem:
                return problem
    return None


def reset_problem(rec: Mapping[str, Any]) -> str | None:
    """The problem with a reset record, or None."""
    for key in ("time", "duration"):
        v = rec.get(key, 0.0)
        if not isinstance(v, _NUM) or isinstance(v, bool):
            return f"reset.{key} is {_type(v)}, expected a number"
    return _failure_problem(rec.get("failure"), "reset")


def header_problem(h: Any) -> str | None:
    """The problem with a header (the record, or its copy in the index), or None."""
    if not isinstance(h, Mapping):
        return f"the header is {_type(h)}, expected a map"
    if not _is_int(h.get("version", 1)):
        return f"header.version is {_type(h.get('version'))}, expected an integer"
    if not _opt(h.get("episode_id"), str):
        return f"header.episode_id is {_type(h.get('episode_id'))}, expected text"
    for key in ("task", "provenance"):
        if not _opt(h.get(key), dict):
            return f"header.{key} is {_type(h.get(key))}, expected a map"
    # Task fields (id, text, split...) are whatever the env reported, recorded exactly; readers show them with str().
    return None


_SUMMARY_INTS = ("steps", "failures", "retries", "recoveries")


def summary_problem(s: Any) -> str | None:
    """The problem with an index summary, or None."""
    if not isinstance(s, Mapping):
        return f"the summary is {_type(s)}, expected a map"
    for key in _SUMMARY_INTS:
        if key in s and not _is_int(s[key]):
            return f"summary.{key} is {_type(s[key])}, expected an integer"
    for key in ("return", "start_time", "end_time"):
        v = s.get(key)
        if not _opt(v, _NUM) or isinstance(v, bool):
            return f"summary.{key} is {_type(v)}, expected a number"
    for key in ("outcome", "error"):
        if not _opt(s.get(key), str):
            return f"summary.{key} is {_type(s.get(key))}, expected text"
    for key in ("terminated", "truncated", "finished"):
        if not isinstance(s.get(key, False), bool):
            return f"summary.{key} is {_type(s.get(key))}, expected a bool"
    checks = s.get("checks", {})
    if not isinstance(checks, Mapping):
        return f"summary.checks is {_type(checks)}, expected a map"
    for key in ("total", "passed", "failed"):
        if key in checks and not _is_int(checks[key]):
            return f"summary.checks.{key} is {_type(checks[key])}, expected an integer"
    for key in ("by_kind", "by_judge"):
        v = checks.get(key, {})
        if not isinstance(v, Mapping) or not all(isinstance(k, str) and _is_int(n) for k, n in v.items()):
            return f"summary.checks.{key} is not a map of names to counts"
    if not _opt(checks.get("terminal_judge"), str):
        return "summary.checks.terminal_judge is not text"
    model = s.get("model")
    if model is not None:  # model-call totals (recorder.model_call.ModelUsage.to_dict)
        if not isinstance(model, Mapping):
            return f"summary.model is {_type(model)}, expected a map"
        for key in ("calls", "failed_attempts", "failed_calls"):
            if key in model and not _is_int(model[key]):
                return f"summary.model.{key} is {_type(model[key])}, expected an integer"
        for key in ("prompt_tokens", "completion_tokens", "total_tokens", "latency", "cost"):
            v = model.get(key)
            if not _opt(v, _NUM) or isinstance(v, bool):
                return f"summary.model.{key} is {_type(v)}, expected a number"
    return None


def index_problem(index: Mapping[str, Any], index_start: int) -> str | None:
    """The problem with an index read from a file whose frames end at ``index_start``, or None.

    The frame table must be rows ``[offset, first_step, n_steps, end_offset]`` of integers, the first at offset 0,
    each inside the file and after the previous one, numbering the steps consecutively to ``steps``.
    """
    steps = index.get("steps")
    if not _is_int(steps) or steps < 0:
        return f"index steps is {steps!r:.40}, expected a count"
    frames = index.get("frames")
    if not isinstance(frames, list) or not frames:
        return "the index frame table is empty"
    end = 0
    next_step = 0
    for k, row in enumerate(frames):
        if not isinstance(row, list) or len(row) < 4 or not all(_is_int(x) for x in row[:4]):
            return f"index frame row {k} is not [offset, first_step, n_steps, end_offset] integers"
        offset, first, n, stop = row[:4]
        if k == 0 and offset != 0:
            return "the first index frame row does not start at byte 0"
        if offset < end or stop <= offset or stop > index_start:
            return (f"index frame row {k} spans bytes {offset}..{stop}, outside the frames (0..{index_start}) or "
                    "overlapping the previous row")
        if n < 0 or first != next_step or (n > 0 and n > stop - offset):
            return f"index frame row {k} numbers steps {first}..{first + n - 1}, expected to start at {next_step}"
        end = stop
        next_step += n
    if next_step != steps:
        return f"the index frame table holds {next_step} steps but the index says {steps}"
    damaged = index.get("damaged") or []  # steps fsck --repair declared lost
    if not isinstance(damaged, list):
        return f"index damaged is {_type(damaged)}, expected a list"
    for k, row in enumerate(damaged):
        n = row.get("n") if isinstance(row, Mapping) else 0
        first = row.get("first") if isinstance(row, Mapping) else None
        if not _is_int(first) or not (n is None or _is_int(n)) or first < 0 or first + (n or 0) > steps or \
                (n is not None and n < 0):
            return f"index damaged[{k}] is not a range of lost steps within 0..{steps}"
    problem = header_problem(index.get("header"))
    if problem:
        return problem
    problem = summary_problem(index.get("summary") or {})
    if problem:
        return problem
    for key in ("checks", "step_checks"):
        checks = index.get(key) or []
        if not isinstance(checks, list):
            return f"index {key} is {_type(checks)}, expected a list"
        for k, c in enumerate(checks):
            problem = check_problem(c, f"index {key}[{k}]")
            if problem:
                return problem
    return None


def compact_problem(c: Any, max_header: int) -> str | None:
    """The problem with a decoded version-3 compact index (``format.compact_index``) before it is expanded, or
    None; the expanded index is then checked like any other (:func:`index_problem`). ``max_header``: the most
    bytes a header record may have (``format.MAX_RECORD_BYTES``)."""
    if not isinstance(c, dict):
        return f"the compact index is {type(c).__name__}, expected a map"
    if type(c.get("v")) is not int:
        return "the compact index has no integer version"
    f = c.get("f")
    if not isinstance(f, list) or not f or len(f) % 3 or not all(type(x) is int and x >= 0 for x in f):
        return "the compact index frame table is not [gap, n_steps, length] rows of counts"
    hc, hl = c.get("hc"), c.get("hl")
    if type(hc) is not int or not 0 <= hc < 1 << 32 or type(hl) is not int or not 0 < hl <= max_header:
        return "the compact index has no header checksum and length"
    for key in ("c", "sc"):
        if not isinstance(c.get(key, []), list):
            return f"the compact index {key} is not a list"
    m = c.get("m", [])
    if not isinstance(m, list) or len(m) % 2 or not all(type(x) is int and 0 <= x < 1 << 62 for x in m):
        return "the compact index step marks are not [steps since the last mark, flags] rows of counts"
    if not isinstance(c.get("x", {}), dict):
        return "the compact index extra fields are not a map"
    return None
