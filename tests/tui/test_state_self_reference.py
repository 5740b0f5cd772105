"""A value in the state that contains itself is marked in its own place and the state diff goes on: every later
step still records what changed (it used to fail every step after, storing a snapshot with no diff). Where a diff
could not be made, `show` and the viewer say so and name the error, instead of "no state change"."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import gymnasium as gym
import pytest
from tui_helpers import SIZE, open_ready, step_of, until

from trajrec.cli import main
from trajrec.recorder import Recorder, Unencodable, open_episode
from trajrec.tui.app import create_app
from trajrec.tui.state_pane import StatePane


class LoopEnv(gym.Env):
    """A counter in the state; at step 1 the env adds a list that contains itself, at step 4 it removes it."""

    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.st: dict[str, Any] = {"n": 0}
        self.t = 0
        return 0, {}

    def state_dict(self) -> dict[str, Any]:
        return self.st

    def step(self, action: int):
        self.t += 1
        self.st["n"] = self.t
        if self.t == 2:
            loop: list[Any] = ["x"]
            loop.append(loop)
            self.st["loop"] = loop
        if self.t == 5:
            del self.st["loop"]
        return 0, 0.0, self.t >= 7, False, {}


@pytest.fixture()
def episode_path(tmp_path):
    rec = Recorder(LoopEnv(), tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one RuntimeWarning and one CodecWarning: documented
        rec.reset(seed=0)
        for _ in range(7):
            rec.step(0)
        rec.close()
    return rec.episode_path


def test_diffs_go_on_after_a_self_reference_appears(episode_path) -> None:
    ep = open_episode(episode_path)
    assert [s.index for s in ep if not s.diff] == [1]  # only the step that brought the loop lacks a diff
    assert [{r.path[0] for r in s.diff} for s in ep if s.index >= 2] == [{"n"}, {"n"}, {"n", "loop"}, {"n"}, {"n"}]
    assert not any(s.recorder_errors for s in ep if s.index >= 2)
    for i in range(7):
        state = ep.state_at(i)
        assert state["n"] == i + 1
        if 1 <= i <= 3:
            assert state["loop"][0] == "x" and isinstance(state["loop"][1], Unencodable)
        else:
            assert "loop" not in state


def test_show_and_the_viewer_say_when_a_diff_could_not_be_made(episode_path, capsys) -> None:
    assert main(["show", str(episode_path), "--step", "1"]) == 0
    out = capsys.readouterr().out
    assert "the state diff of this step could not be made (state diff raised RecursionError" in out
    assert "recorder errors" in out and "state copy: RecursionError" in out

    async def run() -> None:
        app = create_app([episode_path])
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            body = lambda: app.screen.query_one(StatePane).text.plain  # noqa: E731
            await pilot.press("g", "l")
            await until(pilot, lambda: step_of(app) == 1)
            await pilot.pause()
            assert "could not be made" in body() and "no state change" not in body()
            await pilot.press("l")
            await until(pilot, lambda: step_of(app) == 2)
            await pilot.pause()
            assert "n: 2 → 3" in body()
    asyncio.run(run())
