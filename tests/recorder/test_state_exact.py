"""``ep.state_at(i)`` is exactly the env's state after step ``i``: types, float bits, key order, set element types.

A seeded fuzzer drives a real :class:`~trajrec.Recorder` over an env whose state it changes in place or replaces,
at any nesting, with swaps that ``==`` cannot see: ``0.0``/``-0.0``, ``1``/``True``/``1.0``, a numpy scalar and
the Python number (or a tuple, or an array) it equals, ``frozenset({1})``/``frozenset({1.0})``, arrays that differ
only in a zero's sign or an object element's type, dict keys of equal value and another type, and dict key order.
Each step's expected state is a ``copy.deepcopy`` taken right after the step; the episode file is then read back
and every ``state_at(i)`` compared with :func:`strict` (type names, float bits, array dtype/shape/bytes, key
order), never with ``==``.
"""

from __future__ import annotations

import copy
import random
import struct
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from trajrec import Recorder, open_episode


def strict(v: Any, depth: int = 0) -> Any:
    """A form of ``v`` that differs whenever the type, a float's bits (NaN payloads aside), an array's
    dtype/shape/bytes, a dict's key order or a set's element types differ."""
    if depth > 80:
        return ("deep",)
    t = type(v)
    if t is float:
        return ("float", "nan" if v != v else struct.pack("<d", v))
    if t is complex:
        return ("complex", strict(v.real, depth + 1), strict(v.imag, depth + 1))
    if isinstance(v, np.ndarray):
        if v.dtype.hasobject:
            return (t.__name__, "O", v.shape, [strict(x, depth + 1) for x in v.ravel().tolist()])
        raw = np.ascontiguousarray(v)
        if v.dtype.kind in "fc":  # NaN payloads need not survive; a NaN's place and every other bit must
            nan = np.isnan(raw)
            raw = np.where(nan, np.zeros((), v.dtype), raw)
            return (t.__name__, v.dtype.str, v.shape, raw.tobytes(), nan.tobytes())
        return (t.__name__, v.dtype.str, v.shape, raw.tobytes())
    if isinstance(v, np.generic):
        if v.dtype.kind in "fc" and v != v:
            return (t.__name__, v.dtype.str, "nan")
        return (t.__name__, v.dtype.str, v.tobytes())
    if isinstance(v, dict):
        return (t.__name__, [(strict(k, depth + 1), strict(x, depth + 1)) for k, x in v.items()])
    if isinstance(v, (list, tuple)):
        return (t.__name__, [strict(x, depth + 1) for x in v])
    if isinstance(v, (set, frozenset)):
        return (t.__name__, sorted(repr(strict(x, depth + 1)) for x in v))
    return (t.__name__, repr(v))


# Values that compare equal to each other (==) but are stored differently: the fuzzer swaps within a group.
# (Conversions the codec documents, np.str_ to str or a subclass to its base type, are left out: they are kept
# as stored, not as given.)
_EQUAL_GROUPS: list[list[Any]] = [
    [0, 0.0, -0.0, False, np.int64(0), np.float32(0.0), np.float64(-0.0), np.uint8(0)],
    [1, 1.0, True, np.int64(1), np.int32(1), np.float64(1.0), np.float32(1.0), (1,), np.array([1]),
     np.array([[1.0]]), np.array(1)],
    [2, 2.0, np.int8(2), np.float16(2.0), [2], (2.0,)],
    [frozenset({1}), frozenset({1.0}), frozenset({True}), {1}, {1.0}],
]


def _hostile_leaf(rng: random.Random) -> Any:
    group = rng.choice(_EQUAL_GROUPS)
    return copy.deepcopy(rng.choice(group))


def _leaf(rng: random.Random) -> Any:
    r = rng.random()
    if r < 0.45:
        return _hostile_leaf(rng)
    if r < 0.55:
        return np.array([rng.choice([0.0, -0.0, 1.0]) for _ in range(rng.randint(1, 3))])
    if r < 0.6:
        return np.array([rng.choice([1, True, 1.0, "x"]) for _ in range(rng.randint(1, 2))], dtype=object)
    if r < 0.65:
        return float("nan")
    return rng.choice([None, "x", "y", "", b"b", 7, 3.5, (1, 2), ("a",)])


def _value(rng: random.Random, depth: int) -> Any:
    r = rng.random()
    if depth >= 3 or r < 0.5:
        return _leaf(rng)
    if r < 0.75:
        return _dict(rng, depth + 1)
    if r < 0.92:
        return [_value(rng, depth + 1) for _ in range(rng.choice([0, 1, 3, 9, 20]))]
    return tuple(_value(rng, depth + 1) for _ in range(rng.randint(0, 3)))


def _key(rng: random.Random) -> Any:
    return rng.choice(["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", 1, 1.0, True, 0.0, -0.0, (1,), (1.0,)])


def _dict(rng: random.Random, depth: int) -> dict[Any, Any]:
    n = rng.choice([0, 2, 4, 9, 12])  # 8 keys or more: the wide-dict scan runs too
    out: dict[Any, Any] = {}
    for i in range(n):
        out[f"k{i}" if rng.random() < 0.7 else _key(rng)] = _value(rng, depth)
    return out


def _places(v: Any, out: list[Any]) -> list[Any]:
    if len(out) > 300:
        return out
    if type(v) is dict or type(v) is list:
        out.append(v)
        for x in (v.values() if type(v) is dict else v):
            _places(x, out)
    elif type(v) is tuple:
        for x in v:
            _places(x, out)
    elif isinstance(v, np.ndarray) and v.size and (v.dtype.kind == "f" or v.dtype.hasobject):
        out.append(v)
    return out


def _swap(rng: random.Random, old: Any) -> Any:
    """A value equal to ``old`` where possible (the swaps ``==`` misses), else anything."""
    for group in _EQUAL_GROUPS:
        for g in group:
            try:
                same = type(g) is type(old) and bool(np.all(g == old)) and np.shape(g) == np.shape(old)
            except Exception:  # noqa: BLE001
                same = False
            if same:
                return copy.deepcopy(rng.choice(group))
    return _value(rng, 2)


def _mutate(rng: random.Random, state: dict[str, Any]) -> None:
    for _ in range(rng.randint(1, 3)):
        c = rng.choice(_places(state, []))
        r = rng.random()
        if isinstance(c, np.ndarray):
            i = rng.randrange(c.size)
            flat = c.reshape(-1)
            if c.dtype.hasobject:
                flat[i] = rng.choice([1, True, 1.0, np.int64(1), (1,)])
            else:
                flat[i] = -flat[i] if flat[i] == 0 else 0.0  # a zero's sign, in place
        elif type(c) is dict:
            keys = list(c)
            if keys and r < 0.55:
                k = rng.choice(keys)
                c[k] = _swap(rng, c[k])
            elif keys and r < 0.7:
                k = rng.choice(keys)
                c[k] = c.pop(k)  # same keys, same values, another order
            elif keys and r < 0.78:
                k = rng.choice(keys)
                v = c.pop(k)
                twins = {1: [1.0, True], 0: [0.0, -0.0, False], 0.0: [0, -0.0], (1,): [(1.0,), (True,)]}
                try:
                    choices = twins.get(k, [k])
                except TypeError:
                    choices = [k]
                c[rng.choice(choices)] = v  # the same key by value, of another type or sign
            elif keys and r < 0.85:
                del c[rng.choice(keys)]
            else:
                c[_key(rng) if rng.random() < 0.3 else f"n{rng.randint(0, 30)}"] = _value(rng, 2)
        else:
            if c and r < 0.5:
                i = rng.randrange(len(c))
                c[i] = _swap(rng, c[i])
            elif c and r < 0.6:
                c.pop(0)  # a queue: drop at the front, append at the back
                c.append(_leaf(rng))
            elif r < 0.8:
                c.insert(rng.randint(0, len(c)), _leaf(rng))
            elif c:
                del c[rng.randrange(len(c))]


class FuzzStateEnv(gym.Env):
    """Each step changes the live state in place (or hands out a new one); ``expected`` keeps a deep copy."""

    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, seed: int, steps: int) -> None:
        self.rng = random.Random(seed)
        self.steps = steps
        self.state: Any = None
        self.expected: list[Any] = []

    def state_dict(self) -> Any:
        return self.state

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.t = 0
        self.state = {f"k{i}": _value(self.rng, 1) for i in range(self.rng.choice([3, 10]))}
        self.expected = [copy.deepcopy(self.state)]
        return 0, {}

    def step(self, action: int):
        self.t += 1
        r = self.rng.random()
        if r < 0.1:
            self.state = copy.deepcopy(self.state)  # a fresh object of equal value: nothing shared
            _mutate(self.rng, self.state)
        elif r < 0.15:
            self.state = {f"k{i}": _value(self.rng, 1) for i in range(self.rng.choice([3, 10]))}
        else:
            _mutate(self.rng, self.state)
        self.expected.append(copy.deepcopy(self.state))
        return 0, 0.0, False, self.t >= self.steps, {}


def _run(tmp_path: Path, seed: int, steps: int = 40) -> list[str]:
    env = FuzzStateEnv(seed, steps)
    rec = Recorder(env, tmp_path / f"run{seed}", frame_steps=16)
    rec.reset(seed=seed)
    done = False
    while not done:
        _o, _r, term, trunc, _i = rec.step(0)
        done = term or trunc
    rec.close()
    ep = open_episode(rec.episode_path)
    wrong = []
    for i in range(-1, steps):
        got, want = ep.state_at(i), env.expected[i + 1]
        if strict(got) != strict(want):
            wrong.append(f"seed {seed} state_at({i}):\n  got  {got!r}\n  want {want!r}")
    return wrong


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's comparisons of the hostile arrays in _swap
def test_state_at_is_exactly_the_envs_state_under_hostile_swaps(tmp_path):
    wrong: list[str] = []
    for seed in range(60):
        wrong += _run(tmp_path, seed)
    assert not wrong, f"{len(wrong)} states rebuilt wrong; first:\n" + "\n".join(wrong[:3])


@pytest.mark.parametrize("old,new", [
    ({"x": 0.0}, {"x": -0.0}),
    ({"x": 1}, {"x": True}),
    ({"l": [1, 2.0]}, {"l": [True, 2]}),
    ({"t": (1,)}, {"t": (1.0,)}),
    ({"d": {"a": 1}}, {"d": {"a": np.int64(1)}}),
    ({"a": [np.int32(1)]}, {"a": [(1,)]}),
    ({"c": {"k": np.float32(2)}}, {"c": {"k": np.array([[2.0]])}}),
    ({"f": frozenset({1})}, {"f": frozenset({1.0})}),
    ({"f": np.zeros(3)}, {"f": np.array([0.0, -0.0, 0.0])}),
    ({"o": np.array([1, "x"], dtype=object)}, {"o": np.array([True, "x"], dtype=object)}),
    ({"x": {"a": 1, "b": 2}}, {"x": {"b": 2, "a": 1}}),
    ({1: "v"}, {1.0: "v"}),
    ({"w": {f"k{i}": {"n": i} for i in range(9)}}, {"w": {**{f"k{i}": {"n": i} for i in range(8)}, "k8": {"n": 8.0}}}),
    ({"w": {f"k{i}": [i] for i in range(9)}}, {"w": {**{f"k{i}": [i] for i in range(8)}, "k8": [8.0]}}),
])
def test_each_swap_named_in_the_finding_is_recorded(tmp_path, old, new):
    class Env(gym.Env):
        observation_space = gym.spaces.Discrete(2)
        action_space = gym.spaces.Discrete(2)

        def state_dict(self):
            return self.s

        def reset(self, *, seed=None, options=None):
            self.s = copy.deepcopy(old)
            return 0, {}

        def step(self, action):
            self.s = copy.deepcopy(new)
            return 0, 0.0, True, False, {}

    rec = Recorder(Env(), tmp_path / "r")
    rec.reset(seed=0)
    rec.step(0)
    rec.close()
    ep = open_episode(rec.episode_path)
    assert strict(ep.state_at(-1)) == strict(old)
    assert strict(ep.state_at(0)) == strict(new)


class WideEnv(gym.Env):
    """A state shaped like a tool env's: a wide dict of small dicts of leaves and lists of leaves, changed in place
    (the shape the tracker keeps a memo of, ``diff._Memo``), with the swaps ``==`` misses at every level."""

    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, seed: int, steps: int) -> None:
        self.rng = random.Random(seed)
        self.steps = steps
        self.expected: list[Any] = []

    def state_dict(self) -> Any:
        return self.state

    def _leaf(self) -> Any:
        return self.rng.choice([0, 0.0, -0.0, False, 1, 1.0, True, "a", "b", b"a", None, 2.5, float("nan")])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        files = {f"f{i}": {"size": i, "mode": "rw", "text": f"t{i}", "tags": ["a", "b"], "pair": (1, 2),
                           "s1": "same", "s2": "same"} for i in range(12)}
        self.state = {"files": files, "n": 0}
        self.expected = [copy.deepcopy(self.state)]
        return 0, {}

    def step(self, action):
        self.t += 1
        rng, files = self.rng, self.state["files"]
        for _ in range(rng.randint(0, 3)):
            name = rng.choice(list(files))
            f = files[name]
            r = rng.random()
            if r < 0.3:
                k = rng.choice(list(f))
                if not isinstance(f[k], (list, tuple)):
                    f[k] = self._leaf()  # often equal to the old value in another type or sign
            elif r < 0.45 and f["tags"]:
                i = rng.randrange(len(f["tags"]))
                f["tags"][i] = self._leaf()  # in place, inside a list
            elif r < 0.55:
                other = files[rng.choice(list(files))]
                f["tags"].append("x")  # one list grows while another shrinks: the same total length
                if other["tags"]:
                    other["tags"].pop()
            elif r < 0.65:
                f["pair"] = tuple(self._leaf() for _ in range(2))
            elif r < 0.7:
                k = rng.choice(list(f))
                f[k] = f.pop(k)  # the same keys in another order
            elif r < 0.75 and "s1" in f:
                f["s1"] = f.pop("s1")  # two keys holding one object change places: only the keys show it
            elif r < 0.82:
                other = files[rng.choice(list(files))]
                if "extra" in f:
                    del f["extra"]
                    other["extra"] = 1  # a key leaves one child and comes to another: the same total
            elif r < 0.885 and self.t % 20 == 0:
                files[name] = copy.deepcopy(f)  # a new child object of equal value (rarely: the memo waits)
            else:
                f["tags"] = [self._leaf()]
        self.state["n"] = self.t
        self.expected.append(copy.deepcopy(self.state))
        return 0, 0.0, False, self.t >= self.steps, {}


def test_a_wide_dict_changed_in_place_is_rebuilt_exactly_at_every_step(tmp_path):
    wrong = []
    for seed in range(25):
        env = WideEnv(seed, 60)
        rec = Recorder(env, tmp_path / f"w{seed}", frame_steps=32)
        rec.reset(seed=seed)
        done = False
        while not done:
            done = rec.step(0)[3]
        rec.close()
        ep = open_episode(rec.episode_path)
        for i in range(-1, 60):
            if strict(ep.state_at(i)) != strict(env.expected[i + 1]):
                wrong.append(f"seed {seed} state_at({i}): {ep.state_at(i)!r} != {env.expected[i + 1]!r}")
    assert not wrong, f"{len(wrong)} wrong; first:\n" + "\n".join(wrong[:2])


def test_the_wide_dict_memo_is_used(tmp_path):
    # the test above takes the memo's path (not only the C scan): a tracker on the same states keeps one
    from trajrec.recorder.diff import StateTracker, _Memo

    env = WideEnv(0, 19)
    env.reset()
    tracker = StateTracker(accelerated=False)  # (the memo belongs to the pure walk; the C pass needs none)
    tracker.reset(env.state_dict())
    used = 0
    for _ in range(19):  # (no child replaced by a new object before step 20)
        env.step(0)
        tracker.update(env.state_dict())
        used += any(type(e[2]) is _Memo for e in tracker._known.values())
    assert used >= 10
