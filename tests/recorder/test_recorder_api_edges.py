"""Recorder API edges: a note after close raises as a step or check does; a check's judge is one word (as a
label's); a check of step N before any step says that no step is recorded yet."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
from gymnasium.envs.classic_control import CartPoleEnv
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


@pytest.mark.parametrize("cls", [CartPoleEnv, type("PlainEnv", (), {
    "reset": lambda self, *, seed=None, options=None: (0, {}), "step": lambda self, a: (0, 0.0, False, False, {})})],
    ids=["gym-class", "gym-like-class"])
def test_a_class_instead_of_an_instance_is_refused_and_writes_nothing(tmp_path: Path, cls: type) -> None:
    out = tmp_path / "out"
    with pytest.raises(TrajrecUsageError, match=rf"Recorder got the class {cls.__name__}, not an env; pass an "
                                                 rf"instance: Recorder\({cls.__name__}\(\.\.\.\), out_dir\)"):
        Recorder(cls, out)
    assert not out.exists()
