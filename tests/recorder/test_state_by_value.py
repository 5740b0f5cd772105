"""State is recorded by value: an env that hands out its live state and mutates every container kind in place
still reads back, step by step, as it was after each step (and replays without divergence)."""

from __future__ import annotations

import copy
import dataclasses
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trajrec.recorder import Recorder, Unencodable, open_episode
from trajrec.recorder.codec import bounded_repr
from trajrec.recorder.diff import StateTracker


@dataclasses.dataclass
class Point:
    x: int
    tags: list[str]


# One in-place mutation per container kind; each op takes (state, n) and changes state without rebinding it.
def _mut_list(s: dict[str, Any], n: int) -> None:
    s["log"].append(n)
    if len(s["log"]) > 3:
        del s["log"][0]


def _mut_set(s: dict[str, Any], n: int) -> None:
    s["seen"].add(n)
    s["seen"].discard(n - 2)


def _mut_bytearray(s: dict[str, Any], n: int) -> None:
    s["buf"].extend(bytes([n % 256]))
    s["buf"][0] = n % 256


def _mut_array(s: dict[str, Any], n: int) -> None:
    s["grid"][n % 3, n % 2] += 1.5
    s["grid"][0, 0] = np.nan if n % 4 == 0 else n


def _mut_masked(s: dict[str, Any], n: int) -> None:
    s["masked"].mask[n % 3] = not s["masked"].mask[n % 3]
    s["masked"].data[n % 3] = n


def _mut_struct(s: dict[str, Any], n: int) -> None:
    s["rec"]["a"][n % 2] = n
    s["rec"]["p"]["y"][0] = -n


def _mut_dataclass(s: dict[str, Any], n: int) -> None:
    s["point"].x = n
    s["point"].tags.append(str(n))


def _mut_nested(s: dict[str, Any], n: int) -> None:
    s["nested"]["deep"][0]["k"].append({n})
    s["nested"]["deep"][0]["k"][0].add(n)


def _mut_tuple_inner(s: dict[str, Any], n: int) -> None:
    s["pair"][1].append(n)  # a list inside a tuple: the tuple is immutable, its content is not


def _mut_frozenset_swap(s: dict[str, Any], n: int) -> None:
    s["frozen"] = s["frozen"] | {n}  # rebinding, for the kind that cannot change in place


def _mut_dict_keys(s: dict[str, Any], n: int) -> None:
    s["files"][f"f{n % 4}"] = "x" * n
    s["files"].pop(f"f{(n + 2) % 4}", None)


MUTATIONS = [_mut_list, _mut_set, _mut_bytearray, _mut_array, _mut_masked, _mut_struct, _mut_dataclass,
             _mut_nested, _mut_tuple_inner, _mut_frozenset_swap, _mut_dict_keys]


def _initial_state() -> dict[str, Any]:
    rec = np.zeros(2, dtype=[("a", "<i8"), ("p", [("y", "<f4", (2,))])])
    return {
        "log": [], "seen": {0}, "buf": bytearray(b"\x00"), "grid": np.zeros((3, 2)),
        "masked": np.ma.masked_array([1, 2, 3], mask=[False, True, False]), "rec": rec,
        "point": Point(0, []), "nested": {"deep": [{"k": [set()]}]}, "pair": ("p", []),
        "frozen": frozenset(), "files": {},
    }


class MutatingEnv(gym.Env):
    """Hands out its live state from ``state_dict`` and changes it in place at every step."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, plan: list[list[int]] | None = None) -> None:
        self.observation_space = gym.spaces.Discrete(1000)
        self.action_space = gym.spaces.Discrete(len(MUTATIONS))
        self.plan = plan or []
        self.state: dict[str, Any] = {}
        self.n = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.state = _initial_state()
        self.n = 0
        return 0, {}

    def state_dict(self) -> dict[str, Any]:
        return self.state  # live, on purpose

    def step(self, action: int):
        self.n += 1
        ops = self.plan[self.n - 1] if self.n - 1 < len(self.plan) else [int(action)]
        for op in ops:
            MUTATIONS[op](self.state, self.n)
        return self.n, 0.0, False, False, {}


def _as_stored(value: Any) -> Any:
    """What the codec keeps of a value: bytearrays as bytes, dataclasses as their marked repr."""
    if isinstance(value, dict):
        return {k: _as_stored(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_stored(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_as_stored(v) for v in value)
    if isinstance(value, bytearray):
        return bytes(value)
    if dataclasses.is_dataclass(value):
        return Unencodable(f"{type(value).__module__}.{type(value).__qualname__}", bounded_repr(value))
    return value


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ma.MaskedArray):
        return (np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b))
                and np.asarray(a.data).tobytes() == np.asarray(b.data).tobytes())
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    return bool(a == b)


def _record(tmp_path, plan: list[list[int]]):
    env = Recorder(MutatingEnv(plan), tmp_path, frame_steps=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the dataclass is stored as a marked fallback, with its one warning
        env.reset(seed=0)
        expected = [copy.deepcopy(env.unwrapped.state)]
        for _ in plan:
            env.step(0)
            expected.append(copy.deepcopy(env.unwrapped.state))
        env.close()
    return env.episode_path, expected


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.integers(0, len(MUTATIONS) - 1), min_size=1, max_size=3), min_size=1, max_size=10))
def test_state_at_each_step_equals_a_deepcopy_taken_then(tmp_path_factory, plan):
    path, expected = _record(tmp_path_factory.mktemp("ep"), plan)
    ep = open_episode(path)
    for i in range(-1, len(plan)):
        assert _same(ep.state_at(i), _as_stored(expected[i + 1])), f"state_at({i})"


def test_every_container_kind_mutated_in_place_every_step(tmp_path):
    plan = [list(range(len(MUTATIONS)))] * 9  # frames of 4 steps: snapshots and diffs both exercised
    path, expected = _record(tmp_path, plan)
    ep = open_episode(path)
    for i in range(-1, len(plan)):
        assert _same(ep.state_at(i), _as_stored(expected[i + 1])), f"state_at({i})"
    # each step's diff names what changed, so a step's rows are not empty although the objects are the same
    assert all(step.diff for step in ep)


def test_tracker_shares_no_mutable_object_with_the_live_state():
    live = _initial_state()
    tracker = StateTracker()
    tracker.reset(live)
    ids = set()

    def walk(v: Any) -> None:
        if not isinstance(v, (str, int, float, bytes, type(None), frozenset, np.generic)):
            ids.add(id(v))
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, (list, tuple, set)):
            for x in v:
                walk(x)

    walk(live)
    mine: list[Any] = []

    def collect(v: Any) -> None:
        mine.append(v)
        if isinstance(v, dict):
            for x in v.values():
                collect(x)
        elif isinstance(v, (list, tuple, set)):
            for x in v:
                collect(x)

    collect(tracker.state)
    assert not [v for v in mine if id(v) in ids and not isinstance(v, tuple)]
    for op in MUTATIONS:
        op(live, 7)
    assert tracker.update(live)  # every change is seen, because the tracker compares against its own copy


def test_replaying_the_mutating_env_reports_no_divergence(tmp_path):
    from trajrec.replay.replayer import replay_episode

    plan = [list(range(len(MUTATIONS)))] * 6
    path, _expected = _record(tmp_path, plan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = replay_episode(path, env=Recorder(MutatingEnv(plan), tmp_path / "unused").env)
    assert not report.diverged, str(report)


@pytest.mark.parametrize("kind", ["OrderedDict", "defaultdict", "namedtuple"])
def test_container_subclasses_are_no_change_when_equal(kind):
    import collections

    make = {
        "OrderedDict": lambda: collections.OrderedDict(a=1, b=[1]),
        "defaultdict": lambda: collections.defaultdict(list, a=[1]),
        "namedtuple": lambda: collections.namedtuple("P", "x y")(1, [2]),
    }[kind]
    tracker = StateTracker()
    tracker.reset({"v": make()})
    assert tracker.update({"v": make()}) == []
