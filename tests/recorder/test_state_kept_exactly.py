"""State recorded exactly in cases a hostile user found (FINDINGS10), with and without the C first pass.

* a numpy object array holding lists, dicts or arrays changed in place: the recorder's copy shared the elements
  (``ndarray.copy`` is shallow for objects), so the change was never recorded;
* a float, str or int subclass replaced by a value of the same subclass that its own ``==`` calls equal (-0.0
  for 0.0, a case-insensitive name): stored as the base value, so the change must be recorded;
* a dataclass (stored as its type and repr) whose field went from 1 to 1.0: its repr changed;
* ``state_fn`` raising at reset turned state recording off for the whole episode; raising on a step made
  ``state_at`` give the previous step's state. Both now give a marked value saying so, and the next state read
  is recorded whole.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import struct
from collections import OrderedDict
from enum import Enum
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from tracker_modes import BUILT, MODES

from trajrec import Recorder, open_episode
from trajrec.recorder import diff
from trajrec.recorder.codec import Unencodable


class Meters(float):
    pass


class Caseless(str):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.lower() == other.lower()

    def __hash__(self) -> int:
        return hash(self.lower())


@dataclasses.dataclass
class Pos:
    x: Any


def strict(v: Any) -> Any:
    """A form in which values differ when their stored types, float bits, reprs or array bytes do."""
    if isinstance(v, float):
        return ("float", struct.pack("<d", v) if not math.isnan(v) else "nan")
    if isinstance(v, str):
        return ("str", str.__str__(v))
    if isinstance(v, np.ndarray):
        return ("array", str(v.dtype), v.shape, [strict(x) for x in v.ravel().tolist()] if v.dtype.hasobject
                else v.tobytes())
    if isinstance(v, dict):
        return ("dict", [(strict(k), strict(x)) for k, x in v.items()])
    if isinstance(v, (list, tuple)):
        return (type(v).__name__, [strict(x) for x in v])
    if isinstance(v, Unencodable):
        return ("fallback", v.type, v.repr)
    if dataclasses.is_dataclass(v):
        return ("fallback", f"{type(v).__module__}.{type(v).__qualname__}", repr(v))
    return (type(v).__name__, repr(v))


class ScriptEnv(gym.Env):
    """Each step runs the next change on the live state; ``state_dict`` hands out the live object."""

    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, start: Any, changes: list[Any], fail_reads: set[int] = frozenset()) -> None:
        self.start, self.changes, self.fail_reads, self.reads = start, changes, fail_reads, 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.state, self.t = self.start(), 0
        return 0, {}

    def step(self, action: int):
        self.changes[self.t](self.state)
        self.t += 1
        return 0, 0.0, self.t == len(self.changes), False, {}

    def state_dict(self) -> Any:
        self.reads += 1
        if self.reads in self.fail_reads:
            raise TimeoutError("state service busy")
        return self.state


def record(tmp_path: Path, env: ScriptEnv, accelerated: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list]:
    monkeypatch.setattr(diff, "_accel", diff._accel if accelerated else None)
    rec = Recorder(env, tmp_path / "run", frame_steps=1000)
    rec.reset(seed=0)
    after = [copy.deepcopy(env.state)]
    for _ in env.changes:
        rec.step(0)
        after.append(copy.deepcopy(env.state))
    rec.close()
    assert rec._tracker.accelerated is accelerated
    return open_episode(rec.episode_path), after


def _object_grid() -> dict[str, Any]:
    cells = np.empty(3, dtype=object)
    cells[0], cells[1], cells[2] = [1, 2], {"hp": 10}, np.zeros(2)
    return {"grid": cells, "n": 0}


def _set(key: str, value: Any) -> Any:
    return lambda s: s.__setitem__(key, value)


@pytest.mark.parametrize("accelerated", MODES)
@pytest.mark.filterwarnings("ignore::trajrec.recorder.codec.CodecWarning")
@pytest.mark.parametrize("case", ["object-array", "subclasses", "dataclass"])
def test_changes_made_in_place_or_to_equal_values_are_recorded(tmp_path, monkeypatch, accelerated, case):
    if case == "object-array":
        start = _object_grid
        changes = [lambda s: s["grid"][0].append(3), lambda s: s["grid"][1].__setitem__("hp", 7),
                   lambda s: s["grid"][2].__setitem__(0, 5.0), lambda s: s.__setitem__("n", 1)]
    elif case == "subclasses":
        def start() -> dict[str, Any]:
            return {f"k{i}": i for i in range(9)} | {"dist": Meters(0.0), "name": Caseless("readme.md")}
        changes = [_set("dist", Meters(-0.0)), _set("name", Caseless("README.md")), _set("dist", Meters(0.0)),
                   _set("k0", 5)]
    else:
        def start() -> dict[str, Any]:
            return {"pos": Pos(1), "n": 0}
        changes = [lambda s: setattr(s["pos"], "x", v) for v in (1.0, True, -0.0, 0.0)]
    ep, after = record(tmp_path, ScriptEnv(start, changes), accelerated, monkeypatch)
    from trajrec.recorder.format import packb, unpackb

    for i in range(-1, len(changes)):
        want = unpackb(packb(after[i + 1])) if case != "dataclass" else after[i + 1]
        assert strict(ep.state_at(i)) == strict(want), f"state_at({i})"


@pytest.mark.parametrize("accelerated", MODES)
@pytest.mark.parametrize("fail", [{1}, {3}, {1, 2}])
def test_a_state_fn_that_raises_leaves_a_marked_state_and_recording_goes_on(tmp_path, monkeypatch, accelerated,
                                                                          fail):
    # read 1 is the reset's, read k + 1 step k's
    changes = [lambda s, k=k: s.__setitem__("n", k + 1) for k in range(4)]
    env = ScriptEnv(lambda: {"n": 0, "files": {"a": "x"}}, changes, fail_reads=fail)
    with pytest.warns(RuntimeWarning, match="state_fn"):
        ep, after = record(tmp_path, env, accelerated, monkeypatch)
    assert ep.has_state
    for i in range(-1, 4):
        got = ep.state_at(i)
        if i + 2 in fail:
            assert isinstance(got, Unencodable) and got.type == "trajrec.StateNotRead" and "TimeoutError" in got.repr
        else:
            assert got == after[i + 1], f"state_at({i})"


class LyingSet(set):
    """A set that says it equals anything."""

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return False

    __hash__ = None  # type: ignore[assignment]


@pytest.mark.parametrize("accelerated", MODES)
@pytest.mark.filterwarnings("ignore::trajrec.recorder.codec.CodecWarning")
def test_a_lying_set_subclass_and_a_fallback_whose_repr_changed_are_recorded(tmp_path, monkeypatch, accelerated):
    import collections

    def start() -> dict[str, Any]:
        return {"tags": {1, 2}, "queue": collections.deque([1, 2]), "n": 0}

    changes = [_set("tags", LyingSet({1, 3})), lambda s: s["queue"].__setitem__(0, 1.0), _set("n", 1)]
    ep, after = record(tmp_path, ScriptEnv(start, changes), accelerated, monkeypatch)
    assert ep.state_at(0)["tags"] == {1, 3}
    assert ep.state_at(1)["queue"] == Unencodable("collections.deque", "deque([1.0, 2])")


def test_an_object_array_action_changed_by_the_env_is_recorded_as_sent(tmp_path):
    class Grabs(ScriptEnv):
        def step(self, action: Any):
            action[0].append("taken by the env")  # the env changes what it was given, in place
            return super().step(0)

    sent = np.empty(1, dtype=object)
    sent[0] = ["pick"]
    rec = Recorder(Grabs(lambda: {"n": 0}, [_set("n", 1)]), tmp_path / "run")
    rec.reset(seed=0)
    rec.step(sent)
    rec.close()
    assert open_episode(rec.episode_path)[0].action[0] == ["pick"]


def test_changing_a_state_read_back_does_not_change_the_file_s_next_answer(tmp_path, monkeypatch):
    # the C pass where it is built (TRAJREC_PURE_PYTHON=1 runs this with the pure walk)
    ep, _after = record(tmp_path, ScriptEnv(_object_grid, [_set("n", 1), _set("n", 2)]), BUILT, monkeypatch)
    first = ep.state_at(1)
    first["grid"][1]["hp"] = -1  # the caller's copy
    assert ep.state_at(1)["grid"][1] == {"hp": 10} and ep.state_at(0)["grid"][1] == {"hp": 10}


class _Agent:
    def __init__(self, flip: bool) -> None:
        if flip:  # another instance set x first: the class's shared key table is [x, y]
            self.y, self.x = 5, 3
        else:
            self.x, self.y = 3, 5


def _swap(agent: _Agent, to_float: bool = False) -> Any:
    def change(_s: Any) -> None:
        agent.x, agent.y = agent.y, agent.x
        if to_float:
            agent.x = float(agent.x)  # 5 -> 5.0: a type change that == hides

    return change


@pytest.mark.parametrize("accelerated", MODES)
@pytest.mark.parametrize("case", ["instance dict in a list", "instance dict under a dict", "ordered dict"])
def test_instance_dicts_and_ordered_dicts_are_read_back_in_their_own_order(tmp_path, monkeypatch, accelerated,
                                                                           case):
    """FINDINGS14 #1: an instance ``__dict__`` (a split table: the collector lists its values in the class's
    shared key order) had its swapped values compared as unchanged; #4: an ``OrderedDict`` reordered by
    ``move_to_end`` was stored in the order of the dict beneath it."""
    if case == "ordered dict":
        def start() -> dict[str, Any]:
            return {"lru": OrderedDict(a=1, b=2, c=3), "n": 0}
        changes = [lambda s, k=k: s["lru"].move_to_end(k) for k in "abcab"]
    else:
        _Agent(False)
        agent = _Agent(True)

        def start() -> dict[str, Any]:
            return {"agents": [agent.__dict__]} if case.endswith("list") else {"team": {"lead": agent.__dict__}}
        changes = [_swap(agent), _swap(agent), _swap(agent, to_float=True), _swap(agent)]
    ep, after = record(tmp_path, ScriptEnv(start, changes), accelerated, monkeypatch)
    from trajrec.recorder.format import packb, unpackb

    for i in range(-1, len(changes)):
        assert strict(ep.state_at(i)) == strict(unpackb(packb(after[i + 1]))), f"state_at({i})"


class _Mode(Enum):
    PLAN = {"budget": 3}  # a member whose value is mutable: one object, changed in place
    ACT = "act"


class _Handle:
    """A handle whose __deepcopy__ returns itself (no copy is made) and whose repr shows its count."""

    def __init__(self) -> None:
        self.n = 0

    def __deepcopy__(self, memo: Any) -> Any:
        return self

    def __repr__(self) -> str:
        return f"_Handle(n={self.n})"


@pytest.mark.parametrize("accelerated", MODES)
@pytest.mark.filterwarnings("ignore::trajrec.recorder.codec.CodecWarning")
def test_objects_the_copy_cannot_hold_by_value_are_recorded_as_stored(tmp_path, monkeypatch, accelerated):
    """FINDINGS14 #3: an Enum member with a mutable value, and an object whose __deepcopy__ returns itself, were
    kept by reference, so a change made inside them showed only at the next frame's full state."""
    handle = _Handle()
    _Mode.PLAN.value["budget"] = 3

    def start() -> dict[str, Any]:
        return {"mode": _Mode.PLAN, "other": _Mode.ACT, "h": handle, "n": 0}

    def spend(s: dict[str, Any]) -> None:
        _Mode.PLAN.value["budget"] -= 1

    def bump(s: dict[str, Any]) -> None:
        handle.n += 1

    changes = [spend, bump, _set("n", 1), spend, bump]
    monkeypatch.setattr(diff, "_accel", diff._accel if accelerated else None)
    rec = Recorder(ScriptEnv(start, changes), tmp_path / "run", frame_steps=1000)
    rec.reset(seed=0)
    seen = []
    for _ in changes:
        rec.step(0)
        seen.append((repr(_Mode.PLAN), repr(handle)))
    rec.close()
    ep = open_episode(rec.episode_path)
    assert [(ep.state_at(i)["mode"].repr, ep.state_at(i)["h"].repr) for i in range(len(changes))] == seen
    # (kept as stored, they are written again on every step, changed or not: exact, if not the fewest rows)
    assert all({"mode", "h"} <= {r[0][0] for r in ep[i].diff} for i in range(len(changes)))
