"""A text tool env for tests that record chosen actions and look at how they are shown: every reset answers
``"r"``, every step ``"o"`` with a reward of 0.0 and a copy of the ``info`` it was made with."""

from __future__ import annotations

from typing import Any

import gymnasium as gym


class EchoTextEnv(gym.Env):
    action_space = gym.spaces.Text(100)
    observation_space = gym.spaces.Text(100)

    def __init__(self, info: dict[str, Any] | None = None) -> None:
        self._info = info or {}

    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        return "r", {}

    def step(self, action):  # type: ignore[no-untyped-def]
        return "o", 0.0, False, False, dict(self._info)
