"""An episode a live Recorder is still writing is exported as far as it was written, and said to be live (a
tester: it went out as an `incomplete` episode without a word, while `fsck` knew it was being written)."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import pytest

from trajrec import Recorder
from trajrec.cli import main


class _Counter(gym.Env):
    observation_space = gym.spaces.Discrete(100)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.n = 0
        return 0, {}

    def step(self, action):
        self.n += 1
        return self.n, 1.0, self.n >= 50, False, {}


@pytest.mark.parametrize("workers", [1, 2])
def test_an_episode_still_being_written_is_exported_and_named(tmp_path: Path, workers: int,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    done = Recorder(_Counter(), run)
    done.reset(seed=0)
    for _ in range(50):
        done.step(0)
    done.close()
    live = Recorder(_Counter(), run)
    live.reset(seed=1)
    for _ in range(3):
        live.step(1)
    try:
        out = tmp_path / "out.jsonl"
        capsys.readouterr()
        assert main(["export", str(run), "--format", "records", "--out", str(out), "--json",
                     "--workers", str(workers)]) == 0
        cap = capsys.readouterr()
        report = json.loads(cap.out)
        assert report["live"] == [str(live.episode_path)]
        assert f"{live.episode_path} is still being written (a live Recorder holds it)" in cap.err
        assert str(done.episode_path) not in cap.err
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert sorted(len(r["steps"]) for r in rows) == [3, 50]
    finally:
        live.close()
    capsys.readouterr()
    assert main(["export", str(run), "--format", "records", "--out", str(tmp_path / "again.jsonl"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["live"] == []
