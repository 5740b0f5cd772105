"""The viewer says a step came after the episode's end (no reset between: recorded marked ``after_end``, as `show`
marks it), so nobody reads it as part of the episode's outcome; the real app, headless, on a real recording."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import gymnasium as gym
from tui_helpers import open_ready, until

from trajrec.recorder import Recorder
from trajrec.tui.app import create_app
from trajrec.tui.step_detail import StepDetail


class EndsAtTwo(gym.Env):
    observation_space = gym.spaces.Discrete(100)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        super().reset(seed=seed)
        self.n = 0
        return 0, {}

    def step(self, action):  # type: ignore[no-untyped-def]
        self.n += 1
        return self.n, 1.0, self.n == 2, False, {}


def test_the_step_pane_says_a_step_came_after_the_end(tmp_path: Path) -> None:
    env = Recorder(EndsAtTwo(), tmp_path / "run")
    env.reset(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the Recorder's warning about the step after the end
        for _ in range(3):
            env.step(0)
    env.close()
    assert env.episode_path is not None

    async def run() -> None:
        app = create_app([env.episode_path])
        async with app.run_test(size=(120, 40)) as pilot:
            await open_ready(pilot)
            detail = app.screen.query_one(StepDetail)
            assert "after the end" not in detail.text.plain  # step 0: within the episode
            await pilot.press("G")
            await until(pilot, lambda: "step 2 of" in detail.text.plain)
            assert "after the end (no reset): not part of the episode's outcome or return" in detail.text.plain
            await pilot.press("h")
            await until(pilot, lambda: "step 1 of" in detail.text.plain)
            assert "terminated" in detail.text.plain and "after the end" not in detail.text.plain
    asyncio.run(run())
