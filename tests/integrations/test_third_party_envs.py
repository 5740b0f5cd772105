"""Third-party envs from PyPI, recorded, viewed, labeled and exported: MiniGrid (a gymnasium.Env with a dict
observation holding mission text and an image) and GEM (an LLM-agent env suite whose envs only look like
Gymnasium's: ``gem.make`` objects with ``reset(seed)`` and a 5-tuple ``step``).

Install and run: ``pip install -e '.[thirdparty,test]' && python -m pytest -m heavy tests/integrations``.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import numpy as np
import pytest

from trajrec.cli import main
from trajrec.recorder import GymLikeEnv, Recorder, open_episode

pytestmark = pytest.mark.heavy


async def _until(pilot, cond, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if cond():
            return
        await pilot.pause(0.02)
    raise AssertionError("condition not reached in time")


def view_label_export(path: Path, tmp_path: Path, expect_text: str, capsys) -> dict:
    """Open ``path`` in the viewer and rate step 0 with ``+``; then export the run as records; return the row."""
    from trajrec.tui.app import create_app
    from trajrec.tui.episode_screen import EpisodeScreen
    from trajrec.tui.step_detail import StepDetail

    async def run() -> None:
        app = create_app([path], annotator="ana")
        async with app.run_test(size=(120, 40)) as pilot:
            await _until(pilot, lambda: isinstance(app.screen, EpisodeScreen) and app.screen.markers_ready)
            await pilot.pause()
            assert expect_text in app.screen.query_one(StepDetail).text.plain
            await pilot.press("plus")
            await pilot.pause()

    asyncio.run(run())
    out = tmp_path / "records.jsonl"
    assert main(["export", str(path.parent), "--format", "records", "--out", str(out)]) == 0
    capsys.readouterr()
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    # records@2 writes fields whose type the env or the labels decide as JSON text.
    checks = json.loads(row["checks"]) if isinstance(row["checks"], str) else row["checks"]
    assert [(c["origin"], c["target"], c["value"], c["judge"]) for c in checks] == [("label", 0, 1, "human:ana")]
    return row


def test_minigrid_mission_and_image_observations(tmp_path, capsys):
    gym = pytest.importorskip("gymnasium")
    pytest.importorskip("minigrid")
    import minigrid  # noqa: F401  (registers MiniGrid-*)

    env = Recorder(gym.make("MiniGrid-Empty-5x5-v0"), tmp_path / "run", agent="scripted")
    obs, _ = env.reset(seed=1)
    observations = [obs]
    actions = [2, 2, 1, 2, 2, 0, 2]  # forward, forward, right, forward, forward, left, forward
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        if terminated or truncated:
            break
    env.close()
    ep = open_episode(env.episode_path)
    assert ep.task["env_id"] == "MiniGrid-Empty-5x5-v0" and ep.provenance["env_package"]["package"] == "minigrid"
    assert ep.reset.observation["mission"] == "get to the green goal square"
    recorded = [ep.reset.observation] + [st.observation for st in ep]
    assert len(recorded) == len(observations)
    for got, want in zip(recorded, observations):
        assert got["image"].dtype == want["image"].dtype == np.uint8 and got["image"].shape == (7, 7, 3)
        assert np.array_equal(got["image"], want["image"]) and got["direction"] == want["direction"]
        assert got["mission"] == want["mission"]
    assert [st.action for st in ep] == actions[: len(ep)]
    assert main(["show", str(env.episode_path), "--step", "0"]) == 0
    assert "get to the green goal square" in capsys.readouterr().out
    row = view_label_export(env.episode_path, tmp_path, "get to the green goal square", capsys)
    assert json.loads(row["reset"]["observation"])["mission"] == "get to the green goal square"
    assert len(row["steps"]) == len(ep)


def test_gem_guess_the_number_is_recorded_through_the_adapter(tmp_path, capsys):
    gem = pytest.importorskip("gem")
    obj = gem.make("game:GuessTheNumber-v0-easy")
    env = Recorder(obj, tmp_path / "run", agent={"name": "bisect"}, task={"id": "guess-easy", "split": "test"})
    assert isinstance(env.env, GymLikeEnv)
    obs, info = env.reset(seed=0)
    low, high = 1, 10
    guesses = []
    terminated = truncated = False
    while not (terminated or truncated):
        guess = (low + high) // 2
        guesses.append(guess)
        env.note(thought=f"between {low} and {high}: try the middle")
        obs, reward, terminated, truncated, info = env.step(f"My guess is \\boxed{{{guess}}}")
        if "higher" in obs:
            low = guess + 1
        elif "lower" in obs:
            high = guess - 1
    env.close()
    ep = open_episode(env.episode_path)
    assert ep.task["id"] == "guess-easy" and ep.task["env_id"] is None
    assert ep.provenance["env_package"]["package"] == "gem"
    assert ep.reset.observation.startswith("You are playing Guess The Number.")
    assert [re.search(r"boxed\{(\d+)\}", st.action).group(1) for st in ep] == [str(g) for g in guesses]
    assert ep[-1].terminated and ep.summary["return"] == pytest.approx(sum(float(st.reward) for st in ep))
    assert ep[0].note == {"thought": "between 1 and 10: try the middle"}
    row = view_label_export(env.episode_path, tmp_path, "boxed{5}", capsys)
    assert row["task_id"] == "guess-easy" and json.loads(row["steps"][0]["action"]).endswith("\\boxed{5}")
