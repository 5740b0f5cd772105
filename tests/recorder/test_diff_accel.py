"""The C first pass of the state diff (``recorder/_cdiff.c``) changes nothing but the speed.

A tracker with the C pass must give exactly the rows, and keep exactly the copy, of the pure-Python walk, on the
same hostile states the walk is held to (``test_diff_equivalence.py``'s generators: NaN objects, -0.0 against
0.0, True against 1 against 1.0, tuples for lists, numpy arrays, dict and str subclasses, shared sub-objects,
key order changes, earlier state objects handed out again), on the recorder tests' hostile values, and on what
only the C pass meets: nesting past its depth limit, and a finalizer that changes the state while it walks.
Rows are compared in their canonical form (types, float bits, array bytes), not by ``==``.
"""

from __future__ import annotations

import gc
import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import test_diff_equivalence as eq
from test_diff_equivalence import _containers, _dict, _mutate, _safe_canon, _value, canon, rebuilds, stored
from tracker_modes import needs_c

from trajrec.recorder import diff
from trajrec.recorder.diff import StateTracker, copy_state

pytestmark = needs_c


def _step_both(c: StateTracker, py: StateTracker, state: Any, live: Any) -> tuple[Any, Any]:
    out = []
    for tracker in (c, py):
        try:
            out.append(_safe_canon(tracker.update(state)))
        except RecursionError:  # a container made to hold itself: both must fail alike
            out.append("raised")
            tracker.reset(copy_state(live) if state is live else state)
    return out[0], out[1]


def _run(seed: int, steps: int, hostile: bool) -> int:
    """Drive a C-pass tracker and a pure one with the same states; the number of steps with rows."""
    eq.HOSTILE = hostile
    try:
        rng = random.Random(seed)
        live: Any = _dict(rng, 0, wide=rng.random() < 0.7)
        earlier: list[Any] = []
        c, py = StateTracker(accelerated=True), StateTracker(accelerated=False)
        c.reset(live)
        py.reset(live)
        changed = 0
        for step in range(steps):
            r = rng.random()
            if r < 0.1 and earlier:
                state = rng.choice(earlier)
            elif r < 0.15:
                state = _value(rng, 0)
            else:
                _mutate(rng, live)
                if len(_containers(live, [])) > 60:
                    live = _dict(rng, 0, wide=True)
                state = live
                if rng.random() < 0.3:
                    earlier.append(copy_state(live))
            prev = copy_state(c.state)
            got, want = _step_both(c, py, state, live)
            assert got == want, f"seed {seed} step {step}: the C pass's rows differ from the walk's"
            assert _safe_canon(c.state) == _safe_canon(py.state), f"seed {seed} step {step}"
            if got != "raised":
                assert stored(c.state) == stored(state), f"seed {seed} step {step}: the copy is not the state"
                changed += bool(got[1])
                # the rows rebuild the state (the two trackers agreeing could still both be wrong)
                assert rebuilds(prev, c_rows_again(prev, state), state)
        return changed
    finally:
        eq.HOSTILE = True


def c_rows_again(prev: Any, state: Any) -> list[list[Any]]:
    tracker = StateTracker(accelerated=True)
    tracker.reset(prev)
    return tracker.update(state)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_the_c_pass_gives_the_walks_rows_on_random_hostile_states(seed):
    _run(seed, 20, hostile=True)


@pytest.mark.heavy
def test_the_c_pass_gives_the_walks_rows_on_many_more_states():
    """The fuzz test above at 20x its examples, plain and hostile (the default suite keeps a few for time)."""
    for seed in range(600):
        _run(seed, 20, hostile=bool(seed % 2))


def test_the_c_pass_gives_the_walks_rows_on_a_fixed_set_of_long_runs():
    changed = sum(_run(seed, 80, hostile) for seed in range(2) for hostile in (False, True))
    assert changed >= 150  # most steps change something: the rows compared are not empty lists


@pytest.mark.filterwarnings("ignore")  # numpy's own warnings comparing hostile arrays, in both walks alike
def test_the_hostile_values_of_the_recorder_tests_give_the_same_rows():
    from hostile_values import values

    cases = [c for c in values() if "deep" not in c.name and "huge" not in c.name and "slow" not in c.name]
    wide = {f"k{i}": f"v{i}" for i in range(9)}
    for a in cases:
        for b in cases[::7] + [a]:
            for wrap in (lambda x: {**wide, "x": x}, lambda x: {"l": ["s", x, "t"]},
                         lambda x: {**wide, "w": {**wide, "x": x}}):
                outcome = []
                for accelerated in (True, False):
                    tracker = StateTracker(accelerated=accelerated)
                    try:
                        tracker.reset(wrap(a.make()))
                        outcome.append((_safe_canon(tracker.update(wrap(b.make()))), _safe_canon(tracker.state)))
                    except Exception as exc:  # noqa: BLE001  (cycles and deep nesting raise in both alike)
                        outcome.append(("raised", type(exc).__name__))
                assert outcome[0] == outcome[1], (a.name, b.name)


@pytest.mark.parametrize("old,new", [
    (1, True), (1, 1.0), (0.0, -0.0), (True, 1), ([1], [True]), ([1], (1,)), ((1,), (1.0,)),
    ({"a": 1, "b": 2}, {"b": 2, "a": 1}), ({1: "x"}, {1.0: "x"}), ("a", eq.Name("a")), (b"a", bytearray(b"a")),
    ([0.0], [-0.0]), ({"a": [1, {"b": 1}]}, {"a": [1, {"b": True}]}), (np.int64(1), np.int64(1)),
    ({1, 2}, {1, 2}), (None, False), (float("inf"), float("-inf")), ("a" * 100, "a" * 99 + "b"),
])
def test_same_says_so_only_for_the_same_value_as_stored(old, new):
    # "not the same" may mean "Python decides" (a numpy scalar, a set): never the other way round
    from trajrec.recorder import _cdiff

    assert _cdiff.same(old, new) is False
    assert _cdiff.same(new, new) is True  # (the same object)


def test_same_takes_nan_objects_and_equal_copies_as_the_same():
    from trajrec.recorder import _cdiff

    assert _cdiff.same(float("nan"), float("nan"))  # (a NaN's payload is not kept: diff._same_float)
    value = {"a": [1, 2.5, ("x", b"y")], "b": {"c": None, "d": -0.0}, "e": 10**30}
    assert _cdiff.same(value, copy_state(value))
    assert _cdiff.same(value, {"a": [1, 2.5, ("x", b"y")], "b": {"c": None, "d": -0.0}, "e": 10**30})


def test_scan_returns_the_places_in_walk_order_and_whole_containers_whose_keys_changed():
    from trajrec.recorder import _cdiff

    old = {"a": {"x": 1, "y": [1, 2]}, "b": {"k": 1}, "c": [1, 2, 3], "d": "same"}
    new = {"a": {"x": 2, "y": [1, 2]}, "b": {"k": 1, "extra": 0}, "c": [2, 3, 4], "d": "same"}
    spots = _cdiff.scan(old, new)
    assert [(key, path) for parent, key, value, path in spots] == [("x", ["a"]), ("b", []), ("c", [])]
    assert spots[0][0] is old["a"] and spots[1][2] is new["b"]
    assert _cdiff.scan(old, copy_state(old)) == []
    assert _cdiff.scan(old, {"d": "same", **old}) is None  # the root's keys moved: the walk takes it whole
    assert _cdiff.scan([1], [2]) is None and _cdiff.scan([1], [1]) == []


def test_the_direct_dict_reads_agree_with_dict_iteration_on_every_kind_of_dict_table():
    # _cdiff reads combined dict tables directly on CPython 3.11/3.12 (its init checks them against PyDict_Next);
    # whatever the table (str keys, other keys, deleted entries, a split table: an instance's __dict__, sizes
    # whose index slots take 1, 2 and 4 bytes), the spots must be the Python walk's.
    import sys

    from trajrec.recorder import _cdiff

    if sys.implementation.name == "cpython" and sys.version_info[:2] in ((3, 11), (3, 12)):
        assert _cdiff.direct_dicts == 1

    class Obj:
        def __init__(self, n: int) -> None:
            self.a, self.b, self.c = n, str(n), [n]

    rng = random.Random(7)
    for n in (0, 1, 3, 9, 200, 70_000):
        general = {**{i: i * 2 for i in range(n)}, "s": "t", 2.5: None, (1, 2): "tuple key"}
        unicode = {f"k{i}": f"v{i}" for i in range(n)}
        for d in (general, unicode):
            for k in list(d)[::3]:
                del d[k]  # deleted entries: holes in the table's entries
        split = vars(Obj(n))
        old = {"general": general, "unicode": unicode, "split": split, "nested": {"split": vars(Obj(n + 1))}}
        tracker, pure = StateTracker(accelerated=True), StateTracker(accelerated=False)
        tracker.reset(old)
        pure.reset(old)
        assert _cdiff.scan(tracker.state, old) == []
        for _ in range(5):
            keys = list(general)
            if keys:
                general[rng.choice(keys)] = rng.random()
            if unicode:
                unicode[rng.choice(list(unicode))] = "changed"
            split["a"] = rng.random()
            old["nested"]["split"]["c"] = [rng.random()]
            assert canon(tracker.update(old)) == canon(pure.update(old))
            assert canon(tracker.state) == canon(pure.state) == canon(old)


def test_scan_makes_the_walks_rows_for_changed_scalar_leaves_and_updates_the_copy_only_when_done():
    from trajrec.recorder import _cdiff

    sub = type("Text", (str,), {})
    new = {"s": "b", "i": 2, "f": -0.0, "b": b"y", "t": False, "same": float("1.5"), "cross": 1, "subclass": sub("x"),
           "nested": {"n": 2.0, "l": [1, 2]}, "nan": float("nan")}
    old = {"s": "a", "i": 1, "f": 0.0, "b": b"x", "t": True, "same": 1.5, "cross": True, "subclass": sub("x"),
           "nested": {"n": 1.0, "l": [1]}, "nan": float("nan")}
    copy = copy_state(old)
    spots = _cdiff.scan(copy, new, diff._SCAN_KINDS)
    assert type(spots) is tuple  # rows and spots together: a list would tell the tracker "rows only"
    rows = [s for s in spots if type(s) is list]
    assert rows == [[["s"], "values_changed", "b", "a"], [["i"], "values_changed", 2, 1],
                    [["f"], "values_changed", -0.0, 0.0], [["b"], "values_changed", b"y", b"x"],
                    [["t"], "values_changed", False, True], [["nested", "n"], "values_changed", 2.0, 1.0]]
    assert str(rows[2][2]) == "-0.0" and rows[0][2] is new["s"]
    # True against 1 and a str subclass are the walk's to judge; the list is walked whole
    assert [(s[1], s[3]) for s in spots if type(s) is tuple] == [("cross", []), ("subclass", []), ("l", ["nested"])]
    assert [k for k in copy if copy[k] is new[k]] == ["s", "i", "f", "b", "t"]  # the leaves are in the copy
    assert copy["nested"]["n"] is new["nested"]["n"] and copy["nested"]["l"] == [1]
    # without a kind every place is a spot and the copy is left alone
    copy = copy_state(old)
    assert all(type(s) is tuple for s in _cdiff.scan(copy, new)) and canon(copy) == canon(old)
    # the walk's own rows, in its order, through the tracker
    c, py = StateTracker(accelerated=True), StateTracker(accelerated=False)
    c.reset(old)
    py.reset(old)
    assert canon(c.update(new)) == canon(py.update(new)) and canon(c.state) == canon(py.state)


def test_a_queue_shift_the_c_pass_makes_rows_of_gives_the_walks_rows_and_others_go_to_the_walk():
    from trajrec.recorder import _cdiff

    sub = type("Text", (str,), {})
    nan = float("nan")

    def shifted(items: list[Any], new_last: Any) -> list[Any]:
        return items[1:] + [new_last]

    cases = [  # (old list, new list, made by the C pass)
        ([f"cmd {i}" for i in range(8)], shifted([f"cmd {i}" for i in range(8)], "cmd 8"), True),
        ([1, 2], [2, 3], True),
        ([0.0, 1.0, 2.0], [1.0, 2.0, -0.0], True),
        ([-0.0, 5, 0.0], [5, 0.0, 0.0], False),  # the middle item's kind differs from the old one's
        ([True, False], [False, True], True),
        (list(range(40)), list(range(1, 41)), True),  # a long list: the walk finds its head and tail in runs
        ([1, 2, 3], [1, 3, 4], False),  # the first items are equal: a common head
        ([1, 2, 3], [2, 3, 3], False),  # last items equal: a common tail
        ([1, 2, 3], [3, 4, 5], False),  # shifted by two
        ([1, "a", 3], ["a", 3, "b"], False),  # the last items' types differ
        ([nan, 1, 2], [1, 2, nan], False),  # NaN objects: the first items may be the same as stored
        (["x", 1], [1, sub("y")], False),  # a str subclass: the walk decides
        ([True, 2], [2, 1], False),  # bool against int
        ([{"a": 1}, {"b": 2}], [{"b": 2}, {"c": 3}], False),  # containers: the walk decides
        (["only"], ["other"], False),
        ([b"a", b"b", b"c"], [b"b", b"c", b"d"], True),
    ]
    for old_list, new_list, by_c in cases:
        old, new = {"q": old_list, "n": 0}, {"q": new_list, "n": 0}
        copy = copy_state(old)
        spots = _cdiff.scan(copy, new, diff._SCAN_KINDS)
        made = bool(spots) and all(type(spot) is list for spot in spots)
        assert made == by_c, (old_list, new_list)
        assert type(spots) is (list if made else tuple), (old_list, new_list)  # a list holds rows only
        c, py = StateTracker(accelerated=True), StateTracker(accelerated=False)
        c.reset(old)
        py.reset(old)
        assert canon(c.update(new)) == canon(py.update(new)), (old_list, new_list)
        assert canon(c.state) == canon(py.state) == canon(new), (old_list, new_list)
        if by_c:
            assert [r[1] for r in py.update(new)] == []  # and nothing left after it
    # random queues of scalars, shifted by 0-3 with items changed, against the walk
    rng = random.Random(3)
    pool = [0, 1, 2, -0.0, 0.0, 1.0, True, False, "a", "b", b"a", nan, None, sub("a")]
    for _ in range(300):
        items = [rng.choice(pool) for _ in range(rng.randrange(0, 20))]
        live = {"q": items}
        c, py = StateTracker(accelerated=True), StateTracker(accelerated=False)
        c.reset(live)
        py.reset(live)
        for _ in range(4):
            k = rng.randrange(0, 4)
            del items[:k]
            items += [rng.choice(pool) for _ in range(rng.choice([k, k, rng.randrange(0, 3)]))]
            if items and rng.random() < 0.3:
                items[rng.randrange(len(items))] = rng.choice(pool)
            assert canon(c.update(live)) == canon(py.update(live))
            assert canon(c.state) == canon(py.state)


def test_a_queue_that_shifted_is_two_rows_not_one_per_item():
    # lists go to the walk whole, which finds the shift (a bounded history: drop one at the front, add one)
    state = {"history": [f"cmd {i}" for i in range(8)], "n": 0}
    tracker = StateTracker(accelerated=True)
    tracker.reset(state)
    state["history"].pop(0)
    state["history"].append("cmd 8")
    rows = tracker.update(state)
    assert [(r[0], r[1]) for r in rows] == [(["history", 0], "iterable_item_removed"),
                                           (["history", 7], "iterable_item_added")]


def test_nesting_past_the_c_depth_limit_is_walked_exactly():
    def nest(depth: int, leaf: Any) -> dict[str, Any]:
        d: dict[str, Any] = {"leaf": leaf, "side": "s"}
        for i in range(depth):
            d = {"k": d, "i": i}
        return d

    for depth in (10, 47, 48, 49, 60, 150):
        c, py = StateTracker(accelerated=True), StateTracker(accelerated=False)
        c.reset(nest(depth, 1))
        py.reset(nest(depth, 1))
        for leaf in (1.0, True, -0.0, 0.0, [1], (1,), "x"):
            new = nest(depth, leaf)
            got, want = c.update(new), py.update(new)
            assert canon(got) == canon(want) and len(got) == 1, depth
            assert stored(c.state) == stored(new)


class _Mutator:
    """Garbage with a finalizer that changes the live state and leaves new garbage of its kind: with the collector
    run at every allocation, the allocations of the C pass itself run these finalizers while it walks."""

    runs = 0

    def __init__(self, state: dict[str, Any], left: int) -> None:
        self.state, self.left, self.me = state, left, self  # (a cycle: only the collector frees it)

    def __del__(self) -> None:
        _Mutator.runs += 1
        files = self.state["files"]
        if files:
            files.pop(next(iter(files)))
        files[f"new {_Mutator.runs}"] = {"size": self.left, "text": "t"}
        for f in list(files.values())[::4]:
            f["size"] += 1
        if self.left:
            _Mutator(self.state, self.left - 1)


def _finalizers_during(fn: Any, state: dict[str, Any], chain: int = 60) -> tuple[Any, int]:
    thresholds = gc.get_threshold()
    gc.collect()
    gc.disable()
    gc.freeze()  # the full collections a threshold of 1 brings walk only what is made here, not the suite's heap
    _Mutator(state, chain)
    before = _Mutator.runs
    gc.set_threshold(1)
    gc.enable()
    try:
        out = fn()
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
        gc.collect()
    return out, _Mutator.runs - before


def test_a_finalizer_changing_the_state_during_the_c_pass_leaves_exact_rows():
    from trajrec.recorder import _cdiff

    state = {"files": {f"f{i}": {"size": i, "text": f"t{i}"} for i in range(40)}, "n": 0}
    copy = copy_state(state)
    for f in list(state["files"].values())[::3]:
        f["size"] += 1  # spots, so that the pass allocates as it walks
    spots, ran = _finalizers_during(lambda: _cdiff.scan(copy, state), state)
    assert ran >= 3  # finalizers ran (and changed the state) while the pass walked it
    assert spots is None or all(type(p) is dict for p, *_ in spots)

    tracker = StateTracker(accelerated=True)
    tracker.reset(state)
    exact = 0
    for n in range(6):
        for f in list(state["files"].values())[::3]:
            f["size"] += 1
        prev = copy_state(tracker.state)
        try:
            rows, ran = _finalizers_during(lambda: tracker.update(state), state, chain=n % 4)
        except (KeyError, RuntimeError):
            # The Python walk after the pass met a dict changed under it (it iterates the live state, as it
            # always has): the Recorder then stores a full snapshot (wrapper._diff_state); so does this test.
            tracker.reset(state)
            continue
        # the rows are exactly the change made to the copy; what a finalizer changed after the pass saw it comes
        # in the next step's rows
        assert rebuilds(prev, rows, tracker.state), f"step {n}"
        tracker.update(state)
        assert stored(tracker.state) == stored(state), f"step {n}"
        exact += ran > 0
    assert exact >= 3


def test_the_recorder_uses_the_c_pass_by_default_and_the_environment_variable_turns_it_off(tmp_path):
    import subprocess
    import sys

    code = "from trajrec.recorder.diff import StateTracker; print(StateTracker().accelerated)"
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "TRAJREC_PURE_PYTHON": "1"})
    assert (on.stdout.strip(), off.stdout.strip()) == ("True", "False")
    assert diff._accel is not None
