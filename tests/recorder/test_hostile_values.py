"""No value or callback takes the agent down, and nothing is silently changed: every hostile value of
``hostile_values.values()`` in every position of a record (observation, info, info["error"], reward, flags,
action, state, note, checks, task text, provenance, reset info) is recorded, the file gets its index on close,
and the value reads back exactly, or marked as a fallback where it cannot be stored, with the rest kept."""

from __future__ import annotations

import reprlib
import warnings
from typing import Any

import numpy as np
import pytest

from hostile_values import POSITIONS, Case, RaisingEverything, contains_marker, hostile_callables, same, values
from trajrec.recorder import CodecWarning, Recorder, Unencodable, codec, open_episode, read_index
from trajrec.recorder.errors import TrajrecUsageError
from trajrec.recorder.format import packb, unpackb
from trajrec.recorder.label_values import validate_value
from trajrec.recorder.writer import pack_record


@pytest.fixture(autouse=True)
def _short_repr_timeout(monkeypatch):
    monkeypatch.setattr(codec, "REPR_TIMEOUT", 0.05)  # the slow-repr case waits this long once, not 0.5 s


def _record(tmp_path, stub_env, pos: str, make) -> Any:
    def step_fn(env, action):
        info: dict[str, Any] = {"plain": "kept"}
        if pos == "info":
            info["value"] = make()
        if pos == "info.error":
            info["error"] = make()
        return (make() if pos == "observation" else "obs", make() if pos == "reward" else 1.0,
                make() if pos == "terminated" else False, make() if pos == "truncated" else False, info)

    def reset_fn(env, seed=None, options=None):
        info = {"plain": "kept", "value": make()} if pos == "reset.info" else {"plain": "kept"}
        return "start", info

    kwargs: dict[str, Any] = {}
    if pos == "state":
        kwargs["state_fn"] = lambda env: {"plain": "kept", "value": make()}
    if pos == "task.text":
        kwargs["task"] = {"text": make()}
    if pos == "provenance":
        kwargs["provenance"] = {"extra": make()}
    rec = Recorder(stub_env(step_fn=step_fn, reset_fn=reset_fn), tmp_path, **kwargs)
    rec.reset(seed=0)
    for k in range(2):
        if pos == "note":
            rec.note(thought=make())
        rec.step(make() if pos == "action" else f"act {k}")
        if pos == "check.rationale":
            rec.check(True, judge="hostile@1", rationale=make())
        if pos == "check.value":
            try:
                rec.check(make(), judge="hostile@1")
            except TrajrecUsageError as exc:  # a value no label could hold: refused, nothing written
                assert "check(value=" in str(exc)
    rec.close()
    return rec.episode_path


def _read_back(path, pos: str) -> tuple[Any, Any]:
    """(the value read back at ``pos``, its plain sibling or None)."""
    ep = open_episode(path)
    assert len(ep) == 2
    r0 = ep.record(0)
    if pos == "observation":
        return r0["observation"], None
    if pos == "info":
        return r0["info"]["value"], r0["info"]["plain"]
    if pos == "info.error":
        return r0["info"]["error"], r0["info"]["plain"]
    if pos in ("reward", "terminated", "truncated", "action"):
        return r0[pos], r0["observation"]
    if pos == "state":
        assert ep.state_at(-1)["plain"] == "kept"
        return ep.state_at(1)["value"], ep.state_at(0)["plain"]
    if pos == "note":
        return r0["note"]["thought"], None
    if pos == "check.rationale":
        return ep.checks[0].rationale, ep.checks[0].judge
    if pos == "check.value":
        if not ep.checks:  # refused (the test asks validate_value why)
            return None, None
        return ep.checks[0].value, ep.checks[0].judge
    if pos == "task.text":
        return ep.task["text"], ep.task.get("env_id", "none")
    if pos == "provenance":
        return ep.provenance["extra"], ep.provenance.get("run_id")
    if pos == "reset.info":
        return ep.reset.info["value"], ep.reset.info["plain"]
    raise AssertionError(pos)


CASES = [(pos, case) for case in values() for pos in POSITIONS]


@pytest.mark.parametrize(("pos", "case"), CASES, ids=[f"{c.name}@{p}" for p, c in CASES])
def test_hostile_value_is_recorded_exactly_or_marked(tmp_path, stub_env, pos: str, case: Case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one CodecWarning per type is the documented behaviour
        path = _record(tmp_path, stub_env, pos, case.make)
        index = read_index(path)
        got, sibling = _read_back(path, pos)
    assert index["complete"] and index["steps"] == 2  # the file always gets its index on close()
    if sibling is not None:
        assert sibling in ("kept", "obs", "hostile@1") or isinstance(sibling, str)
    if pos == "check.value":
        # a check's value is a label's (Recorder.check validates it as LabelStore.add does): what validate_value
        # takes is recorded as it gives it; the rest was refused and the file holds no check (FINDINGS13 #5)
        try:
            want = validate_value(case.make())
        except TrajrecUsageError:
            assert got is None and not open_episode(path).checks
        else:
            assert same(want, got), f"{case.name} as a check value came back as {reprlib.repr(got)}"
    elif case.expect == "exact":
        assert same(case.make(), got), f"{case.name} at {pos} came back as {reprlib.repr(got)}"
    elif case.expect == "marked":
        assert contains_marker(got), f"{case.name} at {pos} came back unmarked: {reprlib.repr(got)}"


@pytest.mark.parametrize(("name", "kwargs"), hostile_callables(), ids=[n for n, _ in hostile_callables()])
def test_hostile_callable_is_recorded_as_a_recorder_error_and_warned_once(tmp_path, stub_env, name, kwargs):
    def step_fn(env, action):
        return "obs", 0.0, False, False, {"error": "failed"}  # failures make the classifier ask for a key

    rec = Recorder(stub_env(step_fn=step_fn), tmp_path, **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec.reset(seed=0)
        for k in range(4):
            rec.step(f"act {k}")
        rec.close()
    ep = open_episode(rec.episode_path)
    assert len(ep) == 4 and read_index(rec.episode_path)["complete"]
    runtime = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    errors = ep.reset.recorder_errors + [e for s in ep for e in s.recorder_errors]
    if name == "state_fn-raises":  # recorded at the reset and every step, warned once; the state says it was not read
        assert [e["where"] for e in errors] == ["state_fn"] * 5 and len(runtime) == 1
        assert ep.state_at(3).type == "trajrec.StateNotRead"
    elif name.endswith("raises") or name == "action_key-unhashable":
        assert len(errors) >= 4 and {e["where"] for e in errors} == {name.split("-")[0]}
        assert len(runtime) == 1  # warned once, recorded every time
    elif name == "action_key-raising-hash":  # the key hashes, then its __eq__ raises inside the classifier
        assert len(errors) >= 3 and {e["where"] for e in errors} <= {"action_key", "classify"}
    if name == "state_fn-raising-everything":
        assert contains_marker(ep.state_at(3))


def test_env_exception_reaches_the_agent_unchanged_even_when_recording_it_fails(tmp_path, stub_env, monkeypatch):
    class Hostile(Exception):
        def __str__(self) -> str:
            raise RuntimeError("str exploded")

    err = Hostile()

    def step_fn(env, action):
        raise err

    rec = Recorder(stub_env(step_fn=step_fn), tmp_path)
    rec.reset(seed=0)
    with pytest.raises(Hostile) as info:
        rec.step("x")
    assert info.value is err
    # and when the write of that step fails: still the env's own exception, with a warning about the record
    from trajrec.recorder.errors import TrajrecIOError

    def failing_write(*_a, **_k):
        raise TrajrecIOError("disk on fire")

    monkeypatch.setattr(rec._writer, "write_step", failing_write)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(Hostile) as info:
            rec.step("y")
    assert info.value is err
    assert any("could not record step 1" in str(w.message) for w in caught)
    monkeypatch.undo()
    rec.close()
    ep = open_episode(rec.episode_path)
    assert ep[0].failure.kind == "exception" and "unprintable" in ep[0].failure.message


def test_slow_repr_costs_the_agent_at_most_the_timeout_once(tmp_path, stub_env):
    import time

    from hostile_values import SlowRepr

    class SlowerRepr(SlowRepr):
        pass

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = _record(tmp_path, stub_env, "info", SlowerRepr)
    assert time.perf_counter() - t0 < 2.5  # the repr sleeps 3 s; it was abandoned, not waited for
    got, _ = _read_back(path, "info")
    assert isinstance(got, Unencodable) and "abandoned" in got.repr or "not taken" in got.repr


def test_a_lone_surrogate_affects_only_its_own_string(tmp_path, stub_env):
    def step_fn(env, action):
        return "out \udcff", 0.0, False, False, {"bad": "x\udcff", "good": "fine", "n": np.arange(3)}

    rec = Recorder(stub_env(step_fn=step_fn), tmp_path, task={"text": "task \ud83d"})
    rec.reset(seed=0)
    rec.step("a")
    rec.check(True, judge="j@1", rationale="quote \udcfe")
    rec.close()
    ep = open_episode(rec.episode_path)
    assert ep[0].observation == "out \udcff"
    assert ep[0].info["bad"] == "x\udcff" and ep[0].info["good"] == "fine"
    assert np.array_equal(ep[0].info["n"], np.arange(3))
    assert ep.task["text"] == "task \ud83d" and ep.checks[0].rationale == "quote \udcfe"
    assert read_index(rec.episode_path)["complete"]


@pytest.mark.parametrize("case", [c for c in values() if c.name.startswith("np-")], ids=lambda c: c.name)
def test_numpy_values_round_trip_exactly_or_marked_with_one_warning(case: Case):
    codec._warned_types.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = unpackb(pack_record(packb, case.make()))
        unpackb(pack_record(packb, case.make()))  # the second one warns no more
    codec_warnings = [w for w in caught if issubclass(w.category, CodecWarning)]
    if case.expect == "exact":
        assert same(case.make(), got)
        assert not codec_warnings or case.name == "np-recarray" and False
    else:
        assert isinstance(got, Unencodable) or contains_marker(got)
        assert len(codec_warnings) == 1


def test_the_generator_covers_hundreds_of_cases():
    assert len(CASES) >= 300
    assert len({c.name for c in values()}) == len(values())


def test_raising_everything_object_in_every_container_kind(tmp_path, stub_env):
    def step_fn(env, action):
        o = RaisingEverything()
        return [o], 0.0, False, False, {"t": (o,), "s": {o}, "d": {"k": o}}

    rec = Recorder(stub_env(step_fn=step_fn), tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec.reset(seed=0)
        rec.step("a")
        rec.close()
    step = open_episode(rec.episode_path)[0]
    assert isinstance(step.observation[0], Unencodable)
    assert isinstance(step.info["t"][0], Unencodable) and isinstance(step.info["d"]["k"], Unencodable)


class _NanKeyEnv:
    """A state whose dicts have NaN keys (and a tuple key holding a NaN), changing every step; the NaN objects
    are new each step, as an env computing its keys makes them."""

    def __init__(self) -> None:
        self.t = 0

    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        self.t = 0
        return 0, {}

    def step(self, action):  # type: ignore[no-untyped-def]
        self.t += 1
        return self.t, 0.0, self.t >= 12, False, {}

    def state_dict(self):  # type: ignore[no-untyped-def]
        nan = float("nan")
        if self.t == 0:
            return {"x": {1.5: "f"}}
        return {"x": {1.5: "f", nan: f"n{self.t}", (1, float("nan")): self.t}, "t": self.t,
                "deep": {float("nan"): {"v": self.t}} if self.t % 3 else {}}


def test_nan_keys_in_the_state_rebuild_at_every_step_and_fsck_is_clean(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import math

    from trajrec.cli import main as cli_main

    inner = _NanKeyEnv()
    env = Recorder(inner, tmp_path)
    env.reset(seed=0)
    seen = []
    for _ in range(12):
        env.step(0)
        seen.append(inner.state_dict())
    env.close()
    path = env.episode_path

    def plain(state):  # type: ignore[no-untyped-def]
        # NaN keys compare by their place: the value under "the NaN key", with keys as text.
        if isinstance(state, dict):
            return sorted((("nan" if isinstance(k, float) and math.isnan(k) else repr(k).replace("nan", "NAN")),
                           plain(v)) for k, v in state.items())
        return state

    with open_episode(path) as ep:
        for i in range(len(ep)):
            assert plain(ep.state_at(i)) == plain(seen[i]), i
        for i in reversed(range(len(ep))):  # backwards too (the viewer's state pane walks both ways)
            assert plain(ep.state_at(i)) == plain(seen[i]), i
    assert cli_main(["fsck", str(path)]) == 0


class _CheckTargetEnv:
    """Checks reported in info with targets of other types: numpy ints (an env counting steps with numpy), whole
    floats, bools, fractions, objects; and a "step" field of another type."""

    TARGETS = [np.int64(0), 1.0, True, 1.5, np.float64(2.0), object(), "episode", None, "step", np.int32(-1)]

    def __init__(self) -> None:
        self.t = 0

    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        self.t = 0
        return 0, {}

    def step(self, action):  # type: ignore[no-untyped-def]
        self.t += 1
        target = self.TARGETS[self.t - 1]
        info = {"checks": [{"target": target, "value": True, "judge": "unit-tests", "step": np.int64(self.t)}]}
        return self.t, 1.0, self.t == len(self.TARGETS), False, info


def test_checks_with_targets_of_other_types_never_make_a_file_unreadable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from trajrec.cli import main as cli_main

    env = Recorder(_CheckTargetEnv(), tmp_path)
    env.reset(seed=0)
    for _ in _CheckTargetEnv.TARGETS:
        env.step(0)
    env.close()
    assert cli_main(["fsck", str(env.episode_path)]) == 0
    with open_episode(env.episode_path) as ep:
        assert len(ep) == len(_CheckTargetEnv.TARGETS)
        targets = [ep[i].checks[0].target for i in range(len(ep))]
        # numpy ints and whole floats are the index they stand for; others stay on their own step, the given
        # value kept beside the check
        assert targets[:5] == [0, 1, 2, 3, 2] and targets[5] == 5 and targets[6] == "episode"
        assert targets[7] == 7 and targets[8] == 8 and targets[9] == -1
        for i in (2, 3, 5):
            assert ep[i].checks[0].extra.get("target_given"), ep[i].checks[0]


class _NoneFirstStateEnv:
    STATES = [None, {"a": 1}, None, np.arange(3), "txt", {"b": [1, 2]}]

    def __init__(self) -> None:
        self.t = 0

    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        self.t = 0
        return 0, {}

    def step(self, action):  # type: ignore[no-untyped-def]
        self.t += 1
        return self.t, 0.0, self.t == len(self.STATES) - 1, False, {}

    def state_dict(self):  # type: ignore[no-untyped-def]
        return self.STATES[self.t]


def test_a_state_that_is_none_at_reset_still_rebuilds_every_step(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = Recorder(_NoneFirstStateEnv(), tmp_path)
    env.reset(seed=0)
    for _ in range(len(_NoneFirstStateEnv.STATES) - 1):
        env.step(0)
    env.close()
    with open_episode(env.episode_path) as ep:
        assert ep.has_state
        assert ep.state_at(-1) is None
        for i in range(len(ep)):
            assert repr(ep.state_at(i)) == repr(_NoneFirstStateEnv.STATES[i + 1]), i


    class _Stateless:
        def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
            return 0, {}

        def step(self, action):  # type: ignore[no-untyped-def]
            return 1, 0.0, True, False, {}

    plain = Recorder(_Stateless(), tmp_path / "plain")
    plain.reset(seed=0)
    plain.step(0)
    plain.close()
    with open_episode(plain.episode_path) as ep:
        assert not ep.has_state  # no state recorded: still told apart from a recorded None
