"""A note is what the agent noted when it called ``note()`` (FINDINGS27 #2: it was encoded after ``env.step``, so
an env changing the noted object in place changed the note), and a second note of the same key before one step is
kept or warned about (FINDINGS27 #6: a second ``model_call`` silently replaced the first, its tokens and cost)."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest

from trajrec import Recorder, open_episode
from trajrec.recorder import read_index
from trajrec.recorder.model_call import ModelCall, note_thought


class Normalizing(gym.Env):
    """A tool env that fills in default arguments of the call it is given, in place."""

    action_space = gym.spaces.Text(100)
    observation_space = gym.spaces.Text(100)

    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        return "ready", {}

    def step(self, call):  # type: ignore[no-untyped-def]
        call["arguments"].setdefault("timeout", 30)
        call["arguments"]["cmd"] += " -la"
        return "done", 0.0, False, False, {}


def _call(content: str, prompt: int, completion: int, cost: float) -> dict:
    return ModelCall(model="m", content=content, usage={"prompt_tokens": prompt, "completion_tokens": completion},
                     cost=cost).to_dict()


def test_a_note_keeps_the_call_as_noted_when_the_env_changes_it(tmp_path) -> None:
    env = Recorder(Normalizing(), tmp_path)
    env.reset(seed=0)
    call = {"name": "run", "arguments": {"cmd": "ls"}}
    arr = np.zeros(3)
    env.note(thought="run ls", tool_calls=[call], scores=arr)
    arr += 1  # the agent reuses its buffer after noting it
    env.step(call)
    env.close()
    st = open_episode(env.episode_path)[0]
    assert st.action == {"name": "run", "arguments": {"cmd": "ls"}}
    assert st.note["tool_calls"] == [st.action]  # the note and the action of one step agree
    assert st.note["thought"] == "run ls"
    assert st.note["scores"].tolist() == [0.0, 0.0, 0.0]


def test_check_extras_and_an_agent_error_note_are_kept_as_given(tmp_path) -> None:
    env = Recorder(Normalizing(), tmp_path)
    env.reset(seed=0)
    env.step({"name": "run", "arguments": {"cmd": "ls"}})
    details = {"tests": ["a"]}
    env.check(True, judge="pytest@8", details=details)
    details["tests"].append("b")  # changed after the check: the index's copy must not follow
    failed = {"model": "m", "error": {"error": "http_error", "message": "500"}}
    env.end_episode_with_error("the model server failed", model_call=failed)
    failed["error"]["message"] = "changed later"
    env.close()
    index = read_index(env.episode_path)
    assert index["checks"][0]["details"] == {"tests": ["a"]}
    assert open_episode(env.episode_path).checks[0].to_record()["details"] == {"tests": ["a"]}
    assert index["summary"]["agent_error"]["model_call"]["error"]["message"] == "500"


def test_two_model_calls_before_one_step_are_both_kept(tmp_path) -> None:
    env = Recorder(Normalizing(), tmp_path)
    env.reset(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # kept in the documented form: nothing to warn about
        env.note(model_call=_call("hmm", 100, 50, 0.5))
        env.note(model_call=_call("call", 120, 10, 0.1), thought="ls it")
        env.note(model_call=_call("again", 1, 1, 0.25))
    env.step({"name": "run", "arguments": {"cmd": "ls"}})
    env.close()
    ep = open_episode(env.episode_path)
    note = ep[0].note
    assert "model_call" not in note
    assert [c["content"] for c in note["model_calls"]] == ["hmm", "call", "again"]
    model = ep.summary["model"]
    assert (model["calls"], model["total_tokens"], model["cost"]) == (3, 282, pytest.approx(0.85))
    assert note_thought({"model_calls": note["model_calls"]}) == "again"  # the reply the action came from


def test_a_model_call_joins_a_model_calls_list_noted_before(tmp_path) -> None:
    env = Recorder(Normalizing(), tmp_path)
    env.reset(seed=0)
    env.note(model_calls=[_call("a", 1, 1, 0.0), _call("b", 2, 2, 0.0)], model_call=_call("c", 3, 3, 0.0))
    env.note(model_call=_call("d", 4, 4, 0.0))
    env.step({"name": "run", "arguments": {"cmd": "ls"}})
    env.close()
    ep = open_episode(env.episode_path)
    assert [c["content"] for c in ep[0].note["model_calls"]] == ["c", "a", "b", "d"]
    assert ep.summary["model"]["calls"] == 4


def test_another_key_noted_twice_warns_once_at_the_callers_line(tmp_path) -> None:
    env = Recorder(Normalizing(), tmp_path)
    env.reset(seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env.note(thought="first")
        env.note(thought="second")
        env.note(thought="third")  # warned once per key
        env.note(model_calls=[_call("a", 1, 1, 0.0)])
        env.note(model_calls=[_call("a", 1, 1, 0.0), _call("b", 1, 1, 0.0)])  # the list grown: not joined
    env.step({"name": "run", "arguments": {"cmd": "ls"}})
    env.close()
    mine = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert [str(w.message).split(" replaces")[0] for w in mine] == ["trajrec: note(thought=...)",
                                                                     "trajrec: note(model_calls=...)"]
    assert "one note() call" in str(mine[0].message)
    assert all(w.filename == __file__ for w in mine)
    note = open_episode(env.episode_path)[0].note
    assert note["thought"] == "third" and len(note["model_calls"]) == 2


def test_a_model_calls_list_noted_after_a_model_call_takes_it(tmp_path) -> None:
    # FINDINGS29 #7: the note kept both keys; RECORDING.md says the call joins the list before or after it.
    env = Recorder(Normalizing(), tmp_path)
    env.reset(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # joined as documented: nothing to warn about
        env.note(model_call=_call("a", 1, 1, 0.0))
        env.note(model_calls=[_call("b", 2, 2, 0.0), _call("c", 3, 3, 0.0)])
        env.step({"name": "run", "arguments": {"cmd": "ls"}})
        env.note(model_call=_call("h", 4, 4, 0.0), model_calls=[_call("i", 5, 5, 0.0)])  # in one call
        env.step({"name": "run", "arguments": {"cmd": "ls"}})
    env.close()
    ep = open_episode(env.episode_path)
    assert [sorted(st.note) for st in ep] == [["model_calls"], ["model_calls"]]
    assert [[c["content"] for c in st.note["model_calls"]] for st in ep] == [["a", "b", "c"], ["h", "i"]]
    assert ep.summary["model"]["calls"] == 5
