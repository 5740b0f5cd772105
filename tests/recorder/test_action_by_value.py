"""Actions are recorded by value, as the agent sent them: an env that changes the action object in place
(``np.clip(a, low, high, out=a)``, a tool env popping argument keys) leaves the file holding the agent's action,
also on a step whose ``env.step`` raised and in a VectorRecorder whose env clips the batch in place."""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from trajrec.recorder import Recorder, VectorRecorder, open_episode


class ClipInPlace(gym.Env):
    """A Box env that clips the action it is given in place, as many continuous-control envs do."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action: np.ndarray):
        np.clip(action, -1.0, 1.0, out=action)
        return action.copy(), float(action.sum()), False, False, {}


class PopsArguments(gym.Env):
    """A tool env that normalises the call it is given in place, then fails on odd steps."""

    observation_space = gym.spaces.Text(100)
    action_space = gym.spaces.Text(100)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.t = 0
        return "ready", {}

    def step(self, action: dict[str, Any]):
        self.t += 1
        action["args"].pop("x")
        action["seen"] = True
        action["args"]["log"].append("env")
        if self.t % 2 == 0:
            raise RuntimeError("tool crashed")
        return "ok", 0.0, False, False, {}


def test_an_action_changed_in_place_by_the_env_is_recorded_as_the_agent_sent_it(tmp_path) -> None:
    rec = Recorder(ClipInPlace(), tmp_path)
    rec.reset(seed=0)
    sent = [np.array([5.0, -7.0], dtype=np.float32), np.array([0.5, 2.0], dtype=np.float32)]
    for a in sent:
        rec.step(a)
        assert np.abs(a).max() <= 1.0  # the env clipped the agent's array in place
    rec.close()
    ep = open_episode(rec.episode_path)
    for step, original in zip(ep, [np.array([5.0, -7.0], dtype=np.float32), np.array([0.5, 2.0], dtype=np.float32)]):
        assert step.action.dtype == np.float32 and np.array_equal(step.action, original), step.action
        assert np.abs(step.observation).max() <= 1.0  # what the env did with it is the observation


def test_a_tool_call_changed_in_place_is_recorded_whole_also_when_the_step_raises(tmp_path) -> None:
    rec = Recorder(PopsArguments(), tmp_path)
    rec.reset(seed=0)
    calls = [{"tool": "t", "args": {"x": k, "y": 1, "log": ["agent"]}} for k in range(4)]
    for call in calls:
        expected = copy.deepcopy(call)
        try:
            rec.step(call)
        except RuntimeError:
            pass
        assert call != expected  # the env changed the agent's object
    rec.close()
    ep = open_episode(rec.episode_path)
    assert len(ep) == 4
    for k, step in enumerate(ep):
        assert step.action == {"tool": "t", "args": {"x": k, "y": 1, "log": ["agent"]}}, (k, step.action)
    assert [s.failure is not None for s in ep] == [False, True, False, True]


class _ClipActionsInPlace(gym.vector.VectorActionWrapper):
    def actions(self, actions: np.ndarray) -> np.ndarray:
        np.clip(actions, -1.0, 1.0, out=actions)
        return actions


def test_a_vector_env_that_clips_the_batch_in_place_records_each_agent_action(tmp_path) -> None:
    vec = _ClipActionsInPlace(gym.vector.SyncVectorEnv([ClipInPlace, ClipInPlace]))
    envs = VectorRecorder(vec, tmp_path)
    envs.reset(seed=0)
    batch = np.array([[3.0, 0.5], [-0.25, -9.0]], dtype=np.float32)
    envs.step(batch)
    assert np.abs(batch).max() <= 1.0  # clipped in place
    envs.close()
    got = sorted((open_episode(p)[0].action.tolist() for (p,) in envs.episode_paths), key=lambda a: a[1])
    assert got == [[-0.25, -9.0], [3.0, 0.5]]


@pytest.mark.parametrize("action", [3, np.int64(3), 2.5, "ls -la", None, True])
def test_immutable_actions_are_recorded_as_they_are(tmp_path, action) -> None:
    class Echo(gym.Env):
        observation_space = gym.spaces.Discrete(2)
        action_space = gym.spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):
            return 0, {}

        def step(self, a):
            return 0, 0.0, False, False, {}

    rec = Recorder(Echo(), tmp_path)
    rec.reset(seed=0)
    rec.step(action)
    rec.close()
    got = open_episode(rec.episode_path)[0].action
    assert got == action and type(got) is type(action)
