from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from trajrec.recorder.diff import StateTracker, apply_backward, apply_forward, copy_state, diff_rows

leaf = st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=3) | st.floats(allow_nan=False)
states = st.recursive(
    leaf,
    lambda kids: st.lists(kids, max_size=6) | st.dictionaries(st.sampled_from("abcdef"), kids, max_size=5),
    max_leaves=25,
)


def _same(a, b) -> bool:
    # equality that also checks types (1 vs 1.0 vs True), which == alone would not
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


@settings(max_examples=300, deadline=None)
@given(st.lists(states, min_size=1, max_size=8))
def test_forwards_and_backwards_from_any_snapshot_gives_each_state(seq):
    tracker = StateTracker()
    tracker.reset(seq[0])
    diffs = []
    for s in seq[1:]:
        diffs.append(tracker.update(s))
        assert tracker.state == s  # the private copy follows the env's state
        # the in-place walk finds the same changes as the pure one (dict key order may differ)
        def by_place(rows):
            return sorted(rows, key=lambda r: (repr(r[0]), r[1]))

        assert by_place(diffs[-1]) == by_place(diff_rows(copy_state(seq[len(diffs) - 1]), s))
    for start in range(len(seq)):
        state = copy_state(seq[start])
        for j in range(start, len(seq) - 1):
            state = apply_forward(state, diffs[j], copy_values=True)
            assert state == seq[j + 1]
        state = copy_state(seq[start])
        for j in range(start - 1, -1, -1):
            state = apply_backward(state, diffs[j], copy_values=True)
            assert state == seq[j]


def test_scalar_type_changes_are_exact():
    rows = diff_rows({"a": 1}, {"a": 1.0})
    assert rows == [[["a"], "type_changes", 1.0, 1]]
    assert _same(apply_forward({"a": 1}, rows), {"a": 1.0})


def test_tracker_keeps_no_reference_to_live_state():
    live = {"files": {"a": "1"}, "log": ["x"]}
    tracker = StateTracker()
    tracker.reset(live)
    live["files"]["a"] = "2"
    live["log"].append("y")
    rows = tracker.update(live)
    assert tracker.state == live and tracker.state is not live
    assert tracker.state["files"] is not live["files"]
    live["log"].append("z")  # mutating the env's object later must not change what was recorded
    assert tracker.state["log"] == ["x", "y"]
    assert {tuple(r[0]) for r in rows} == {("files", "a"), ("log", 1)}


def test_queue_shift_is_one_removal_and_one_addition():
    rows = diff_rows({"h": list("abcdefgh")}, {"h": list("bcdefghi")})
    assert [r[1] for r in rows] == ["iterable_item_removed", "iterable_item_added"]


def test_numpy_and_nan_leaves():
    a = {"x": np.zeros(3), "f": float("nan")}
    b = {"x": np.zeros(3), "f": float("nan")}
    assert diff_rows(a, b) == []
    b["x"] = np.ones(3)
    rows = diff_rows(a, b)
    assert len(rows) == 1 and rows[0][0] == ["x"] and np.array_equal(rows[0][2], np.ones(3))


# Dicts of 8 keys or more look for changed children with C loops first (diff._changed_keys): the rows must be
# exactly those of the child-by-child walk, whatever the children (types that compare equal across types, NaN,
# nested containers, arrays, keys added, removed or reordered).
wide_leaf = (st.none() | st.booleans() | st.integers(-2, 2) | st.floats(allow_nan=True, allow_infinity=False)
             | st.text(max_size=2) | st.binary(max_size=2) | st.tuples(st.integers(0, 1))
             | st.frozensets(st.integers(0, 2), max_size=2))
wide = st.recursive(
    wide_leaf,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.sampled_from("abcdefghijklmn"), kids, min_size=6,
                                                              max_size=10),
    max_leaves=12,
)


KEYS = st.sampled_from("abcdefghijklmn")
# Children of the types the C scan accepts (text, nil, containers holding anything), or of any type.
child = (st.none() | st.text(max_size=2) | st.lists(wide, max_size=3) | st.tuples(wide, wide)
         | st.dictionaries(KEYS, wide, max_size=10) | wide)


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(KEYS, child, min_size=8, max_size=12),
       st.lists(st.lists(st.tuples(KEYS, child), max_size=3), min_size=1, max_size=4))
def test_wide_dicts_give_the_rows_of_the_child_by_child_walk(base, edits):
    import trajrec.recorder.diff as diff_module

    seq = [base]
    for edit in edits:  # keys set again keep their place (the C scan applies); new keys go last (it does not)
        state = copy_state(seq[-1])
        for k, v in edit:
            state[k] = v
        seq.append(state)
    fast, slow = StateTracker(accelerated=False), StateTracker(accelerated=False)  # (the pure walk's two routes)
    fast.reset(seq[0])
    slow.reset(seq[0])
    for s in seq[1:]:
        got = fast.update(s)
        saved = diff_module._FAST_MIN
        diff_module._FAST_MIN = 10**9  # the child-by-child walk only
        try:
            want = slow.update(s)
        finally:
            diff_module._FAST_MIN = saved
        assert repr(got) == repr(want)
        assert repr(fast.state) == repr(slow.state)


def test_the_c_scan_finds_the_changed_children_of_a_wide_dict():
    from trajrec.recorder.diff import _changed_keys

    old = {f"f{i}": {"size": i, "text": "x" * i, "tags": ["a"]} for i in range(20)}
    new = copy_state(old)
    new["f7"]["size"] += 1
    new["f12"]["tags"].append("b")
    assert _changed_keys(old, new) == ["f7", "f12"]
    assert [r[0] for r in diff_rows(old, new)] == [["f7", "size"], ["f12", "tags", 1]]
    new["f3"] = 3  # a child of a type that may equal another type: the scan declines, the walk decides
    assert _changed_keys(old, new) is None


def test_wide_dict_type_changes_are_exact():
    old = {k: 1 for k in "abcdefghij"}
    new = dict(old, c=1.0, e=True)
    rows = diff_rows(old, new)
    assert rows == [[["c"], "type_changes", 1.0, 1], [["e"], "type_changes", True, 1]]
    assert [type(v) for v in apply_forward(copy_state(old), rows).values()] == [type(v) for v in new.values()]
