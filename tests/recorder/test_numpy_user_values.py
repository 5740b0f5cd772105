"""Values the user's code returns to the recorder as numpy scalars mean what their Python values mean: a
``failure_fn`` answering ``np.True_`` (any comparison on a numpy reward) marks the step failed, and ``env.check``
takes a numpy int as a step index. A ``failure_fn`` answer the recorder cannot read is not ignored silently."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trajrec import Recorder, open_episode
from trajrec.recorder.errors import TrajrecUsageError


class _Env:
    """Rewards are ``np.float32`` (as many Gymnasium envs return): -1 for action 0, +1 otherwise; ends at step 3."""

    def reset(self, *, seed: Any = None, options: Any = None) -> tuple[int, dict[str, Any]]:
        self.n = 0
        return 0, {}

    def step(self, action: int) -> tuple[int, Any, bool, bool, dict[str, Any]]:
        self.n += 1
        return 0, np.float32(-1.0 if action == 0 else 1.0), self.n == 3, False, {}


def _failures(tmp_path: Path, failure_fn: Any) -> list[str | None]:
    env = Recorder(_Env(), tmp_path / "run", failure_fn=failure_fn)
    env.reset(seed=0)
    for a in (0, 0, 1):
        env.step(a)
    env.close()
    with open_episode(env.episode_path) as ep:
        assert ep.summary["failures"] == sum(s.failure is not None for s in ep)
        return [s.failure.kind if s.failure else None for s in ep]


@pytest.mark.parametrize("failure_fn", [
    lambda s: s["reward"] < 0,                                  # np.True_ / np.False_
    lambda s: np.bool_(s["reward"] < 0),
    lambda s: bool(s["reward"] < 0),                            # the Python answer it must equal
], ids=["comparison", "np.bool_", "bool"])
def test_a_numpy_bool_from_failure_fn_marks_the_step(tmp_path: Path, failure_fn: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a numpy bool is understood: no warning
        assert _failures(tmp_path, failure_fn) == ["failure_fn", "failure_fn", None]


def test_a_numpy_false_clears_the_default_failure(tmp_path: Path) -> None:
    class ToolErrors(_Env):
        def step(self, action: int) -> tuple[int, Any, bool, bool, dict[str, Any]]:
            obs, reward, term, trunc, _ = super().step(action)
            return obs, reward, term, trunc, {"error": "tool said no"}

    env = Recorder(ToolErrors(), tmp_path / "run", failure_fn=lambda s: np.False_)
    env.reset(seed=0)
    env.step(0)
    env.close()
    with open_episode(env.episode_path) as ep:
        assert [s.failure for s in ep] == [None]


def test_an_answer_failure_fn_cannot_mean_warns_once(tmp_path: Path) -> None:
    with pytest.warns(RuntimeWarning, match=r"failure_fn returned 1 \(int\); expected None, a bool") as caught:
        assert _failures(tmp_path, lambda s: 1) == [None, None, None]  # the default rule decides
    assert sum("failure_fn returned" in str(w.message) for w in caught) == 1


def test_check_takes_a_numpy_int_step_index(tmp_path: Path) -> None:
    env = Recorder(_Env(), tmp_path / "run")
    env.reset(seed=0)
    rewards = [env.step(a)[1] for a in (0, 1, 1)]
    worst = np.argmin(rewards)  # np.int64
    env.check(False, judge="argmin@1", target=worst)
    with pytest.raises(TrajrecUsageError, match="recorded step index 0..2, got True"):
        env.check(False, judge="argmin@1", target=True)  # a bool is no step index (it was taken as step 1)
    env.close()
    with open_episode(env.episode_path) as ep:
        assert [(c.target, c.passed) for c in ep.checks if c.judge == "argmin@1"] == [(0, False)]
