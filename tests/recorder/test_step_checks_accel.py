"""The reader's step record checks in C (``recorder/_cdiff.c``: ``usual_steps``) change nothing but the speed.

``validate.steps_problem`` with the C fast path must give the verdicts and messages of the pure-Python checks, and
send down the detailed path (``validate.step_problem``) exactly the records the Python inline tests send there:
on random frames of usual, unusual and hostile records, and on what only C code meets (exact types against
subclasses, bools for ints, tuples for lists, numbers past 64 bits, lookups that raise or change the record).
"""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from tracker_modes import needs_c

from trajrec.recorder import validate
from trajrec.recorder.validate import step_problem, steps_problem

pytestmark = needs_c


class IntSub(int):
    pass


class StrSub(str):
    pass


class DictSub(dict):  # type: ignore[type-arg]
    pass


class ListSub(list):  # type: ignore[type-arg]
    pass


GOOD = {"t": "step", "i": 0, "time": 1.0, "duration": 0.5, "note": {"thought": "x"}, "retry_of": 1,
        "recovers": [1, 2], "diff": [[["a", 0], "change", 1, 0], [["b"], "added", None, None]],
        "failure": {"kind": "tool_error", "message": "no such file", "traceback": None, "type": "OSError"}}
PLAIN = {"t": "step", "i": 0, "action": "ls", "observation": [1, 2], "reward": 0.0}
CHECKED = {"t": "step", "i": 0, "checks": [{"kind": "rule", "judge": "r", "value": 1, "target": 0}]}

#: Values each key may take: valid or not, usual or not. Which are usual is for the Python inline tests to say.
VALUES: dict[str, list[Any]] = {
    "i": [True, False, IntSub(0), 0.0, "0", None, 2**64, -1, 2**63, -(2**63) - 1],
    "time": [0, 2**70, math.nan, math.inf, -math.inf, True, None, "1", IntSub(1), [1.0], 1.5],
    "duration": [0, math.nan, True, None, b"1", -0.0],
    "note": [None, {}, DictSub(a=1), "text", [1], ()],
    "checks": [None, [], [{"kind": "rule"}], [{"kind": 3}], "x", (), {}, 0],
    "failure": [None, {}, {"kind": StrSub("x")}, {"message": b"m"}, {"traceback": None, "type": "E"},
                DictSub(kind="x"), "x", 0, {"kind": None, "message": "m", "other": 5}],
    "retry_of": [None, 2**64, -(2**65), 3, True, IntSub(3), 1.5, "2"],
    "recovers": [None, [], [True], [1, False], [IntSub(1)], ["1"], "1", (1,), ListSub([1]), [2**80, -1]],
    "diff": [None, [], "x", (), [(["a"], "change", 1, 0)], [[("a",), "change", 1, 0]], [[["a"], "change", 1]],
             [[["a"], "change", 1, 0, 5]], [[["a"], 2, 1, 0]], [[["a"], StrSub("change"), 1, 0]],
             [[ListSub(["a"]), "change", 1, 0]], [ListSub([["a"], "change", 1, 0])], [[]], [None],
             [[["a"], "change", 1, 0], "row"], [[[], "added", {"x": 1}, None]]],
}


def _random_record(rng: random.Random, i: int) -> Any:
    r = rng.random()
    rec = dict(rng.choice((GOOD, GOOD, PLAIN, CHECKED)), i=i)
    for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
        key = rng.choice(sorted(VALUES))
        if rng.random() < 0.1:
            rec.pop(key, None)  # missing keys count as None (dict.get), time and duration as 0.0
        else:
            rec[key] = rng.choice(VALUES[key])
    if r > 0.97:  # a map, not a dict (never decoded: the reader's records are dicts)
        return DictSub(rec)
    return rec


def _both(frame: list[Any], first: int, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[int], Any, list[int]]:
    """``steps_problem`` on ``frame`` in C then in pure Python: each result, and the positions each sent to
    ``step_problem`` (the detailed path)."""
    asked: list[int] = []
    monkeypatch.setattr(validate, "step_problem", lambda rec, i: asked.append(i - first) or step_problem(rec, i))
    c = steps_problem(frame, first)
    c_asked, asked[:] = asked[:], []
    with monkeypatch.context() as m:
        m.setattr(validate, "_accel", None)
        py = steps_problem(frame, first)
    return c, c_asked, py, asked


def test_random_frames_agree_in_c_and_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """Random frames of usual, unusual and hostile records: the same verdict, the same message, and the same
    records taking the detailed path, in both modes; and the verdict is step_problem's on each record in turn."""
    rng = random.Random(11)
    verdicts = {"fine": 0, "refused": 0}
    long_way = 0
    for _ in range(3000):
        first = rng.choice((0, 0, 7, 1000, 2**40))
        frame = [_random_record(rng, first + j) for j in range(rng.randrange(1, 8))]
        if rng.random() < 0.05:  # a record numbered wrong
            j = rng.randrange(len(frame))
            if type(frame[j]) is dict:
                frame[j]["i"] = first + j + rng.choice((1, -1, 2**64))
        c, c_asked, py, py_asked = _both(frame, first, monkeypatch)
        assert c == py, frame
        assert c_asked == py_asked, frame
        expected = next(((j, p) for j, r in enumerate(frame) if (p := step_problem(r, first + j))), None)
        assert c == expected, frame
        verdicts["refused" if c else "fine"] += 1
        long_way += len(c_asked)
    # The frames reach both verdicts and both paths often enough for the comparison to mean something.
    assert verdicts["fine"] > 300 and verdicts["refused"] > 300, verdicts
    assert long_way > 1000


@pytest.mark.parametrize(("key", "value"), [(k, v) for k, vs in VALUES.items() for v in vs],
                         ids=lambda v: repr(v)[:30])
def test_each_hostile_value_agrees(key: str, value: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every value of the list above, in the middle record of a usual frame: the same verdict, message and path."""
    for base in (GOOD, PLAIN):
        frame = [dict(base, i=5 + j) for j in range(3)]
        frame[1][key] = value
        c, c_asked, py, py_asked = _both(frame, 5, monkeypatch)
        assert (c, c_asked) == (py, py_asked)
        assert c == next(((j, p) for j, r in enumerate(frame) if (p := step_problem(r, 5 + j))), None)


def test_usual_and_unusual_records_in_c() -> None:
    """What the C tests pass and where they stop, pinned for the cases the exact type tests exist for."""
    usual_steps = validate._accel.usual_steps
    frame = [dict(GOOD, i=3), dict(PLAIN, i=4), {"i": 5}, dict(GOOD, i=6, time=math.nan, duration=0, checks=None)]
    assert usual_steps(frame, 3) == 4
    assert usual_steps(frame, 3, 2) == 4
    assert usual_steps(frame, 3, 9) == 9  # past the end: nothing to test
    assert usual_steps([], 0) == 0
    stops = [  # each stops the C tests at position 1; step_problem then decides (accepts some: tuples, checks)
        {"i": True}, {"i": IntSub(1)}, {"i": 2}, {"i": 1, "time": None}, {"i": 1, "checks": []},
        {"i": 1, "failure": {"kind": StrSub("x")}}, {"i": 1, "recovers": [True]}, {"i": 1, "retry_of": False},
        {"i": 1, "diff": [(["a"], "change", 1, 0)]}, {"i": 1, "diff": [[("a",), "change", 1, 0]]},
        {"i": 1, "diff": [[["a"], "change", 1]]}, {"i": 1, "diff": [[["a"], "change", 1, 0, 0]]},
        DictSub(i=1), [1], None, {"i": 1, "note": DictSub()}, {"i": 1, "failure": DictSub()},
    ]
    for rec in stops:
        assert usual_steps([{"i": 0}, rec, {"i": 2}], 0) == 1, rec
    assert usual_steps([{"i": 2**63 - 1}], 2**63 - 1) == 1
    assert usual_steps([{"i": 2**63 - 1}, {"i": 2**63}], 2**63 - 1) == 1  # past 64 bits: Python's exact ints
    assert usual_steps([{"i": 2**64}], 2**64) == 0
    assert usual_steps([{"i": -1}], -1) == 0
    assert steps_problem([{"i": 2**64}, {"i": 2**64 + 1}], 2**64) is None
    for bad in (((1,), 0), ([], 0.0), ([], True), ([], 0, -1), ([], 0, 1.0)):
        with pytest.raises((TypeError, ValueError)):
            usual_steps(*bad)


class _Key:
    """A map key with the hash of one of the step's field names: looking that name up compares with it."""

    def __init__(self, name: str, on_eq: Any) -> None:
        self.hash = hash(name)
        self.on_eq = on_eq

    def __hash__(self) -> int:
        return self.hash

    def __eq__(self, other: object) -> bool:
        return self.on_eq()


@pytest.mark.parametrize("name", ["i", "time", "note", "checks", "failure", "diff"])
def test_a_lookup_that_raises_raises_in_both(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A record (never a decoded one) whose key comparison raises: both modes raise the same error."""
    armed = False

    def boom() -> bool:
        if armed:
            raise RuntimeError("compared")
        return False  # while the record is built

    # The key goes in first, so that a lookup of the name meets it before the name's own entry.
    rec: dict[Any, Any] = {} if name == "failure" else {_Key(name, boom): 1}
    rec.update(GOOD, i=1)
    if name == "failure":
        rec["failure"] = {_Key("kind", boom): 1}
    armed = True
    for accel in (validate._accel, None):
        monkeypatch.setattr(validate, "_accel", accel)
        with pytest.raises(RuntimeError, match="compared"):
            steps_problem([{"i": 0}, rec], 0)


def test_a_lookup_that_empties_the_frame_is_safe() -> None:
    """A key comparison that clears the record, its failure map and the frame while the C tests read them: no
    crash, and a verdict (the record and the map are held while looked up; the frame's length is read again)."""
    frame: list[Any] = []

    def clear() -> bool:
        for rec in frame:
            if isinstance(rec, dict):
                failure = rec.get("failure")
                if isinstance(failure, dict):
                    failure.clear()
                rec.clear()
        frame.clear()
        return False

    failure = {"kind": "x", _Key("message", clear): 1}
    frame.extend([{"i": 0}, dict(GOOD, i=1, failure=failure), dict(GOOD, i=2), dict(GOOD, i=3)])
    assert validate._accel.usual_steps(frame, 0) in range(5)
    assert frame == []
    frame.extend([{"i": 0}, {"i": 1, _Key("diff", clear): 1}, {"i": 2}])
    assert steps_problem(frame, 0) in (None, (1, "step record has i = NoneType, expected a step index"))
