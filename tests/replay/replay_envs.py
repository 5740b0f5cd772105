"""Test envs for the replay tests, registered under ``replaytest/*`` ids, and a recording helper.

* ``replaytest/Script-v0`` (:class:`ScriptEnv`): deterministic; ``ScriptEnv.tweak`` (set by a test between
  recording and replaying) changes what a step returns, so a test controls exactly what diverges.
* ``replaytest/Noisy-v0`` (:class:`NoisyEnv`): genuinely nondeterministic: at step ``at`` it puts a number
  from an unseeded RNG into ``noise_in`` (``info``, ``observation`` or ``state``).
* ``replaytest/Boom-v0`` (:class:`BoomEnv`): raises at step ``boom_at``.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym

from trajrec.recorder import Recorder

_PRINTABLE = string.printable


class ScriptEnv(gym.Env):
    """`write NAME TEXT` writes a file into the state, anything else echoes; terminates on `done`."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}
    #: ``tweak(env, i, obs, reward, info) -> (obs, reward, info)``; None: no change.
    tweak: ClassVar[Callable[..., tuple[Any, Any, Any]] | None] = None

    def __init__(self, greeting: str = "hello") -> None:
        self.observation_space = gym.spaces.Text(max_length=10_000, charset=_PRINTABLE)
        self.action_space = gym.spaces.Text(max_length=1000, charset=_PRINTABLE)
        self.greeting = greeting
        self.state: dict[str, Any] = {}
        self.i = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.i = 0
        self.state = {"files": {}, "count": 0, "luck": int(self.np_random.integers(1000))}
        return f"{self.greeting} {self.state['luck']}", {"task": {"id": "script-1", "text": "write files"}}

    def state_dict(self) -> dict[str, Any]:
        return {"files": dict(self.state["files"]), "count": self.state["count"], "luck": self.state["luck"]}

    def step(self, action: str):
        self.i += 1
        words = action.split(" ", 2)
        info: dict[str, Any] = {"n": self.i}
        if words[0] == "write" and len(words) == 3:
            self.state["files"][words[1]] = words[2]
            obs = "ok"
        else:
            obs = f"echo {action}"
        self.state["count"] += 1
        reward = 1.0 if words[0] == "done" else 0.0
        if ScriptEnv.tweak is not None:
            obs, reward, info = ScriptEnv.tweak(self, self.i - 1, obs, reward, info)
        return obs, reward, words[0] == "done", False, info


class NoisyEnv(gym.Env):
    """Deterministic except at step ``at``, where an unseeded RNG draws a number into ``noise_in``."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, noise_in: str = "info", at: int = 3) -> None:
        self.observation_space = gym.spaces.Text(max_length=1000, charset=_PRINTABLE)
        self.action_space = gym.spaces.Text(max_length=1000, charset=_PRINTABLE)
        self.noise_in = noise_in
        self.at = at
        self._unseeded = random.Random()  # deliberately not derived from the reset seed
        self.i = 0
        self.noise = 0.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.i = 0
        self.noise = 0.0
        return "start", {}

    def state_dict(self) -> dict[str, Any]:
        return {"i": self.i, "noise": self.noise}

    def step(self, action: str):
        info: dict[str, Any] = {"elapsed": 0.0}
        obs = f"step {self.i}: {action}"
        if self.i == self.at:
            draw = self._unseeded.random() + 1.0  # never 0.0, so it always differs from "no noise"
            if self.noise_in == "info":
                info["noise"] = draw
            elif self.noise_in == "observation":
                obs = f"{obs} {draw}"
            else:
                self.noise = draw
        self.i += 1
        return obs, 0.0, False, False, info


class BoomEnv(gym.Env):
    """Raises ``ValueError`` at step ``boom_at`` (``OSError`` in reset when negative); ``random_message`` puts an
    unseeded number in the message."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, boom_at: int = 2, random_message: bool = False) -> None:
        self.observation_space = gym.spaces.Text(max_length=1000, charset=_PRINTABLE)
        self.action_space = gym.spaces.Text(max_length=1000, charset=_PRINTABLE)
        self.boom_at = boom_at
        self.random_message = random_message
        self.i = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if self.boom_at < 0:
            raise OSError("no sandbox available")
        self.i = 0
        return "ready", {}

    def step(self, action: str):
        if self.i == self.boom_at:
            extra = f" (token {random.Random().random()})" if self.random_message else ""
            raise ValueError(f"cannot handle {action!r}{extra}")
        self.i += 1
        return f"did {action}", 0.0, False, False, {}


TEST_IDS = {"replaytest/Script-v0": ScriptEnv, "replaytest/Noisy-v0": NoisyEnv, "replaytest/Boom-v0": BoomEnv}


def register_test_envs() -> None:
    """Register the test ids with a class entry point (so headers record no entry point for them)."""
    for env_id, cls in TEST_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=cls)


def record_episode(env: gym.Env | str, out: Path, actions: Iterable[Any], *, seed: int | None = 0,
                   options: dict[str, Any] | None = None, **recorder_kwargs: Any) -> Path:
    """Record one episode of ``actions`` (stopping early at termination or at an exception); return its file."""
    rec = Recorder(gym.make(env) if isinstance(env, str) else env, out, **recorder_kwargs)
    try:
        obs, info = rec.reset(seed=seed, options=options)
        for action in actions:
            try:
                obs, reward, terminated, truncated, info = rec.step(action)
            except Exception:
                break
            if terminated or truncated:
                break
    finally:
        rec.close()
    assert rec.episode_path is not None
    return rec.episode_path
