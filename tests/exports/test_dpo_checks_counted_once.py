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


def test_tied_attempts_are_left_out_as_tied_not_as_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """FINDINGS34 B6: two attempts at one task that rank the same were left out as "no attempt at the same task to
    pair it with", with the hint to record several attempts per task, which they already are."""
    run = tmp_path / "run"
    _attempt(run, "rule", "exact-answer@1", False)
    _attempt(run, "rule", "exact-answer@1", False)
    out = tmp_path / "dpo.jsonl"
    capsys.readouterr()
    assert main(["export", str(run), "--format", "dpo", "--out", str(out), "--overwrite"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "2 (0 passed, 2 failed): its attempts at the same task tie (none left ranks lower to pair it with)" in err
    assert "no attempt at the same task to pair it with" not in err and "record several attempts" not in err
    assert "these rank the same; rate the better one higher" in err  # the hint fits the reason


def test_the_attempt_left_between_two_paired_ones_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from trajrec import open_episode
    from trajrec.replay.exports import export
    from trajrec.replay.exports.prefs import LEFT_BETWEEN, TIED, UNPAIRED

    run = tmp_path / "run"
    _attempt(run, "rule", "exact-answer@1", True)
    _attempt(run, "rule", "exact-answer@1", False)
    middle = _attempt(run, "rule", "exact-answer@1", False)
    LabelStore(run).add(open_episode(middle).episode_id, "episode", 1, judge="human:ana")  # above the other fail
    rep = export([run], "dpo", tmp_path / "dpo.jsonl")
    assert rep.rows == 1 and rep.left_out == {LEFT_BETWEEN: {"failed": 1}}
    # One attempt alone at its task keeps the reason it had.
    alone = tmp_path / "alone"
    _attempt(alone, "rule", "exact-answer@1", True)
    rep = export([alone], "dpo", tmp_path / "dpo2.jsonl")
    assert rep.left_out == {UNPAIRED: {"passed": 1}} and TIED not in rep.left_out
