"""A step after the one that ended the episode (terminated or truncated), with no reset between (FINDINGS33 #6):
Gymnasium leaves it undefined and its envs warn and step on. The Recorder does the same: a RuntimeWarning once per
episode at the caller's line naming the step; the step is recorded, marked ``after_end``, and the summary keeps the
episode's first end (terminated/truncated, return, outcome), so ``--where incomplete`` and ``record --resume`` do
not take the episode for one cut short."""

from __future__ import annotations

import warnings

import gymnasium as gym
import pytest

from trajrec import Recorder, open_episode
from trajrec.recorder.model import ran_to_end


class Two(gym.Env):
    """Ends at its 2nd step (terminated, or truncated with ``truncate=True``); raises when stepped with 9."""

    observation_space = gym.spaces.Discrete(100)
    action_space = gym.spaces.Discrete(10)

    def __init__(self, truncate: bool = False) -> None:
        self.truncate = truncate

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.n = 0
        return 0, {}

    def step(self, action):
        if action == 9:
            raise ValueError("stepped after the end")
        self.n += 1
        end = self.n == 2
        return self.n, 1.0, end and not self.truncate, end and self.truncate, {}


def _steps(env, actions):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for a in actions:
            env.step(a)  # the warning points here
    return [w for w in caught if issubclass(w.category, RuntimeWarning) and "after_end" in str(w.message)]


def test_steps_after_terminated_are_marked_and_the_first_end_is_kept(tmp_path):
    env = Recorder(Two(), tmp_path)
    env.reset(seed=0)
    caught = _steps(env, [1, 1, 1, 1])
    # Once per episode, at the caller's line, naming the step and the one that ended the episode.
    assert len(caught) == 1, [str(w.message) for w in caught]
    assert "step 2 of" in str(caught[0].message) and "after step 1" in str(caught[0].message)
    assert "terminated=True" in str(caught[0].message)
    assert caught[0].filename == __file__
    first = env.episode_path
    # The file as a crash would leave it (no index yet: every step is flushed): readers rebuild the same summary.
    crashed = tmp_path / "crashed" / first.name
    crashed.parent.mkdir()
    crashed.write_bytes(first.read_bytes())
    env.reset(seed=1)  # a new episode: it ends and is stepped on again, warned again
    assert len(_steps(env, [1, 1, 1])) == 1
    env.close()
    with open_episode(first) as ep:
        s = ep.summary
        assert (s["steps"], s["return"], s["outcome"], s["terminated"], s["after_end"]) == (4, 2.0, "terminated", True, 2)
        assert [st.after_end for st in ep] == [False, False, True, True]
        assert ep[3].terminated is False  # each step as the env returned it
        assert ran_to_end(s, ep.complete)
    with open_episode(crashed) as ep:
        assert not ep.complete
        s = ep.summary
        assert (s["steps"], s["return"], s["terminated"], s["after_end"]) == (4, 2.0, True, 2)


def test_a_truncated_episode_stays_truncated_and_an_exception_after_the_end_is_no_error(tmp_path):
    env = Recorder(Two(truncate=True), tmp_path)
    env.reset(seed=0)
    _steps(env, [1, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError):
            env.step(9)
    env.close()
    with open_episode(env.episode_path) as ep:
        s = ep.summary
        assert (s["outcome"], s["truncated"], s["error"], s["return"]) == ("truncated", True, None, 2.0)
        assert ep[2].after_end and ep[2].failure.kind == "exception" and s["failures"] == 1


def test_no_mark_or_warning_when_each_end_is_followed_by_reset(tmp_path):
    env = Recorder(Two(), tmp_path)
    for seed in range(2):
        env.reset(seed=seed)
        assert _steps(env, [1, 1]) == []
    env.close()
    with open_episode(env.episode_path) as ep:
        assert "after_end" not in ep.summary and not any(st.after_end for st in ep)
