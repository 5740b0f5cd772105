"""What the agent's loop does around the steps is kept or told: an exception from the agent's own code inside
``with Recorder(...)`` ends the episode as ``error`` naming it (FINDINGS13 #14: it read as ``stopped``, like a
Ctrl-C), and a note goes with a step or is warned about (FINDINGS13 #4: notes before reset or after the last step
were dropped silently)."""

from __future__ import annotations

import warnings

import gymnasium as gym
import pytest

from trajrec import Recorder, open_episode
from trajrec.recorder import read_index


class Boom(gym.Env):
    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        if action == 1:
            raise RuntimeError("the env broke")
        if action == 2:
            raise KeyboardInterrupt  # Ctrl-C while the env works on the step
        return 0, 0.0, False, False, {}


def test_the_agents_exception_inside_with_is_the_episodes_error(tmp_path) -> None:
    with pytest.raises(ValueError, match="my parser choked"):
        with Recorder(Boom(), tmp_path) as env:
            env.reset(seed=0)
            env.step(0)
            raise ValueError("my parser choked on the model reply")
    summary = read_index(env.episode_path)["summary"]
    assert summary["outcome"] == "error" and summary["steps"] == 1
    assert summary["agent_error"]["message"] == "ValueError: my parser choked on the model reply"
    assert "raise ValueError" in summary["agent_error"]["traceback"]


def test_the_envs_exception_and_a_stop_are_not_the_agents(tmp_path) -> None:
    with pytest.raises(RuntimeError, match="the env broke"):
        with Recorder(Boom(), tmp_path / "env") as env:
            env.reset(seed=0)
            env.step(1)
    summary = read_index(env.episode_path)["summary"]
    assert summary["outcome"] == "error" and "agent_error" not in summary  # the step recorded the env's
    with pytest.raises(KeyboardInterrupt):
        with Recorder(Boom(), tmp_path / "stop") as env:
            env.reset(seed=0)
            env.step(0)
            raise KeyboardInterrupt
    summary = read_index(env.episode_path)["summary"]
    assert summary["outcome"] == "stopped" and "agent_error" not in summary
    with Recorder(Boom(), tmp_path / "fine") as env:  # no exception: closed as before
        env.reset(seed=0)
        env.step(0)
    assert "agent_error" not in read_index(env.episode_path)["summary"]


def test_a_note_before_reset_goes_with_the_first_step(tmp_path) -> None:
    env = Recorder(Boom(), tmp_path)
    env.note(system_prompt="you are a careful agent", plan="step 0 first")
    env.reset(seed=0)
    env.step(0)
    env.end_episode()
    env.note(plan="again")  # no episode open: kept for the next one
    env.reset(seed=1)
    env.step(0)
    env.close()
    first, second = (open_episode(p) for p in env.episode_paths)
    assert first[0].note == {"system_prompt": "you are a careful agent", "plan": "step 0 first"}
    assert second[0].note == {"plan": "again"}


@pytest.mark.parametrize("then", ["reset", "end_episode", "close"])
def test_a_note_after_the_last_step_is_warned_about(tmp_path, then: str) -> None:
    env = Recorder(Boom(), tmp_path)
    env.reset(seed=0)
    env.step(0)
    env.note(reflection="that went well")
    with pytest.warns(RuntimeWarning, match=r"a note \(reflection\) made after the episode's last step reached no "
                                            rf"step and is not recorded \({then}\(\) came next\)"):
        getattr(env, then)()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # told once: it is gone
        env.close()
    assert open_episode(env.episode_paths[0])[0].note is None


def test_a_note_of_a_step_a_stop_cut_short_goes_with_it_unwarned(tmp_path) -> None:
    """The agent noted before env.step(), as it should; Ctrl-C came while the env worked on the step, which is not
    recorded: its note goes with it, without a warning that blames the agent (FINDINGS32 #10), and does not
    reach the next episode's first step."""
    env = Recorder(Boom(), tmp_path)
    env.reset(seed=0)
    env.step(0)
    env.note(thought="try the other tool")
    with pytest.raises(KeyboardInterrupt):
        env.step(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env.reset(seed=1)
        env.step(0)
        env.close()
    first, second = (open_episode(p) for p in env.episode_paths)
    assert len(first) == 1 and read_index(env.episode_paths[0])["summary"]["outcome"] == "stopped"
    assert second[0].note is None


def test_a_note_that_never_met_an_episode_says_so(tmp_path) -> None:
    env = Recorder(Boom(), tmp_path)
    env.note(plan="never used")
    with pytest.warns(RuntimeWarning, match=r"a note \(plan\) made while no episode was open reached no step"):
        env.close()


def test_an_agent_error_inside_with_keeps_its_failed_model_call(tmp_path) -> None:
    """An AgentError (the model server failed every attempt) leaving ``with Recorder(...)`` keeps the failed call it
    carries, as `trajrec record` keeps it: agent_error.model_call and the summary's model totals (FINDINGS21 #3)."""
    from trajrec.recorder.errors import AgentError
    from trajrec.recorder.model_call import ModelCall

    call = ModelCall(model="m", attempts=[{"error": "timeout", "latency": 60.0}] * 3,
                     error={"error": "timeout", "message": "no answer in 60 s"})
    with pytest.raises(AgentError):
        with Recorder(Boom(), tmp_path) as env:
            env.reset(seed=0)
            env.step(0)
            raise AgentError("the model server failed 4 attempts", {"model_call": call.to_dict()})
    summary = read_index(env.episode_path)["summary"]
    assert summary["outcome"] == "error"
    assert summary["agent_error"]["message"].endswith("AgentError: the model server failed 4 attempts")
    assert summary["agent_error"]["model_call"]["error"]["error"] == "timeout"
    assert "raise AgentError" in summary["agent_error"]["traceback"]
    assert summary["model"]["failed_calls"] == 1 and summary["model"]["failed_attempts"] == 4
