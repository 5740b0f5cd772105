"""Walks over every step: frame by frame outside the reader's cache, with the cyclic collector paused only while
a frame is decoded, and the usual optional fields checked on the fast path with the same verdicts."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import gymnasium as gym
import pytest

from trajrec.recorder import Recorder, open_episode
from trajrec.recorder.gcpause import gc_paused
from trajrec.recorder.validate import _step_problem, step_problem


def test_gc_paused_nests_across_threads_and_restores() -> None:
    assert gc.isenabled()
    inside = threading.Event()
    leave = threading.Event()

    def other() -> None:
        with gc_paused():
            inside.set()
            leave.wait(5)

    t = threading.Thread(target=other)
    with gc_paused():
        assert not gc.isenabled()
        t.start()
        inside.wait(5)
    assert not gc.isenabled()  # the other thread's pause is still on
    leave.set()
    t.join()
    assert gc.isenabled()


def test_gc_paused_leaves_a_disabled_collector_off() -> None:
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_walks_do_not_fill_the_cache(tmp_path: Path) -> None:
    env = Recorder(gym.make("CartPole-v1"), tmp_path, frame_steps=3)
    env.reset(seed=0)
    for _ in range(10):
        env.step(0)
    env.close()
    with open_episode(env.episode_path) as ep:
        assert ep.frame_count == 4 and ep.frame_span(1) == (3, 3)
        assert [r["i"] for r in ep.iter_records()] == list(range(10))
        assert [s.index for s in ep] == list(range(10))
        assert not ep._cache
        assert ep[4].index == 4 and len(ep._cache) == 1  # random access still caches
        assert ep.frame_records(1) is ep.frame_records(1)  # a cached frame is shared, not decoded again
        assert [r["i"] for r in ep.frame_records(3)] == [9]


def test_fast_path_agrees_with_the_detailed_checks() -> None:
    good = {"i": 3, "time": 1.0, "duration": 0.5, "note": {"thought": "x"}, "retry_of": 1, "recovers": [1, 2],
            "diff": [[["a", 0], "change", 1, 0]], "failure": {"kind": "tool_error", "message": "no such file"}}
    assert step_problem(good, 3) is None and _step_problem(good, 3) is None
    for bad in ({"diff": [[["a"], "change", 1]]}, {"diff": "x"}, {"recovers": [True]}, {"recovers": ["1"]},
                {"note": "text"}, {"retry_of": "2"}, {"diff": [["a", "change", 1, 0]]}, {"failure": "x"},
                {"failure": {"kind": 3}}):
        rec = {**good, **bad}
        assert step_problem(rec, 3) is not None
        assert step_problem(rec, 3) == _step_problem(rec, 3)


def test_big_records_get_zstd_defaults_and_read_back(tmp_path: Path) -> None:
    import numpy as np

    from trajrec.recorder.format import BIG_RECORD, SMALL_RECORD, Compressors

    c = Compressors()
    c.compressobj(SMALL_RECORD)
    assert c._big is None  # text-sized records: the tuned context only
    c.compressobj(BIG_RECORD)
    assert c._big is not None
    c = Compressors()
    c.compressobj(SMALL_RECORD - 1)
    assert c._big is not None  # a few numbers: zstd's own parameters too

    class Images(gym.Env):
        observation_space = gym.spaces.Box(0, 255, (84, 84, 3), np.uint8)
        action_space = gym.spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
            super().reset(seed=seed)
            return self.observation_space.sample(), {}

        def step(self, action):  # type: ignore[no-untyped-def]
            return self.observation_space.sample(), 0.0, False, False, {}

    env = Recorder(Images(), tmp_path, frame_steps=4)
    obs, _ = env.reset(seed=0)
    seen = [env.step(0)[0] for _ in range(10)]
    env.close()
    with open_episode(env.episode_path) as ep:
        assert np.array_equal(ep.reset.observation, obs)
        assert all(np.array_equal(s.observation, o) for s, o in zip(ep, seen))


def test_frame_checks_agree_with_the_record_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inline checks of a frame's records never accept what the per-record checks refuse, give their message,
    and leave to them only the records that are not the usual kind."""
    import random

    from trajrec.recorder import validate
    from trajrec.recorder.validate import step_problem, steps_problem

    good = {"t": "step", "i": 0, "time": 1.0, "duration": 0.5, "note": {"thought": "x"}, "retry_of": 1,
            "recovers": [1, 2], "diff": [[["a", 0], "change", 1, 0]],
            "failure": {"kind": "tool_error", "message": "no such file", "traceback": None}}
    plain = {"t": "step", "i": 0, "action": "ls", "observation": [1, 2], "reward": 0.0}
    bad_values = {"i": ["1", True, 1.0, None], "time": ["x", True, None], "duration": [[1]],
                  "note": ["text", [1]], "checks": [{"a": 1}, "x", [{"kind": 3}]], "retry_of": ["2", 1.5, True],
                  "recovers": [[True], ["1"], "1", (1,)], "failure": ["x", 0, {"kind": 3}, {"message": b"m"}],
                  "diff": ["x", [["a", "change", 1, 0]], [[["a"], "change", 1]], [[("a",), "change", 1, 0]],
                           [[["a"], 2, 1, 0]], [(["a"], "change", 1, 0)]]}
    rng = random.Random(0)
    for _ in range(300):
        frame = [dict(rng.choice((good, plain)), i=10 + j) for j in range(rng.randrange(1, 6))]
        if rng.random() < 0.8:
            j = rng.randrange(len(frame))
            key = rng.choice(sorted(bad_values))
            frame[j] = {**frame[j], key: rng.choice(bad_values[key])}
        expected = next(((j, p) for j, r in enumerate(frame) if (p := step_problem(r, 10 + j))), None)
        assert steps_problem(frame, 10) == expected
    asked: list[int] = []
    monkeypatch.setattr(validate, "step_problem", lambda rec, i: asked.append(i) or step_problem(rec, i))
    checks = {"checks": [{"kind": "rule", "judge": "r", "value": 1, "target": 12}]}
    assert steps_problem([good | {"i": 10}, plain | {"i": 11}, plain | {"i": 12} | checks, good | {"i": 13}], 10) is None
    assert asked == [12]  # only the record with checks (valid, but not the usual kind) went the long way


def test_gc_promotion_keeps_the_collector_working() -> None:
    """A pause with promote=True leaves the collector as it found it, hands what it made to the oldest
    generation without walking it, and never unfreezes what the program froze itself."""
    from trajrec.recorder.gcpause import promote_young

    class Node:
        def __init__(self) -> None:
            self.me = self  # a reference cycle: only the cyclic collector frees it

    gc.collect()
    with gc_paused(promote=True):
        made = [[k] for k in range(5000)]
        assert not gc.isenabled()
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert gc.get_count()[0] < 100  # the 5,000 lists no longer count toward a young collection
    assert gc.is_tracked(made[0])
    del made
    ref = Node()
    import weakref
    dead = weakref.ref(ref)
    with gc_paused(promote=True):
        del ref  # cyclic garbage made during the pause: found by the next full collection
    gc.collect()
    assert dead() is None

    kept = [object() for _ in range(10)]
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert not promote_young()  # the program's frozen objects stay frozen
        with gc_paused(promote=True):
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
    del kept
    gc.disable()
    try:
        with gc_paused(promote=True):
            pass
        assert not gc.isenabled()  # a collector the program turned off stays off
    finally:
        gc.enable()


def test_steps_read_lazily_equal_steps_built_whole(tmp_path: Path) -> None:
    """A Step from a record builds its failure, diff, checks and lists on first read: the same values as a
    Step built with every field, and assignable."""
    from trajrec.recorder.model import Check, DiffRow, Failure, Step

    rec = {"t": "step", "i": 4, "action": "cat a", "observation": "x", "reward": 1.0, "terminated": 1,
           "truncated": False, "info": {"k": 1}, "time": 2.0, "duration": 0.1, "note": {"n": 1},
           "failure": {"kind": "tool_error", "message": "m"}, "retry_of": 2, "recovers": [1],
           "diff": [[["a"], "values_changed", 2, 1]], "checks": [{"kind": "rule", "judge": "j", "value": True}],
           "recorder_errors": [{"what": "x"}]}
    extra = Check(target=4, kind="judge", judge="k", value=False)
    lazy = Step.from_record(rec, [extra])
    whole = Step(index=4, action="cat a", observation="x", reward=1.0, terminated=True, truncated=False,
                 info={"k": 1}, time=2.0, duration=0.1, note={"n": 1}, failure=Failure("tool_error", "m"),
                 retry_of=2, recovers=[1], diff=[DiffRow(["a"], "values_changed", 2, 1)],
                 checks=[Check.from_record(rec["checks"][0]), extra], recorder_errors=[{"what": "x"}])
    assert lazy == whole and repr(lazy) == repr(whole)
    assert lazy.failed and lazy.diff is lazy.diff  # built once, then kept
    lazy.diff = []
    assert lazy.diff == [] and rec["diff"]  # assignment sets the field, the record is untouched
    bare = Step.from_record({"i": 0})
    assert (bare.failure, bare.recovers, bare.diff, bare.checks, bare.recorder_errors) == (None, [], [], [], [])
    assert not hasattr(bare, "nothing")

    env = Recorder(gym.make("CartPole-v1"), tmp_path, frame_steps=3)
    env.reset(seed=0)
    for _ in range(7):
        env.step(0)
    env.close()
    with open_episode(env.episode_path) as ep:
        assert [s.index for s in ep] == list(range(7)) and ep[5] == list(ep)[5]
