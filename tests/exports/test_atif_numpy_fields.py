"""`export --format atif` on episodes whose step fields are numpy values (Gymnasium's Pendulum returns a numpy
float reward): written like every other format writes them, never a traceback or a skipped episode."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np

from trajrec import Recorder
from trajrec.cli import main


class _NumpyEnv:
    def __init__(self) -> None:
        self.t = 0

    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        self.t = 0
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):  # type: ignore[no-untyped-def]
        self.t += 1
        reward = [np.float32(1.5), np.float64(0.0), np.array([1.0, -2.0]), np.int64(3)][self.t - 1]
        return np.ones(2, dtype=np.float32), reward, np.bool_(self.t == 4), False, {}


def test_numpy_rewards_and_flags_export_to_atif(tmp_path: Path) -> None:
    env = Recorder(gym.make("Pendulum-v1"), tmp_path / "run")
    env.reset(seed=0)
    for _ in range(5):
        env.step(env.action_space.sample())
    env.close()
    own = Recorder(_NumpyEnv(), tmp_path / "run")
    own.reset(seed=0)
    for a in range(4):
        own.step(a)
    own.close()
    out = tmp_path / "a.jsonl"
    assert main(["export", str(tmp_path / "run"), "--format", "atif", "--out", str(out)]) == 0
    docs = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(docs) == 2  # none left out
    rewards = sorted((json.dumps([s.get("extra", {}).get("trajrec", {}).get("reward") for s in d["steps"]
                                  if s.get("source") == "agent"]) for d in docs), key=len)
    assert rewards[0] == json.dumps([1.5, 0.0, [1.0, -2.0], 3]), rewards[0]  # a zero reward is written, as recorded
    pendulum = json.loads(rewards[1])
    assert len(pendulum) == 5 and all(isinstance(r, float) and r <= 0 for r in pendulum), pendulum
