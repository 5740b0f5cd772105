"""Bytes nested in info or the state are shown whole by ``show --full`` and the viewer (as Python's repr, as the
diff lines and a top-level observation show them), not as ``"<N bytes>"``; the whole-state view (``show --state``,
the viewer's ``s``) shows sets, frozensets and tuples as such, not as JSON lists."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from tui_helpers import open_ready, until

from trajrec.cli import main
from trajrec.recorder import Recorder
from trajrec.tui.app import create_app
from trajrec.tui.state_pane import StatePane
from trajrec.tui.step_detail import StepDetail

BIG = bytes(range(256)) * 40  # 10 KiB: past show's preview


class _BytesEnv(gym.Env):
    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.s: dict[str, Any] = {"blob": b"PNG\x00\x01 header"}
        return b"", {}

    def state_dict(self) -> dict[str, Any]:
        return self.s

    def step(self, action: int):
        self.s["blob"] = b"GIF89a\x00\xff tool wrote this"
        self.s["tags"] = {b"k1", (1, 2)}
        self.s["frozen"] = frozenset({7})
        self.s["one"] = (5,)
        self.s["big"] = BIG
        return b"tool output: \x00\x01\x02 binary", 0.0, True, False, {"raw": b"\xde\xad\xbe\xef", "big": BIG}


@pytest.fixture
def episode(tmp_path: Path) -> Path:
    env = Recorder(_BytesEnv(), tmp_path / "run")
    env.reset(seed=0)
    env.step(0)
    env.close()
    assert env.episode_path is not None
    return Path(env.episode_path)


def test_show_full_prints_nested_bytes_whole_and_the_state_with_its_types(episode: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["show", str(episode), "--step", "0", "--state", "--full"]) == 0
    out = capsys.readouterr().out
    assert "bytes>" not in out
    info, state = out.split("\ninfo\n", 1)[1].split("\nstate diff\n", 1)[0], out.split("state after this step\n", 1)[1]
    assert "\"raw\": b'\\xde\\xad\\xbe\\xef'" in info and repr(BIG) in info
    assert "\"blob\": b'GIF89a\\x00\\xff tool wrote this'" in state and repr(BIG) in state
    flat = " ".join(state.split())
    assert "\"frozen\": frozenset({ 7 })" in flat and "\"one\": ( 5, )" in flat
    assert "( 1, 2 )" in flat and "b'k1'" in flat and "\"tags\": {" in flat
    assert "[ 1, 2 ]" not in flat and "[ 5 ]" not in flat and "[ 7 ]" not in flat
    # Without --full the bytes are previewed (cut, their length said), never replaced by a size.
    assert main(["show", str(episode), "--step", "0"]) == 0
    out = capsys.readouterr().out
    assert "\"raw\": b'\\xde\\xad\\xbe\\xef'" in out and repr(BIG)[:100] in out and repr(BIG) not in out
    assert "(preview cut at 4,000 characters; --full prints everything)" in out


def test_the_viewer_shows_nested_bytes_and_the_state_types(episode: Path) -> None:
    async def run() -> None:
        app = create_app([episode])
        async with app.run_test(size=(160, 50)) as pilot:
            await open_ready(pilot)
            detail = app.screen.query_one(StepDetail).text.plain
            assert "bytes>" not in detail and "b'\\xde\\xad\\xbe\\xef'" in detail
            await pilot.press("s")
            pane = app.screen.query_one(StatePane)
            await until(pilot, lambda: pane.mode == "state")
            await pilot.pause()
            flat = " ".join(pane.text.plain.split())
            assert "bytes>" not in flat and "b'GIF89a\\x00\\xff tool wrote this'" in flat
            assert "frozenset({ 7 })" in flat and "( 5, )" in flat and "( 1, 2 )" in flat
    asyncio.run(run())
