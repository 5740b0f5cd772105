"""A step whose ``env.step`` raised carries the state change the env made before raising: ``state_at(i)`` is the
state after it, and the next step is not blamed for that change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

from trajrec import Recorder, open_episode


class HalfFailingTool(gym.Env):
    """``rm NAME`` deletes the file, then raises on ``rm a`` (an I/O error after the unlink); ``ls`` changes
    nothing; ``done`` ends the episode."""

    observation_space = gym.spaces.Text(100)
    action_space = gym.spaces.Text(100)

    def __init__(self, broken_state: bool = False) -> None:
        self.broken_state = broken_state
        self.files: set[str] = set()

    def state_dict(self) -> dict[str, Any]:
        if self.broken_state and "a" not in self.files:
            raise RuntimeError("state unavailable")
        return {"files": sorted(self.files)}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict]:
        super().reset(seed=seed)
        self.files = {"a", "b"}
        return "start", {}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        if action.startswith("rm "):
            self.files.discard(action[3:])
            if action == "rm a":
                raise OSError("EIO after unlink")
        return " ".join(sorted(self.files)), 0.0, action == "done", False, {}


def _record(tmp_path: Path, actions: list[str], **kw: Any) -> Path:
    env = Recorder(HalfFailingTool(**kw), tmp_path / "run")
    env.reset(seed=0)
    for a in actions:
        try:
            env.step(a)
        except OSError:
            pass
    env.close()
    return Path(env.episode_path)


def test_the_raising_step_carries_its_state_change(tmp_path: Path) -> None:
    path = _record(tmp_path, ["rm a", "ls", "rm b", "done"])
    with open_episode(path) as ep:
        assert ep[0].failure is not None and ep[0].failure.kind == "exception"
        assert ep.state_at(0) == {"files": ["b"]}
        assert [(d.path, d.action) for d in ep[0].diff] == [(["files", 0], "iterable_item_removed")]
        assert list(ep[1].diff) == []  # ls changed nothing
        assert ep.state_at(1) == {"files": ["b"]}
        assert ep.state_at(2) == {"files": []}


def test_a_raising_step_that_opens_a_frame_stores_the_state(tmp_path: Path) -> None:
    # Many steps so that a raising step falls at a frame start; every state_at is right whatever the frame size.
    actions = ["ls"] * 300 + ["rm a"] + ["ls"] * 5 + ["done"]
    path = _record(tmp_path, actions)
    with open_episode(path) as ep:
        for i in (299, 300, 301, 306):
            assert ep.state_at(i) == ({"files": ["a", "b"]} if i < 300 else {"files": ["b"]}), i


def test_a_state_fn_error_after_a_raising_step_is_recorded_not_raised(tmp_path: Path) -> None:
    env = Recorder(HalfFailingTool(broken_state=True), tmp_path / "run")
    env.reset(seed=0)
    with pytest.warns(RuntimeWarning, match="state_fn raised RuntimeError"):
        with pytest.raises(OSError, match="EIO after unlink"):  # the env's exception, not the state_fn's
            env.step("rm a")
    env.close()
    with open_episode(env.episode_path) as ep:
        assert ep[0].failure is not None and ep[0].failure.kind == "exception"
        assert [e["where"] for e in ep[0].recorder_errors] == ["state_fn"]
        # the state after the step says it was not read (never the reset's state)
        marker = ep.state_at(0)
        assert marker.type == "trajrec.StateNotRead" and "RuntimeError: state unavailable" in marker.repr
