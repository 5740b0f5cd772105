"""Runs of the built-in envs (and of CartPole, whose observations are numbers) for the trainer-facing export tests.

``builtin_run`` records MathCalc, Shell and SupportTicket with their scripted agents: a few seeds each, plus four
attempts at one task per env by agents of skill 1.0 and 0.0 (passed and failed attempts at the same task, which
``dpo`` pairs), then labels every episode with the rules. Recorded once per session; tests copy it before
writing labels.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import gymnasium as gym
import pytest

from trajrec.recorder import Recorder
from trajrec.replay.autolabel import label_with_rules

ENVS = {"trajrec/MathCalc-v0": "mathcalc", "trajrec/Shell-v0": "shell", "trajrec/SupportTicket-v0": "support"}


def record_builtin(out: Path, *, seeds: int = 4) -> Path:
    import trajrec.envs  # noqa: F401 - registers the ids
    from trajrec.envs.agents import make_agent
    from trajrec.envs.runner import run_episode

    for env_id, sub in ENVS.items():
        env = Recorder(gym.make(env_id), out / sub, agent={"name": "scripted", "model": f"script-{sub}"})
        for seed in range(seeds):
            run_episode(env, make_agent(env_id, seed=seed, skill=0.6), seed=seed)
        task_id = env.unwrapped.task_ids()[0]
        for k, skill in enumerate((1.0, 0.0, 1.0, 0.0)):
            run_episode(env, make_agent(env_id, seed=100 + k, skill=skill), seed=0, options={"task_id": task_id})
        env.close()
    label_with_rules([out])
    return out


def record_cartpole(out: Path, *, episodes: int = 3) -> Path:
    env = Recorder(gym.make("CartPole-v1"), out, agent="random")
    for seed in range(episodes):
        env.reset(seed=seed)
        done = False
        while not done:
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            done = term or trunc
    env.close()
    return out


@pytest.fixture(scope="session")
def builtin_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_builtin(tmp_path_factory.mktemp("builtin") / "run")


@pytest.fixture
def builtin_run(builtin_master: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(builtin_master, dst)
    return dst


@pytest.fixture(scope="session")
def cartpole_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_cartpole(tmp_path_factory.mktemp("cartpole") / "run")
