"""``Recorder.check`` takes the values a label takes (FINDINGS13 #5: a rating of 5, a dict, None or NaN were
recorded, and every export then read the step as unlabeled, silently)."""

from __future__ import annotations

import math

import gymnasium as gym
import pytest

from trajrec import Recorder, open_episode
from trajrec.recorder.errors import TrajrecUsageError
from trajrec.replay.labels import LabelStore


@pytest.mark.parametrize("value", [5, {"a": 1}, None, math.nan, math.inf, "", "3", [1], 2**80],
                         ids=["rating 5", "dict", "None", "NaN", "inf", "empty", "number text", "list", "huge int"])
def test_a_value_no_label_could_hold_is_refused_and_nothing_is_written(tmp_path, value) -> None:
    env = Recorder(gym.make("CartPole-v1"), tmp_path)
    env.reset(seed=0)
    env.step(0)
    with pytest.raises(TrajrecUsageError, match=r"^check\(value="):
        env.check(value, judge="mine@1")
    env.check(True, judge="mine@1")  # the Recorder goes on
    env.close()
    ep = open_episode(env.episode_path)
    assert [c.value for c in ep.checks] == [True] and len(ep) == 1


def test_the_refusal_is_the_label_stores_own(tmp_path) -> None:
    env = Recorder(gym.make("CartPole-v1"), tmp_path)
    env.reset(seed=0)
    env.step(0)
    with pytest.raises(TrajrecUsageError) as by_check:
        env.check(5, judge="mine@1")
    env.close()
    with pytest.raises(TrajrecUsageError) as by_store:
        LabelStore(tmp_path).add(open_episode(env.episode_path).episode_id, 0, 5, judge="mine@1")
    assert str(by_store.value) in str(by_check.value)  # the same words: a rating is -1, 0 or +1, ...


@pytest.mark.parametrize("value", [True, False, 1, 0, -1, 0.7, -0.25, "pass", "wrong-tool"])
def test_label_values_are_recorded_as_given(tmp_path, value) -> None:
    env = Recorder(gym.make("CartPole-v1"), tmp_path)
    env.reset(seed=0)
    env.step(0)
    env.check(value, judge="mine@1")
    env.close()
    [check] = open_episode(env.episode_path).checks
    assert check.value == value and type(check.value) is type(value)
