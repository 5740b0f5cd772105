"""An env that declares ``info["tools"]`` as a list of names (not function schemas) gets one warning per env from
the chat export (and the others that read tools), naming the env and the shape expected."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import gymnasium as gym
import pytest

from trajrec import Recorder
from trajrec.replay.exports import export


class NamedToolsEnv(gym.Env):
    observation_space = gym.spaces.Text(100)
    action_space = gym.spaces.Text(100)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return "start", {"tools": ["set", "get", "done"]}

    def step(self, action):
        self.t += 1
        return "ok", 0.0, self.t >= 2, False, {}


def test_names_as_tools_warn_once_naming_env_and_shape(tmp_path: Path) -> None:
    env = Recorder(NamedToolsEnv(), tmp_path / "run")
    for seed in range(3):
        env.reset(seed=seed)
        env.step('{"tool": "set", "args": {"key": "a"}}')
        env.step('{"tool": "done", "args": {}}')
    env.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export([tmp_path / "run"], "chat", tmp_path / "sft.jsonl")
    odd = [w for w in caught if "not a function schema" in str(w.message)]
    assert len(odd) == 1, [str(w.message) for w in caught]
    text = str(odd[0].message)
    assert "NamedToolsEnv" in text and "3 tools" in text and "'set'" in text
    assert "{'type': 'function', 'function': {'name'" in text and "Declaring an env's tools" in text
    rows = [json.loads(line) for line in (tmp_path / "sft.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(r["tools"] == [] for r in rows)  # still no tool invented from a name
