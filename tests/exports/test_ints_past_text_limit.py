"""Ints longer than Python's int-to-text limit (4,300 digits: ``str()`` raises ``ValueError``) are recorded
exactly; exporting, ``show`` and the viewer crashed on them with a traceback."""

from __future__ import annotations

import asyncio
import json
import random
import sys
from pathlib import Path

import gymnasium as gym
import pytest

from trajrec import Recorder
from trajrec.cli import main
from trajrec.recorder.codec import int_text

HUGE = 7**6000  # 5,071 digits
NEG = -(10**4400) - 3


class _BigEnv(gym.Env):
    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def state_dict(self):
        return {"n": self.n}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.n = 10**5000
        return 0, {"big": NEG}

    def step(self, action):
        self.n += 1
        return 0, 0.0, True, False, {"big": HUGE}


@pytest.fixture
def episode(tmp_path: Path) -> Path:
    env = Recorder(_BigEnv(), tmp_path / "run")
    env.reset(seed=0)
    env.step(0)
    env.close()
    return env.episode_path


def _digits(value: int) -> str:
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        return str(value)
    finally:
        sys.set_int_max_str_digits(old)


def test_int_text_is_str_without_the_limit() -> None:
    rng = random.Random(7)
    for bits in (1, 63, 64, 14_000, 14_300, 20_000, 50_000):
        for _ in range(5):
            v = rng.getrandbits(bits) * rng.choice((1, -1))
            assert int_text(v) == _digits(v)
    assert int_text(10**3000 * 10**3000) == "1" + "0" * 6000 and int_text(-(10**4400)) == "-1" + "0" * 4400


@pytest.mark.parametrize("fmt", ["records", "chat", "parquet", "atif"])
def test_exports_keep_them(episode: Path, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / ("out.parquet" if fmt == "parquet" else "out.jsonl")
    assert main(["export", str(episode), "--format", fmt, "--out", str(out)]) == 0
    if fmt == "records":
        row = json.loads(out.read_text())
        # records writes each recorded value as JSON text (docs/EXPORT.md)
        assert json.loads(row["steps"][0]["info"])["big"] == {"$int": _digits(HUGE)}
        assert json.loads(row["reset"]["info"])["big"] == {"$int": _digits(NEG)}


def test_show_and_the_viewer_show_them(episode: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["show", str(episode), "--step", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["info"]["big"] == {"$int": _digits(HUGE)}
    assert main(["show", str(episode), "--step", "0", "--state"]) == 0
    out = capsys.readouterr().out
    assert "~ n: 1000000000" in out and _digits(HUGE)[:200] in out

    from trajrec.tui.app import create_app
    from trajrec.tui.state_pane import StatePane

    async def run() -> None:
        app = create_app([episode])
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(50):
                await pilot.pause(0.05)
                if app.screen.query(StatePane):
                    break
            await pilot.press("l", "s", "y")
            await pilot.pause(0.2)
            assert app.screen.query(StatePane)  # still the episode screen: nothing raised
    asyncio.run(run())
