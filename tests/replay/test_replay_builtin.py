"""Episodes of every built-in env (driven by its scripted agent) and of CartPole replay with no divergence."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest
from trajrec import envs
from trajrec.envs.agents import make_agent
from trajrec.envs.runner import run_episode
from trajrec.recorder import Recorder, open_episode
from trajrec.replay.replayer import replay_episode


def _record_with_agent(env_id: str, out: Path, seed: int, skill: float = 0.5, options: dict | None = None,
                       **recorder_kwargs) -> Path:
    agent = make_agent(env_id, seed=seed, skill=skill)
    env = Recorder(gym.make(env_id), out, agent={"name": agent.name, "version": agent.version}, **recorder_kwargs)
    try:
        run_episode(env, agent, seed=seed, options=options)
    finally:
        env.close()
    assert env.episode_path is not None
    return env.episode_path


# (seed, skill): two ordinary agents and a clumsy one that runs into the step limit (truncation) on some envs.
# Seeds whose CodeRepair task hits the 10 s test-run timeout are avoided to keep the suite fast.
@pytest.mark.parametrize(("seed", "skill"), [(0, 0.5), (1, 0.5), (2, 0.0)])
@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_builtin_env_episode_replays_without_divergence(env_id: str, seed: int, skill: float, tmp_path: Path) -> None:
    path = _record_with_agent(env_id, tmp_path, seed, skill)
    ep = open_episode(path)
    assert len(ep) >= 1 and ep.has_state

    report = replay_episode(path)

    assert not report.diverged, str(report)
    assert report.steps_replayed == len(ep)
    assert "state" in report.compared
    assert str(report) == f"replayed {len(ep)} step{'' if len(ep) == 1 else 's'}, no divergence"


def test_state_snapshots_in_later_frames_are_followed(tmp_path: Path) -> None:
    # Two steps per frame: the replay's running state must switch to each frame's snapshot correctly.
    path = _record_with_agent("trajrec/Shell-v0", tmp_path, 0, skill=0.0, frame_steps=2)
    ep = open_episode(path)
    assert len(ep) > 4

    assert not replay_episode(path).diverged


def test_reset_options_are_replayed(tmp_path: Path) -> None:
    env_id = "trajrec/MathCalc-v0"
    task_id = gym.make(env_id).unwrapped.task_ids()[2]
    path = _record_with_agent(env_id, tmp_path, 0, options={"task_id": task_id})
    ep = open_episode(path)
    assert ep.reset.options == {"task_id": task_id} and ep.task["id"] == task_id

    assert not replay_episode(path).diverged


def test_cartpole_episode_replays_without_divergence(record) -> None:
    env = gym.make("CartPole-v1")
    env.action_space.seed(7)
    actions = [env.action_space.sample() for _ in range(60)]  # np.int64: must come back as np.int64
    path = record(env, actions, seed=7)
    ep = open_episode(path)

    report = replay_episode(path)

    assert not report.diverged, str(report)
    assert report.steps_replayed == len(ep) > 5
    assert report.compared == ("exception", "observation", "reward", "terminated", "truncated", "info")


def test_cartpole_time_limit_from_the_header_is_rebuilt(record) -> None:
    path = record(gym.make("CartPole-v1", max_episode_steps=4), [0, 1] * 10, seed=1)
    ep = open_episode(path)
    assert len(ep) <= 4 and ep.task["max_episode_steps"] == 4

    report = replay_episode(path)

    assert not report.diverged, str(report)
