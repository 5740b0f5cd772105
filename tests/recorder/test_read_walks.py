"""Walks over every step: frame by frame outside the reader's cache, with the cyclic collector paused only while
a frame is decoded, and the usual optional fields checked on the fast path with the same verdicts."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import gymnasium as gym

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

    from trajrec.recorder.format import BIG_RECORD, Compressors

    c = Compressors()
    c.compressobj(100)
    assert c._big is None  # small records: the tuned context only
    c.compressobj(BIG_RECORD)
    assert c._big is not None

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
