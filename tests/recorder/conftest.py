"""Fixtures for the recorder tests: a tiny text tool env whose reset/step are injectable."""

from __future__ import annotations

from typing import Any, Callable

import gymnasium as gym
import pytest


class StubToolEnv(gym.Env):
    """A text env: `cat NAME` reads a file of a small virtual tree, `write NAME TEXT` writes one, `boom` raises.

    ``step_fn``/``reset_fn`` replace the behaviour when given. ``state_dict`` returns the live state object.
    """

    metadata = {"render_modes": []}

    def __init__(self, step_fn: Callable[..., Any] | None = None, reset_fn: Callable[..., Any] | None = None,
                 max_steps: int = 1000) -> None:
        self.observation_space = gym.spaces.Text(max_length=10_000)
        self.action_space = gym.spaces.Text(max_length=1000)
        self.step_fn = step_fn
        self.reset_fn = reset_fn
        self.max_steps = max_steps
        self.state: dict[str, Any] = {}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if self.reset_fn is not None:
            return self.reset_fn(self, seed=seed, options=options)
        self.t = 0
        self.state = {"files": {"notes.txt": "hello", "todo.txt": "buy milk"}, "cwd": "/", "log": []}
        return "files: notes.txt todo.txt", {"task": {"id": "stub-1", "text": "read the notes", "split": "test",
                                                      "verification": ["environment"]}}

    def state_dict(self) -> dict[str, Any]:
        return self.state

    def step(self, action: str):
        if self.step_fn is not None:
            return self.step_fn(self, action)
        self.t += 1
        words = action.split(" ", 2)
        info: dict[str, Any] = {}
        if words[0] == "boom":
            raise RuntimeError("the env exploded")
        if words[0] == "cat" and len(words) > 1:
            text = self.state["files"].get(words[1])
            if text is None:
                obs = f"cat: {words[1]}: No such file"
                info["error"] = "no such file"
            else:
                obs = text
        elif words[0] == "write" and len(words) > 2:
            self.state["files"][words[1]] = words[2]
            obs = "ok"
        else:
            obs = f"unknown command {words[0]!r}"
            info["error"] = "unknown command"
        self.state["log"].append(action)
        done = action == "write done yes"
        if done:
            info["checks"] = [{"kind": "environment", "judge": "stub-goal@1", "value": True, "target": "episode",
                               "rationale": "done file written"}]
        return obs, (1.0 if done else 0.0), done, self.t >= self.max_steps, info


@pytest.fixture
def stub_env() -> Callable[..., StubToolEnv]:
    return StubToolEnv

