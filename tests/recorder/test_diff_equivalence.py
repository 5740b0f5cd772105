"""The faster state diff gives exactly the rows (and keeps exactly the tracked copy) of the walk it replaced,
wherever that walk was exact; where it was not, the new walk is.

``diff_reference.py`` is the walk as it stood before the speed-up, kept verbatim. Each case drives both with the
same states: an env-like object mutated in place step after step (wide dicts, so the C scans run, long lists,
so the head and tail runs run, queues that shift), with hostile values: NaN objects, -0.0 against 0.0, True
against 1 against 1.0, tuples against lists, numpy arrays, dict and str subclasses, sub-objects shared between
two places and mutated through one, and a state that is an earlier state object again. Rows are compared by
their canonical form (types, float bits, array dtype/shape/bytes), not by ``==``, so 1 and 1.0 or -0.0 and 0.0
count as different.

Where the new walk is stricter (FINDINGS5 #7): the reference skipped containers that C's ``==`` called equal and
compared same-typed floats with ``==``, so it missed a value replaced by an equal one of another type inside a
list, dict or tuple (``[1]`` to ``[True]``, ``(1,)`` to ``(1.0,)``), a zero's sign (also inside float arrays),
object array elements (``1`` to ``True``), set element types (``{1}`` to ``{1.0}``), equal dict keys of another
type (``{1: v}`` to ``{1.0: v}``) and dict key order. A step counts as one where the reference was exact when
applying its rows to the previous state rebuilds the new state as stored (through the real codec); there both
walks must give the same rows. Elsewhere the new walk's rows must rebuild the new state exactly, and the cases
are counted, so the test shows that the stricter branch is taken.
"""

from __future__ import annotations

import collections
import math
import random
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trajrec.recorder.diff as fast
from trajrec.recorder.diff import copy_state
from trajrec.recorder.format import packb, unpackb

import diff_reference as ref


class Name(str):
    """A str subclass (compares equal to the plain str)."""


def canon(v: Any, depth: int = 0) -> Any:
    """A form of ``v`` in which values differ when their types, float bits or array bytes do."""
    if depth > 60:
        return ("deep",)
    t = type(v)
    if t is float:
        return ("float", struct.pack("<d", v) if not math.isnan(v) else "nan")
    if isinstance(v, np.ndarray):
        return (t.__name__, str(v.dtype), v.shape, np.ascontiguousarray(v).tobytes() if not v.dtype.hasobject
                else repr(v.tolist()))
    if isinstance(v, dict):
        return (t.__name__, [(canon(k, depth + 1), canon(x, depth + 1)) for k, x in v.items()])
    if isinstance(v, (list, tuple)):
        return (t.__name__, [canon(x, depth + 1) for x in v])
    if isinstance(v, (set, frozenset)):
        return (t.__name__, sorted(repr(canon(x, depth + 1)) for x in v))
    return (t.__name__, repr(v))


def stored(v: Any) -> Any:
    """``canon`` of ``v`` as the codec stores it (subclasses as their base type, and so on)."""
    return canon(unpackb(packb(v)))


def rebuilds(prev: Any, rows: Any, state: Any) -> bool:
    """Applying ``rows`` forwards to ``prev`` gives ``state`` exactly, as stored."""
    try:
        got = fast.apply_forward(copy_state(prev), rows, copy_values=True)
    except (LookupError, TypeError, ValueError):
        return False
    return stored(got) == stored(state)


STRICTER: list[str] = []  # the cases where the reference walk was not exact (and the new one is)


def same_rows(got: Any, want: Any) -> bool:
    """The new walk's rows are the reference's, except rows the reference wrote for a value that did not change
    (a tuple or array holding a NaN, which its ``==`` could not call equal): the new walk leaves those out.

    For the same reason, and because it called two equal numpy scalars changed, the reference found no common run
    or queue shift in some lists where the new walk does: the states compared row for row (``HOSTILE`` False) hold
    no NaN, arrays or numpy scalars; the hostile ones are checked for exactness only."""
    got_c, want_c = [canon(r) for r in got], [canon(r) for r in want]
    if got_c == want_c:
        return True
    i = 0
    for row, c in zip(want, want_c):
        if i < len(got_c) and got_c[i] == c:
            i += 1
        elif row[1] not in ("values_changed", "type_changes") or stored(row[2]) != stored(row[3]):
            return False  # a real change the new walk does not have
    return i == len(got_c)


#: Whether the generators below make values that compare equal across types or signs (and move dict keys): the
#: reference walk is exact only without them (see the module's docstring).
HOSTILE = True


def _leaf(rng: random.Random) -> Any:
    r = rng.random()
    choices = [
        None, True, False, 0, 1, -1, 0.0, -0.0, 1.0, float("inf"), "", "a", "b", "a" * 3, b"", b"a",
        (1,), (1.0,), [1], ("a", "b"), Name("a"), np.float64(1.0), np.int64(1),
    ] if HOSTILE else [
        None, True, -1, 7, 2.5, float("inf"), "", "a", "b", "a" * 3, b"", b"a",
        (7,), (2.5,), [7], ("a", "b"), Name("a"),
    ]
    if not HOSTILE and r < 0.17:
        r += 0.2  # no NaN objects, no arrays (see same_rows)
    if r < 0.08:
        return float("nan")  # a new NaN object each time
    if r < 0.14:
        return np.array([rng.choice([0.0, 1.0, float("nan")]) for _ in range(rng.randint(0, 3))])
    if r < 0.17:
        return np.zeros(2, dtype=rng.choice(["<i4", "<f8"]))
    if r < 0.20:
        return frozenset({rng.randint(0, 2)})
    if r < 0.25:
        return f"w{rng.randint(0, 5)}"
    return rng.choice(choices)


def _value(rng: random.Random, depth: int) -> Any:
    r = rng.random()
    if depth >= 3 or r < 0.45:
        return _leaf(rng)
    if r < 0.65:
        return _dict(rng, depth + 1, wide=rng.random() < 0.5)
    if r < 0.85:
        n = rng.choice([0, 2, 5, 17, 40])
        return [_value(rng, depth + 1) if n < 8 else _leaf(rng) for _ in range(n)]
    if r < 0.92:
        return tuple(_value(rng, depth + 1) for _ in range(rng.randint(0, 3)))
    return collections.OrderedDict((f"o{i}", _leaf(rng)) for i in range(rng.randint(0, 9)))


def _dict(rng: random.Random, depth: int, wide: bool) -> dict[str, Any]:
    n = rng.randint(8, 14) if wide else rng.randint(0, 7)
    return {f"k{i}": _value(rng, depth) for i in range(n)}


def _containers(v: Any, out: list[Any]) -> list[Any]:
    if len(out) > 200:
        return out
    if isinstance(v, (dict, list)):
        out.append(v)
        for x in (v.values() if isinstance(v, dict) else v):
            _containers(x, out)
    elif isinstance(v, tuple):
        for x in v:
            _containers(x, out)
    return out


def _mutate(rng: random.Random, state: dict[str, Any]) -> None:
    """Change ``state`` in place a few times, as an env would."""
    for _ in range(rng.randint(0, 4)):
        places = _containers(state, [])
        c = rng.choice(places)
        r = rng.random()
        if isinstance(c, dict):
            keys = list(c)
            if keys and r < 0.5:
                k = rng.choice(keys)
                old = c[k]
                # often a value that compares equal across types, or the same value as a new object
                swaps = {1: [1.0, True], 0: [0.0, -0.0, False], 1.0: [1, True]}
                if HOSTILE and type(old) in (int, float, bool) and not (type(old) is float and math.isnan(old)) \
                        and old in swaps and rng.random() < 0.6:
                    c[k] = rng.choice(swaps[old])
                elif HOSTILE and type(old) is float and math.isnan(old) and rng.random() < 0.6:
                    c[k] = float("nan")
                elif isinstance(old, list) and rng.random() < 0.5:
                    c[k] = tuple(old)  # a tuple where a list was, equal elements
                else:
                    c[k] = _value(rng, 2)
            elif keys and r < 0.6:
                del c[rng.choice(keys)]
            elif r < 0.75:
                c[f"n{rng.randint(0, 20)}"] = _value(rng, 2)
            elif keys and r < 0.85:
                # a sub-object shared with another place: later changes through one show in both (never one
                # that holds ``c``: no cycles)
                other = rng.choice(places)
                inside = _containers(other, [])
                if len(inside) <= 4 and all(x is not c for x in inside):
                    c[rng.choice(keys)] = other
            elif keys and HOSTILE:
                k = rng.choice(keys)
                c[k] = c.pop(k)  # same keys, another order
        else:
            if c and r < 0.3:
                c.pop(0)  # a queue: drop at the front, append at the back
                c.append(_value(rng, 2))
            elif c and r < 0.5:
                c[rng.randrange(len(c))] = _leaf(rng)
            elif r < 0.65:
                c.insert(rng.randint(0, len(c)), _leaf(rng))
            elif c and r < 0.8:
                del c[rng.randrange(len(c))]
            elif c and r < 0.9:
                i = rng.randrange(len(c))
                c[i] = float("nan") if HOSTILE and rng.random() < 0.5 else copy_state(c[i])  # equal, new object
            else:
                c.append(_leaf(rng))


def _pair(seed: int, steps: int, hostile: bool = True) -> None:
    global HOSTILE
    HOSTILE = hostile
    try:
        _pair_run(seed, steps)
    finally:
        HOSTILE = True


def _pair_run(seed: int, steps: int) -> None:
    rng = random.Random(seed)
    live: Any = _dict(rng, 0, wide=rng.random() < 0.7)
    earlier: list[Any] = []
    new_t, ref_t = fast.StateTracker(accelerated=False), ref.StateTracker()
    new_t.reset(live)
    ref_t.reset(live)
    assert canon(new_t.state) == canon(ref_t.state)
    for step in range(steps):
        r = rng.random()
        if r < 0.1 and earlier:
            state = rng.choice(earlier)  # a state object handed out before (aliasing an earlier one)
        elif r < 0.15:
            state = _value(rng, 0)  # anything, even not a dict
        else:
            _mutate(rng, live)
            if len(_containers(live, [])) > 60:  # keep the states small: the test is about variety
                live = _dict(rng, 0, wide=True)
            state = live
            if rng.random() < 0.3:
                earlier.append(copy_state(live))
        prev = copy_state(new_t.state)
        try:
            want = ref_t.update(state)
        except RecursionError:  # a container made to hold itself: both must fail alike
            want = "raised"
            ref_t.reset(copy_state(live) if state is live else state)
        try:
            got = new_t.update(state)
        except RecursionError:
            got = "raised"
            new_t.reset(copy_state(live) if state is live else state)
        if got == "raised" or want == "raised":
            assert got == want, f"seed {seed} step {step}"
            continue
        assert stored(new_t.state) == stored(state), f"seed {seed} step {step}: the new walk's copy is exact"
        assert rebuilds(prev, got, state), f"seed {seed} step {step}: the new walk's rows rebuild the state"
        if stored(ref_t.state) != stored(state):
            STRICTER.append(f"seed {seed} step {step}")  # e.g. a key deleted and added again: a new order
        elif not HOSTILE:
            assert same_rows(got, want), f"seed {seed} step {step}"
        ref_t.reset(copy_state(new_t.state))  # both walks go on from the same (exact) copy
        if state is live:
            # the pure diff agrees too, from the previous copy to the new state, and with shared objects
            before = earlier[-1] if earlier else copy_state(live)
            want_rows, got_rows = ref.diff_rows(before, state), fast.diff_rows(before, state)
            assert rebuilds(before, got_rows, state), f"seed {seed}"
            if not HOSTILE and rebuilds(before, want_rows, state):
                assert same_rows(got_rows, want_rows), f"seed {seed}"
            assert fast.diff_rows(state, state) == [] == ref.diff_rows(state, state)


@settings(max_examples=40, deadline=None)  # TRAJREC_HYPOTHESIS=explore draws new ones each run (tests/conftest.py)
@given(st.integers(0, 2**32 - 1))
def test_tracker_rows_match_the_previous_walk_on_random_states(seed):
    _pair(seed, 20, hostile=False)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_the_new_walk_is_exact_on_random_hostile_states(seed):
    _pair(seed, 20)


@pytest.mark.heavy
def test_the_new_walk_is_exact_on_many_more_states():
    """The two fuzz tests above at 10x their examples (the default suite keeps a few for time)."""
    for seed in range(400):
        _pair(seed, 20, hostile=False)
        _pair(seed, 20)


def test_tracker_rows_match_on_a_fixed_set_of_long_runs():
    STRICTER.clear()
    for seed in range(3):
        _pair(seed, 80, hostile=False)
        _pair(seed, 80)
    # the fuzzer's swaps (1 for 1.0, -0.0 for 0.0, a key moved to the end) reach the cases the reference missed
    assert len(STRICTER) >= 8, STRICTER


def _wide_states(rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    files = {f"f{i}": {"size": i, "text": f"t{i}", "tags": ["a"], "mode": "rw"} for i in range(20)}
    old = {"files": files, "log": [f"x{i}" for i in range(40)], "n": 0}
    new = copy_state(old)
    for _ in range(rng.randint(1, 4)):
        k = f"f{rng.randrange(20)}"
        new["files"][k][rng.choice(["size", "text", "tags", "mode"])] = _leaf(rng)
    if rng.random() < 0.5:
        new["log"].pop(0)
        new["log"].append(_leaf(rng))
    if rng.random() < 0.3:
        new["log"][rng.randrange(len(new["log"]))] = float("nan")
    return old, new


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_diff_rows_match_on_wide_nested_dicts_and_long_lists(seed):
    old, new = _wide_states(random.Random(seed))
    _same_where_exact(old, new)


def test_hostile_pairs_named_in_the_brief():
    nan = float("nan")
    shared = [1, 2]
    wide = {f"k{i}": f"v{i}" for i in range(10)}
    cases = [
        ({"x": nan}, {"x": float("nan")}),
        ({"x": 0.0}, {"x": -0.0}),
        ({"x": 1}, {"x": True}),
        ({"x": 1}, {"x": 1.0}),
        ({"x": [1, 2]}, {"x": (1, 2)}),
        ({"x": np.zeros(3)}, {"x": np.zeros(3, dtype="<f4")}),
        ({"x": np.array([nan])}, {"x": np.array([nan])}),
        ({"a": shared, "b": shared}, {"a": shared, "b": [1, 2, 3]}),
        ({**wide, "w": {"x": 1}}, {**wide, "w": {"x": 1.0}}),
        ({**wide, "w": [1]}, {**wide, "w": [True]}),
        ({**wide, "w": {**wide}}, {**wide, "w": {**wide, "k3": Name("v3")}}),
        ({**wide, "w": {**wide}}, {**wide, "w": collections.OrderedDict(wide)}),
        ({"q": [float(i) for i in range(40)]}, {"q": [float(i) for i in range(1, 40)] + [nan]}),
        ({"q": [nan] * 20 + ["a"]}, {"q": [float("nan")] * 20 + ["b"]}),
        ({"q": [1] * 30}, {"q": [1] * 15 + [True] + [1] * 14}),
        ({"q": list(range(40))}, {"q": list(range(40))[:20] + [20.0] + list(range(40))[21:]}),
    ]
    exact = [_same_where_exact(old, new) for old, new in cases]
    # the reference missed -0.0 for 0.0, 1.0 for 1 inside a wide dict's child, True for 1 inside a list (short
    # or long) and 20.0 for 20 inside a long list; its own rows are kept wherever it was exact
    assert [i for i, ok in enumerate(exact) if not ok] == [1, 8, 9, 14, 15], exact


def _same_where_exact(old: Any, new: Any) -> bool:
    """Both walks' rows and copies agree when the reference's rows rebuild ``new``; the new walk's always do.
    Returns whether the reference was exact."""
    want, got = ref.diff_rows(old, new), fast.diff_rows(old, new)
    a, b = fast.StateTracker(accelerated=False), ref.StateTracker()
    a.reset(old)
    b.reset(old)
    got_t, want_t = a.update(new), b.update(new)
    assert rebuilds(old, got, new) and rebuilds(old, got_t, new), (old, new)
    assert stored(a.state) == stored(new)
    if not rebuilds(old, want, new):
        return False
    assert same_rows(got, want), (old, new)
    assert same_rows(got_t, want_t), (old, new)
    assert stored(a.state) == stored(b.state)
    return True


def _dicts_in(v: Any, out: set[int]) -> set[int]:
    if isinstance(v, dict):
        out.add(id(v))
        for x in v.values():
            _dicts_in(x, out)
    elif isinstance(v, list):
        for x in v:
            _dicts_in(x, out)
    return out


def test_the_tracker_keeps_no_dict_its_copy_has_dropped():
    # Wide dicts (the C scan remembers them) that leave the state by every route: a list item removed, a dict
    # key removed, a type change; the tracker's table must hold only dicts still in its copy (memory stays flat).
    def page(i: int) -> dict[str, Any]:
        return {f"k{j}": "x" * 100 + str(i) for j in range(10)}

    live: dict[str, Any] = {"pages": [page(i) for i in range(3)], "side": {"a": page(100)}, "one": page(200)}
    tracker = fast.StateTracker(accelerated=False)
    tracker.reset(live)
    dropped = 0
    for step in range(30):
        # changes inside the wide dicts, so that the scan runs on them and the tracker remembers them
        live["pages"][1]["k1"] = str(step)
        for d in live["side"].values():
            d["k2"] = str(step)
        if isinstance(live["one"], dict):
            live["one"]["k3"] = str(step)
        tracker.update(live)
        before = len(tracker._known)
        if step % 3 == 0:
            del live["pages"][1]  # a list item removed
            live["pages"].append(page(step))
        elif step % 3 == 1:
            live["side"].pop(next(iter(live["side"])))  # a dict key removed
            live["side"][f"b{step}"] = page(step)
        else:
            live["one"] = [1] if isinstance(live["one"], dict) else page(step)  # a type change
        tracker.update(live)
        dropped += before > len(tracker._known)
        reachable = _dicts_in(tracker.state, set())
        assert all(id(entry[0]) in reachable for entry in tracker._known.values()), f"step {step}"
        assert canon(tracker.state) == canon(live)
    assert dropped >= 20  # the routes above were taken with remembered dicts


def _safe_canon(v: Any, depth: int = 0) -> Any:
    """``canon`` that also takes the hostile objects of ``hostile_values`` (whose repr may raise or never end)."""
    t = type(v)
    if depth > 60:
        return ("deep",)
    if isinstance(v, dict):
        return (t.__name__, [(_safe_canon(k, depth + 1), _safe_canon(x, depth + 1)) for k, x in dict.items(v)])
    if isinstance(v, (list, tuple)):
        return (t.__name__, [_safe_canon(x, depth + 1) for x in v])
    if t in (str, bytes, int, bool, type(None)) or isinstance(v, (float, np.ndarray)):
        return canon(v, depth)
    return (t.__name__,)


def _outcome(mod: Any, old: Any, new: Any) -> Any:
    tracker = mod.StateTracker(accelerated=False) if mod is fast else mod.StateTracker()
    try:
        tracker.reset(old)
        rows = tracker.update(new)
    except Exception as exc:  # noqa: BLE001  (cycles and deep nesting raise in both walks alike)
        return ("raised", type(exc).__name__)
    try:
        pure = mod.diff_rows(old, new)
    except Exception as exc:  # noqa: BLE001
        pure = ("raised", type(exc).__name__)
    return _safe_canon(rows), _safe_canon(tracker.state), _safe_canon(pure)


def _fewer(got: Any, want: Any) -> bool:
    """The same tracked copy, and rows that leave out some of the reference's: a value its ``==`` could not call
    equal to itself (a structured numpy scalar, a tuple holding a NaN array) that the new walk finds the same."""
    if got[0] == "raised" or want[0] == "raised" or got[1] != want[1]:
        return False

    def sub(a: Any, b: Any) -> bool:
        rest = iter(b[1])
        return a[0] == b[0] and all(any(x == y for y in rest) for x in a[1])  # a's rows appear in b, in order

    return sub(got[0], want[0]) and (sub(got[2], want[2]) if got[2][0] != "raised" else got[2] == want[2])


@pytest.mark.filterwarnings("ignore")  # numpy's own warnings comparing hostile arrays, in both walks alike
def test_the_hostile_values_of_the_recorder_tests_give_the_same_rows():
    from hostile_values import values

    cases = [c for c in values() if "deep" not in c.name and "huge" not in c.name and "slow" not in c.name]
    wide = {f"k{i}": f"v{i}" for i in range(9)}
    for a in cases:
        for b in cases[::7] + [a]:
            for wrap in (lambda x: {**wide, "x": x}, lambda x: {"l": ["s", x, "t"]},
                         lambda x: {**wide, "w": {**wide, "x": x}}):
                old, new = wrap(a.make()), wrap(b.make())
                got, want = _outcome(fast, old, new), _outcome(ref, old, new)
                if want[0] == "raised" and got[0] != "raised" and a.name == b.name == "bad-dict-subclass":
                    # the reference asked the subclass's own items(), which raises; the walk now reads the
                    # dict's own items, as the codec stores it: no change, and the copy is the state as stored
                    assert got[0] == ("list", []) and got[1] == _safe_canon(unpackb(packb(new)))
                    continue
                if got == ("raised", "RecursionError") and "np-object-cycle" in (a.name, b.name):
                    # an object array holding itself: its elements are copied by value now (the reference shared
                    # them, so changes inside went unrecorded), which meets the cycle as a list holding itself
                    # does; the Recorder then stores the state with the cycle marked (test_hostile_values.py)
                    continue
                assert got == want or _fewer(got, want), (a.name, b.name)


@pytest.mark.filterwarnings("ignore")
def test_a_remembered_wide_dict_still_checks_the_new_childrens_types():
    # The tracker skips its own side's checks for a dict it scanned before (diff._Known); the env's side is still
    # checked, so a child replaced by an equal value of a type the C scan cannot judge (a dict subclass holding
    # 1.0 for 1, an array for a list, a str subclass) gets the child-by-child walk's rows.
    wide = {f"k{i}": f"v{i}" for i in range(9)}
    swaps = [
        ({"a": 1}, collections.OrderedDict(a=1.0)),
        ({"a": 1}, collections.defaultdict(list, a=True)),
        ([1], np.array([1])),
        ([1.0], np.array([1], dtype="<i4")),
        ("v", Name("v")),
        ([1, 2], collections.UserList([1, 2.0])),
        ({"a": 1}, collections.UserDict(a=1.0)),
    ]
    for before, after in swaps:
        states = [{**wide, "x": before}, {**wide, "x": before, "k0": "changed"}, {**wide, "x": after, "k0": "changed"}]
        a, b = fast.StateTracker(accelerated=False), ref.StateTracker()
        a.reset(states[0])
        b.reset(states[0])
        for n, s in enumerate(states[1:]):
            if n == 1:
                assert a._known  # the scan remembered the dict: the path under test is taken now
            assert _safe_canon(a.update(s)) == _safe_canon(b.update(s)), (before, after)
            assert _safe_canon(a.state) == _safe_canon(b.state)
