"""Envs that follow Gymnasium's API without its base class are recorded; anything else is refused with what is
missing."""

from __future__ import annotations

import gymnasium as gym
import pytest

from trajrec.recorder import GymLikeEnv, Recorder, TrajrecUsageError, open_episode


class Guess:
    """Duck-typed like GEM's envs: reset(seed) without options, text in and out, no spaces, no spec."""

    def __init__(self) -> None:
        self.closed = False

    def reset(self, seed=None):
        self.target = (seed or 0) % 10
        self.turn = 0
        return f"guess a digit (seed {seed})", {"suffix": "your guess?"}

    def step(self, action):
        self.turn += 1
        try:
            guess = int(action)
        except ValueError:
            return "not a number", 0.0, False, self.turn >= 4, {"error": "unparseable guess"}
        hit = guess == self.target
        return ("right" if hit else "higher" if guess < self.target else "lower"), float(hit), hit, self.turn >= 4, {}

    def state_dict(self):
        return {"turn": self.turn}

    def close(self):
        self.closed = True


class WithOptions(Guess):
    observation_space = gym.spaces.Text(100)
    action_space = gym.spaces.Text(10)

    def reset(self, *, seed=None, options=None):
        obs, info = super().reset(seed)
        return obs, {**info, "options": options}


def test_duck_typed_env_records_like_a_gymnasium_env(tmp_path):
    obj = Guess()
    env = Recorder(obj, tmp_path, agent="test")
    obs, info = env.reset(seed=3)
    assert obs == "guess a digit (seed 3)" and info == {"suffix": "your guess?"}
    env.step("x")
    env.step("1")
    assert env.step("3")[1:4] == (1.0, True, False)
    env.close()
    assert obj.closed
    ep = open_episode(env.episode_path)
    assert env.episode_path.name.startswith("Guess-")
    assert [st.action for st in ep] == ["x", "1", "3"]
    assert [st.observation for st in ep] == ["not a number", "higher", "right"]
    assert ep[0].failure.kind == "tool_error" and ep[1].failure is None
    assert ep.reset.state == {"turn": 0} and [list(r)[:3] for r in ep[2].diff] == [[["turn"], "values_changed", 3]]
    assert ep.provenance["env_package"]["class"] == "Guess" and ep.task["env_id"] is None
    assert ep.summary["outcome"] == "terminated" and ep.summary["return"] == 1.0


def test_options_are_passed_when_accepted_and_refused_when_not(tmp_path):
    env = Recorder(WithOptions(), tmp_path)
    assert env.reset(seed=1, options={"level": 2})[1]["options"] == {"level": 2}
    assert env.observation_space == gym.spaces.Text(100)
    env.close()
    env = Recorder(Guess(), tmp_path)
    with pytest.raises(TrajrecUsageError, match=r"Guess.reset\(\) takes no options= keyword"):
        env.reset(seed=1, options={"level": 2})
    env.close()


class NoStep:
    def reset(self, *, seed=None, options=None):
        return 0, {}


class NoSeed:
    def reset(self):
        return 0, {}

    def step(self, action):
        return 0, 0.0, False, False, {}


class OldGym:
    def reset(self, *, seed=None, options=None):
        return 0

    def step(self, action):
        return 0, 0.0, False, {}


@pytest.mark.parametrize(("obj", "message"), [
    (NoStep(), "cannot record a NoStep: it has no step(action) method. The Recorder takes a gymnasium.Env or any "
               "object with reset(*, seed=None, options=None) -> (obs, info) and "
               "step(action) -> (obs, reward, terminated, truncated, info)"),
    (NoSeed(), "cannot record a NoSeed: its reset() does not accept the keyword seed="),
    (object(), "cannot record a object: it has no reset(seed=None, options=None) method; it has no step(action) "
               "method."),
    ("CartPole-v1", "cannot record a str: it has no reset"),
])
def test_refusals_say_what_is_missing(tmp_path, obj, message):
    with pytest.raises(TrajrecUsageError) as err:
        Recorder(obj, tmp_path)
    assert str(err.value).startswith(message)


def test_wrong_return_shapes_are_named(tmp_path):
    env = GymLikeEnv(OldGym())
    with pytest.raises(TrajrecUsageError, match=r"OldGym.reset\(\) returned a int; Gymnasium's reset returns "
                                                r"\(observation, info\)"):
        env.reset(seed=0)
    rec = Recorder(OldGym(), tmp_path)
    rec.env._obj.reset = lambda **kw: (0, {})  # a good reset, to reach the step
    rec.reset(seed=0)
    with pytest.raises(TrajrecUsageError, match=r"returned a tuple of 4 values \(the old gym API's obs, reward, "
                                                r"done, info: split done into terminated and truncated\)"):
        rec.step(1)
    rec.close()
    ep = open_episode(rec.episode_path)
    assert ep[0].failure.kind == "exception" and "tuple of 4 values" in ep[0].failure.message
