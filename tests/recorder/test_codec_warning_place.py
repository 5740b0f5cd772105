"""The CodecWarning names the user's line, not trajrec's (issue 16, item 21)."""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path

import gymnasium as gym

from trajrec.recorder import CodecWarning, Recorder


class _OddValue:  # a type the codec cannot encode; defined here so no other test has warned about it yet
    pass


class _OddInfoEnv(gym.Env):
    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):  # type: ignore[no-untyped-def]
        return 0, 0.0, False, False, {"odd": _OddValue()}


def test_codec_warning_points_at_the_step_call(tmp_path: Path) -> None:
    env = Recorder(_OddInfoEnv(), tmp_path)
    env.reset(seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
        env.step(0)
    env.close()
    (w,) = [w for w in caught if issubclass(w.category, CodecWarning)]
    assert (w.filename, w.lineno) == (__file__, line)
