"""Recorder API edges: a note after close raises as a step or check does; a check's judge is one word (as a
label's); a check of step N before any step says that no step is recorded yet."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest

from trajrec import Recorder
from trajrec.recorder.errors import EpisodeClosedError, TrajrecUsageError


def _env(tmp_path: Path) -> Recorder:
    env = Recorder(gym.make("CartPole-v1"), tmp_path / "run")
    env.reset(seed=0)
    return env


def test_note_after_close_raises(tmp_path: Path) -> None:
    env = _env(tmp_path)
    env.close()
    with pytest.raises(EpisodeClosedError, match="cannot note: this Recorder is closed"):
        env.note(thought="too late")


def test_a_judge_with_a_space_is_refused(tmp_path: Path) -> None:
    env = _env(tmp_path)
    env.step(0)
    with pytest.raises(TrajrecUsageError, match="without spaces"):
        env.check(True, judge="j 1")
    env.check(True, judge="j@1")
    env.close()


def test_a_step_target_before_any_step_says_no_step_is_recorded(tmp_path: Path) -> None:
    env = _env(tmp_path)
    with pytest.raises(TrajrecUsageError, match=r"\(no step is recorded yet\), got 5"):
        env.check(True, judge="j@1", target=5)
    env.close()
