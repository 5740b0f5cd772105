"""Verdicts computed with numpy (`np.all(...)`, a comparison of a numpy reward) count as Python's bools and ints:
a check of np.True_ passes the episode, a failure_fn returning np.True_ marks the step failed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from trajrec import Recorder, open_episode
from trajrec.recorder.model import verdict


class CleanUp(gym.Env):
    """One step: the env reports its own verdict, computed with numpy, in ``info["checks"]``."""

    observation_space = gym.spaces.Text(20)
    action_space = gym.spaces.Text(20)

    def __init__(self, solved: Any) -> None:
        self.solved = solved

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict]:
        super().reset(seed=seed)
        return "clean up", {}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        check = {"target": "episode", "kind": "environment", "judge": "clean@1", "value": self.solved}
        return "done", 1.0, True, False, {"checks": [check]}


@pytest.mark.parametrize(("value", "outcome"), [(np.True_, "passed"), (np.False_, "failed"), (np.int64(1), "passed"),
                                                (np.int64(-1), "failed"), (np.all(np.zeros(3) == 0), "passed")])
def test_an_env_check_of_numpy_value_gives_the_verdict(value: Any, outcome: str, tmp_path: Path) -> None:
    env = Recorder(CleanUp(value), tmp_path / "run")
    env.reset(seed=0)
    env.step("rm *")
    env.close()
    with open_episode(env.episode_path) as ep:
        assert ep.summary["outcome"] == outcome
        passed = outcome == "passed"
        assert (ep.summary["checks"]["passed"], ep.summary["checks"]["failed"]) == ((1, 0) if passed else (0, 1))


def test_env_check_with_a_numpy_bool(tmp_path: Path) -> None:
    env = Recorder(CleanUp(None), tmp_path / "run")
    env.reset(seed=0)
    env.step("rm *")
    env.check(np.bool_(True), kind="rule", judge="api@1", target="episode")
    env.close()
    with open_episode(env.episode_path) as ep:
        assert ep.summary["outcome"] == "passed"


def test_verdict_reads_numpy_scalars_as_python_values() -> None:
    assert [verdict(v) for v in (np.True_, np.False_, np.int32(1), np.int64(-1), np.int8(0), np.float64(0.7))
            ] == [True, False, True, False, None, None]


class Rewards(gym.Env):
    """Rewards are np.float32, as many Gymnasium envs return them."""

    action_space = gym.spaces.Discrete(2)
    observation_space = gym.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        self.n = 0
        return 0, {}

    def step(self, action: int) -> tuple[int, Any, bool, bool, dict]:
        self.n += 1
        return 0, np.float32(-1.0 if action == 0 else 1.0), self.n == 3, False, {}


def test_a_failure_fn_returning_a_numpy_bool_marks_failures(tmp_path: Path) -> None:
    env = Recorder(Rewards(), tmp_path / "run", failure_fn=lambda s: s["reward"] < 0)  # np.True_ / np.False_
    env.reset(seed=0)
    for a in (0, 0, 1):
        env.step(a)
    env.close()
    with open_episode(env.episode_path) as ep:
        assert ep.summary["failures"] == 2
        assert [s.failure.kind if s.failure else None for s in ep] == ["failure_fn", "failure_fn", None]
