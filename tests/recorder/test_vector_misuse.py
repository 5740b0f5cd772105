"""VectorRecorder refuses misuse as Recorder does, before the vector env is called: step before reset, step or reset
after close, a batch of the wrong size; and it is a context manager that finishes every sub-env episode."""

from __future__ import annotations

import contextlib
import json

import gymnasium as gym
import numpy as np
import pytest

import trajrec.envs  # noqa: F401  (registers trajrec/*)
from trajrec import VectorRecorder, open_episode
from trajrec.recorder import TrajrecUsageError
from trajrec.recorder.errors import EpisodeClosedError


class Counting(gym.vector.VectorWrapper):
    """Counts the vector env's step calls, so a test can tell whether anything was stepped."""

    def __init__(self, env: gym.vector.VectorEnv) -> None:
        super().__init__(env)
        self.steps = 0

    def step(self, actions):  # type: ignore[no-untyped-def]
        self.steps += 1
        return self.env.step(actions)


def cartpole(n: int = 2) -> Counting:
    return Counting(gym.make_vec("CartPole-v1", num_envs=n, vectorization_mode="sync"))


def test_step_before_reset_is_refused_and_nothing_is_stepped(tmp_path):
    vec = cartpole()
    envs = VectorRecorder(vec, tmp_path)
    with pytest.raises(TrajrecUsageError, match=r"cannot step before reset\(\): call envs.reset\(\)"):
        envs.step(np.array([0, 1]))
    assert vec.steps == 0
    envs.close()
    assert envs.episode_paths == [[], []]


def test_step_and_reset_after_close_raise_and_record_nothing(tmp_path):
    vec = cartpole()
    envs = VectorRecorder(vec, tmp_path)
    envs.reset(seed=0)
    envs.step(np.array([0, 1]))
    envs.close()
    with pytest.raises(EpisodeClosedError, match="cannot step: this VectorRecorder is closed"):
        envs.step(np.array([0, 1]))
    with pytest.raises(EpisodeClosedError, match="cannot reset: this VectorRecorder is closed"):
        envs.reset(seed=1)
    assert vec.steps == 1
    assert [[len(open_episode(p)) for p in paths] for paths in envs.episode_paths] == [[1], [1]]


@pytest.mark.parametrize("batch", [np.array([0]), np.array([0, 1, 0]), [1], 0], ids=["short", "long", "list", "scalar"])
def test_a_batch_of_the_wrong_size_is_refused_before_anything_is_stepped(tmp_path, batch):
    vec = cartpole()
    envs = VectorRecorder(vec, tmp_path)
    envs.reset(seed=0)
    with pytest.raises(TrajrecUsageError, match=r"VectorRecorder.step\(\) expected a batch of 2 actions "
                                                r"\(one per sub-env\), got (1|3|a int with no length)"):
        envs.step(batch)
    assert vec.steps == 0
    envs.step(np.array([0, 1]))  # the episodes go on, each with the one real step
    envs.close()
    for paths in envs.episode_paths:
        ep = open_episode(paths[0])
        assert len(ep) == 1 and ep[0].failure is None


def test_text_actions_are_counted_as_actions_not_characters(tmp_path):
    vec = Counting(gym.make_vec("trajrec/MathCalc-v0", num_envs=2, vectorization_mode="sync"))
    envs = VectorRecorder(vec, tmp_path)
    envs.reset(seed=0)
    call = json.dumps({"tool": "calc", "args": {"expr": "1+1"}})
    with pytest.raises(TrajrecUsageError, match="expected a batch of 2 actions .*got (1|a str with no length)"):
        envs.step((call,))
    with pytest.raises(TrajrecUsageError, match="got a str with no length"):
        envs.step(call)  # two characters' worth would not make it a batch
    assert vec.steps == 0
    envs.step((call, call))
    envs.close()
    assert [len(open_episode(paths[0])) for paths in envs.episode_paths] == [1, 1]


def test_a_dict_action_space_is_checked_per_key(tmp_path):
    class DictEnv(gym.Env):
        observation_space = gym.spaces.Discrete(2)
        action_space = gym.spaces.Dict({"a": gym.spaces.Discrete(2), "b": gym.spaces.Box(0, 1, (3,))})

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            return 0, {}

        def step(self, action):
            return 1, 0.0, False, False, {}

    vec = Counting(gym.vector.SyncVectorEnv([DictEnv, DictEnv]))
    envs = VectorRecorder(vec, tmp_path)
    envs.reset(seed=0)
    with pytest.raises(TrajrecUsageError, match="expected a batch of 2 actions .*got 1"):
        envs.step({"a": np.array([0, 1]), "b": np.zeros((1, 3), dtype=np.float32)})
    assert vec.steps == 0
    envs.step({"a": np.array([0, 1]), "b": np.zeros((2, 3), dtype=np.float32)})  # 3 wide, 2 long: a good batch
    envs.close()


def test_with_closes_every_sub_env_episode_and_the_agents_exception_is_their_error(tmp_path):
    """As ``with Recorder(...)``: the agent's exception ends each open episode as ``error`` naming it (FINDINGS16
    #3: it read ``stopped``, like a clean close); the vector env's own exception and a Ctrl-C do not."""
    with pytest.raises(ValueError, match="agent crashed"):
        with VectorRecorder(cartpole(), tmp_path / "agent") as envs:
            envs.reset(seed=0)
            envs.step(np.array([0, 1]))
            raise ValueError("agent crashed")
    assert envs._closed
    for paths in envs.episode_paths:
        ep = open_episode(paths[0])
        assert ep.complete and len(ep) == 1 and ep.summary["outcome"] == "error"
        assert ep.summary["agent_error"]["message"] == "ValueError: agent crashed"
        assert 'raise ValueError("agent crashed")' in ep.summary["agent_error"]["traceback"]

    class Broken(Counting):
        def step(self, actions):  # type: ignore[no-untyped-def]
            raise RuntimeError("the vector env broke")

    for name, exc, body in [("env", RuntimeError, lambda envs: envs.step(np.array([0, 1]))),
                            ("stop", KeyboardInterrupt, lambda envs: (_ for _ in ()).throw(KeyboardInterrupt)),
                            ("fine", None, lambda envs: envs.step(np.array([0, 1])))]:
        inner = Broken(gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync")) if name == "env" \
            else cartpole()
        with pytest.raises(exc) if exc else contextlib.nullcontext():
            with VectorRecorder(inner, tmp_path / name) as envs:
                envs.reset(seed=0)
                body(envs)
        for paths in envs.episode_paths:
            summary = open_episode(paths[0]).summary
            assert "agent_error" not in summary, name
            assert summary["outcome"] == {"env": "error", "stop": "stopped", "fine": "stopped"}[name]


def test_reset_with_a_seed_list_of_the_wrong_length_is_refused(tmp_path):
    envs = VectorRecorder(cartpole(), tmp_path)
    with pytest.raises(TrajrecUsageError, match="got 3 seeds for 2 sub-envs"):
        envs.reset(seed=[0, 1, 2])
    envs.close()
    assert envs.episode_paths == [[], []]


def test_a_class_instead_of_an_instance_is_refused(tmp_path):
    with pytest.raises(TrajrecUsageError, match=r"got the class SyncVectorEnv, not a vector env; pass an instance"):
        VectorRecorder(gym.vector.SyncVectorEnv, tmp_path / "out")
    assert not (tmp_path / "out").exists()
