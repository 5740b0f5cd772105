"""The wide-dict memo (``diff._Memo``) against the general walk, on hostile states changed in place.

The memo lets a wide dict's children that still hold the same objects go unchecked; it must never accept a
child that changed. Each case drives a :class:`StateTracker` (which takes the memo's path once it has one) over
states mutated step after step with the swaps identity-free checks miss, and checks at every step that the
tracker's copy is exactly the state as stored and that its rows rebuild the new state exactly from the previous
one, as the walk without a tracker's do (``diff_rows``: no memo, no table of scanned dicts).
"""

from __future__ import annotations

import collections
import copy
import random
from typing import Any

import numpy as np
import pytest

from trajrec.recorder import diff
from trajrec.recorder.diff import apply_forward, copy_state, diff_rows
from trajrec.recorder.format import packb, unpackb

from test_state_exact import strict
from tracker_modes import MODES


def StateTracker(accelerated: bool = False) -> diff.StateTracker:  # noqa: N802
    """The memo belongs to the pure walk (the C first pass needs none): these tests drive that walk."""
    return diff.StateTracker(accelerated=accelerated)


def stored(v: Any) -> Any:
    """``strict`` of ``v`` as the codec stores it (a subclass as its base type, bytearray as bytes, ...)."""
    return strict(unpackb(packb(v)))


class LyingStr(str):
    """A text value that claims to equal anything (its own ``__eq__`` is asked first against a str)."""

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return False

    __hash__ = str.__hash__


class Sub(dict):
    __slots__ = ()


def _equal_other(rng: random.Random, v: Any) -> Any:
    """A value equal to ``v`` under ``==`` but stored differently, when there is one (else a new equal object)."""
    if type(v) is int:
        return rng.choice([float(v), np.int64(v), bool(v) if v in (0, 1) else float(v)])
    if type(v) is float:
        return rng.choice([-v if v == 0 else int(v) if v == int(v) else np.float64(v), np.float64(v)])
    if type(v) is str:
        return rng.choice([LyingStr("?"), "".join(list(v)), np.str_(v)])
    if type(v) is bytes:
        return bytearray(v)
    if type(v) is list:
        return [_equal_other(rng, x) for x in v]
    if type(v) is tuple:
        return tuple(_equal_other(rng, x) for x in v)
    return copy.deepcopy(v)


def _kid(i: int) -> dict[str, Any]:
    same = f"s{i}"
    return {"size": i, "mode": "rw", "text": f"t{i}", "tags": ["a", "b"], "pair": (1, 2.0), "z": 0.0,
            "s1": same, "s2": same, "b": b"x"}


def _mutate(rng: random.Random, state: dict[str, Any], t: int, rare: float) -> None:
    """Up to three changes; ``rare``: how often the ones after which the memo waits are made."""
    files = state["files"]
    for _ in range(rng.randint(1, 3)):
        names = list(files)
        name = rng.choice(names)
        f = files[name]
        if type(f) is not dict:
            files[name] = _kid(t)
            continue
        r = rng.random()
        keys = list(f)
        if r < 0.25 and keys:
            k = rng.choice(keys)
            f[k] = _equal_other(rng, f[k])  # equal under ==, stored differently (or a new equal object)
        elif r < 0.32 and isinstance(f.get("tags"), list) and f["tags"]:
            i = rng.randrange(len(f["tags"]))
            f["tags"][i] = _equal_other(rng, f["tags"][i])  # in place, inside a list
        elif r < 0.38:
            other = files[rng.choice(names)]
            if isinstance(f.get("tags"), list) and isinstance(other, dict) and isinstance(other.get("tags"), list):
                f["tags"].append("x")  # one list grows, another shrinks: the same total length
                if other["tags"]:
                    other["tags"].pop()
        elif r < 0.44 and keys:
            last = keys[-1]
            f[last + "_"] = f.pop(last)  # the last key renamed, its value the same object: only the keys show it
        elif r < 0.5 and "s1" in f:
            f["s1"] = f.pop("s1")  # two keys holding one object change places
        elif r < 0.56:
            other = files[rng.choice(names)]
            if keys and isinstance(other, dict) and other is not f:
                k = keys[-1]
                other[k + "m"] = f.pop(k)  # a key leaves one child and comes to another: the same total
        elif r < 0.6 and rng.random() < rare:
            files[name] = rng.choice([copy.deepcopy(f), Sub(f), collections.OrderedDict(f), list(f.values())])
        elif r < 0.64 and rng.random() < rare:
            f[rng.choice(keys or ["k"])] = rng.choice([{"x": 1}, [1, 2], np.array([1.0]), {1, 2}, (["in"],)])
        elif r < 0.68:
            # the outer dict handed out anew, its children the same objects, now and then a key renamed
            pick = rng.randrange(len(names)) if rng.random() < 0.5 else -1
            state["files"] = {(k + "r" if j == pick else k): v for j, (k, v) in enumerate(files.items())}
            files = state["files"]
        elif r < 0.72:
            f["size"] = f.get("size", 0) + 1 if type(f.get("size")) is int else 1  # an ordinary change
        else:
            f["text"] = f"t{rng.randrange(4)}"  # often the same text as a new object
    state["n"] = t


@pytest.mark.parametrize("seed", range(30))
def test_the_memo_takes_no_change_for_none(seed, monkeypatch):
    # the memo is built again one step after it could not be (not 32 or 256): most swaps then meet a memo
    monkeypatch.setattr(diff, "_MEMO_WAIT", 1)
    rng = random.Random(seed)
    state = {"files": {f"f{i}": _kid(i) for i in range(12)}, "n": 0}
    tracker = StateTracker()
    tracker.reset(state)
    prev = copy_state(state)
    memo_steps = 0
    rare = 0.05 if seed % 3 else 0.5  # (the memo waits after a child is replaced or holds what it cannot keep)
    for t in range(1, 120):
        if t > 4 or rng.random() < 0.5:
            _mutate(rng, state, t, rare)
        for f in state["files"].values():
            if type(f) is dict and rng.random() < 0.3:
                clean = _kid(t)  # back to values the memo keeps, in place (so that it is built again)
                f.clear()
                f.update(clean)
        memo_steps += any(type(e[2]) is diff._Memo for e in tracker._known.values())
        rows = tracker.update(state)
        now = copy_state(state)
        assert stored(tracker.state) == stored(now), f"seed {seed} step {t}: the copy differs"
        rebuilt = apply_forward(copy_state(prev), rows, copy_values=True)
        assert stored(rebuilt) == stored(now), f"seed {seed} step {t}: the rows do not rebuild the state"
        # the general walk (no tracker: no memo, no table of scanned dicts) on the same pair is exact too; its rows
        # may differ where both are exact (a np.str_ for an equal str: a row of the same stored value, or none)
        walked = apply_forward(copy_state(prev), diff_rows(prev, state), copy_values=True)
        assert stored(walked) == stored(now), f"seed {seed} step {t}: the general walk's rows are not exact"
        prev = now
    assert memo_steps >= 3  # the memo's path is taken, not only the scans (4 to 21 steps a seed)


def test_the_memo_is_used_on_the_benchmark_shape_and_finds_the_one_changed_child():
    # 75 children changed one at a time in place: after the first steps each update visits only that child
    state = {"files": {f"f{i}": _kid(i) for i in range(75)}, "n": 0}
    tracker = StateTracker()
    tracker.reset(state)
    seen = []
    real = diff._memo_changed

    def spy(m: Any, new: Any) -> Any:
        out = real(m, new)
        seen.append(out)
        return out

    diff._memo_changed = spy
    try:
        for t in range(1, 60):
            state["files"][f"f{t % 75}"]["size"] += 1
            kid = state["files"][f"f{t % 75}"]
            kid["z"] = -kid["z"]  # equal, the other sign
            rows = tracker.update(state)
            assert stored(tracker.state) == stored(state)
            assert [r[0] for r in rows] == [["files", f"f{t % 75}", "size"], ["files", f"f{t % 75}", "z"]]
    finally:
        diff._memo_changed = real
    assert sum(type(s) is list for s in seen) >= 50
    assert all(s == [t % 75] for t, s in zip(range(60 - len(seen), 60), seen) if type(s) is list)


@pytest.mark.parametrize("accelerated", MODES)
@pytest.mark.parametrize("wide", [False, True])
def test_a_str_subclass_that_claims_equality_is_recorded(wide, accelerated):
    # C's == asks the subclass first, so a wide dict's scan called the child equal, and the exact check that
    # follows trusted that == for the text once both were taken as str (fixed: it compares them as stored)
    state = {"files": {f"f{i}": {"text": f"t{i}", "n": i} for i in range(12 if wide else 2)}}
    tracker = StateTracker(accelerated)
    tracker.reset(state)
    state["files"]["f1"]["text"] = LyingStr("other")
    rows = tracker.update(state)
    assert [r[0] for r in rows] == [["files", "f1", "text"]]
    assert stored(tracker.state) == stored(state)
