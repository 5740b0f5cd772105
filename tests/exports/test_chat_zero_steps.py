"""chat leaves out an episode without an assistant turn (reset, then closed): a row of only the user message is
nothing to train on; the report counts it as left out, as kto does."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import pytest

from trajrec import Recorder
from trajrec.cli import main
from trajrec.replay.exports import export


@pytest.fixture
def run(tmp_path: Path) -> Path:
    out = tmp_path / "run"
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "2", "--out", str(out), "--json"]) == 0
    import trajrec.envs  # noqa: F401  (registers the ids)

    env = Recorder(gym.make("trajrec/MathCalc-v0"), out)
    env.reset(seed=7)
    env.close()  # outcome stopped, 0 steps
    return out


@pytest.mark.parametrize("workers", [1, 2])
def test_chat_leaves_out_an_episode_without_an_assistant_turn(run: Path, tmp_path: Path, workers: int) -> None:
    out = tmp_path / "chat.jsonl"
    report = export([run], "chat", out, workers=workers)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == report.written == 2
    assert all(any(m["role"] == "assistant" for m in r["messages"]) for r in rows)
    assert report.left_out == {"no step": {"stopped": 1}}
