"""dpo ranks attempts by their verdict, then by the preferred episode label's score. A tester found two failed
attempts paired with no label at all: the failed `rule` check counted again as a score of -1, while a failed
`environment` check (not among the preferred kinds) counted nothing, so timing out "beat" a wrong answer."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import pytest

from trajrec import Recorder
from trajrec.cli import main
from trajrec.replay.labels import LabelStore


class _Task(gym.Env):
    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return "what is 2+2?", {"task": {"id": "add-1", "text": "what is 2+2?"}}

    def step(self, action):
        return "ok", 0.0, True, False, {}


def _attempt(run: Path, kind: str, judge: str, value, score=None) -> str:
    env = Recorder(_Task(), run)
    env.reset(seed=0)
    env.step(0)
    env.check(value, kind=kind, judge=judge, target="episode", score=score)
    env.close()
    return env.episode_path


def _pairs(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    out = tmp_path / "dpo.jsonl"
    capsys.readouterr()
    assert main(["export", str(run), "--format", "dpo", "--out", str(out), "--overwrite"]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_two_failed_attempts_are_not_paired_on_their_checks_kinds(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    _attempt(run, "rule", "exact-answer@1", False)
    timed_out = _attempt(run, "environment", "step-limit@1", False)
    assert _pairs(run, tmp_path, capsys) == []
    # A person's episode label breaks the tie: then they pair, the labeled one chosen.
    from trajrec import open_episode

    LabelStore(run).add(open_episode(timed_out).episode_id, "episode", 1, judge="human:ana")
    rows = _pairs(run, tmp_path, capsys)
    assert len(rows) == 1 and rows[0]["trajrec"]["chosen"]["episode_id"] == open_episode(timed_out).episode_id


def test_a_grading_check_still_breaks_a_tie(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    low = _attempt(run, "rule", "exact-answer@1", False)
    high = _attempt(run, "rule", "exact-answer@1", False)
    from trajrec import open_episode

    for path, score in ((low, 0.1), (high, 0.9)):  # a judge's grade of each failed attempt, recorded as a check
        env_free = open_episode(path).episode_id
        LabelStore(run).add(env_free, "episode", score, judge="grader@1", kind="judge")
    rows = _pairs(run, tmp_path, capsys)
    assert len(rows) == 1 and rows[0]["trajrec"]["chosen"]["episode_id"] == open_episode(high).episode_id
