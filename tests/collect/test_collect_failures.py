"""collect(): an env exception is recorded data (the episode goes into the run, collection goes on); the agent
contract act(obs, info) -> (action, note) is checked before anything of a bad return is stepped or recorded; an
agent's own exception leaves its episode in staging, said in the file, and is raised."""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from trajrec import TrajrecUsageError, open_episode
from trajrec.collect import collect
from trajrec.recorder.errors import AgentError
from trajrec.replay.library import find_episode_files


class Flaky(gym.Env):  # type: ignore[type-arg]
    """Raises in step 1 when seeded with 3 (``where="step"``) or in reset (``where="reset"``)."""

    observation_space = gym.spaces.Discrete(5)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, where: str = "step") -> None:
        self.where = where

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        self.seed, self.t = seed, 0
        if self.where == "reset" and seed == 3:
            raise RuntimeError("reset broke on seed 3")
        return 0, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        if self.where == "step" and self.seed == 3 and self.t == 1:
            raise RuntimeError("step broke on seed 3")
        self.t += 1
        return self.t, 1.0, self.t >= 3, False, {}


class Agent:
    def __init__(self, env: Any, seed: int, reply: Any = None, crash_at: int | None = None) -> None:
        self.seed, self.t, self.reply, self.crash_at = seed, 0, reply, crash_at

    def reset(self, obs: Any, info: dict[str, Any]) -> None:
        self.t = 0

    def act(self, obs: Any, info: dict[str, Any]) -> Any:
        self.t += 1
        if self.crash_at is not None and self.seed == 1 and self.t > self.crash_at:
            raise ValueError("my parser choked")
        if self.reply is not None and self.t > 1:
            return self.reply
        return 1, {"thought": f"t{self.t}"}


def _staged(out: Path) -> list[Path]:
    return sorted((out / ".trajrec" / "staging").rglob("*.msgpack.zst"))


def _run_seeds(out: Path) -> list[int]:
    seeds = []
    for f in find_episode_files([out]):
        with open_episode(f) as ep:
            seeds.append(ep.reset.seed)
    return sorted(seeds)


@pytest.mark.parametrize("where", ["step", "reset"])
@pytest.mark.parametrize("backend", ["local", "process"])
def test_an_env_exception_is_recorded_into_the_run_and_collection_goes_on(tmp_path: Path, where: str,
                                                                          backend: str) -> None:
    out = tmp_path / "run"
    res = collect(partial(Flaky, where), Agent, episodes=4, seed=1, out=out, run_id="r", progress=False,
                  backend=backend, workers=2)
    assert [r["seed"] for r in res] == [1, 2, 3, 4]
    assert [r["outcome"] for r in res] == ["terminated", "terminated", "error", "terminated"]
    assert "RuntimeError" in res[2]["error"]
    assert _run_seeds(out) == [1, 2, 3, 4] and _staged(out) == []
    with open_episode(res[2]["path"]) as ep:
        assert ep.summary["outcome"] == "error"
        if where == "step":
            assert len(ep) == 2 and ep[1].failure.kind == "exception" and ep[0].note == {"thought": "t1"}
            assert "step broke on seed 3" in ep[1].failure.message
        else:
            assert len(ep) == 0 and "reset broke on seed 3" in ep.reset.failure.message
    again = collect(partial(Flaky, where), Agent, episodes=4, seed=1, out=out, run_id="r", progress=False)
    assert all(r["skipped"] for r in again) and _run_seeds(out) == [1, 2, 3, 4]  # resumed: recorded once


@pytest.mark.parametrize("reply, got", [
    (1, "got an int"),                                     # the bare action
    ((1, 2), "got a pair whose second item is an int"),   # an action that is a pair
    (np.array([0.1, 0.2]), "got a ndarray"),              # a 2-D continuous action: never split into (action, note)
    ((1, {}, None), "got a tuple of 3 items"),
    ([1, None], "got a list"),
])
def test_an_act_that_breaks_the_contract_is_refused_naming_agent_and_contract(tmp_path: Path, reply: Any,
                                                                              got: str) -> None:
    out = tmp_path / "run"
    with pytest.raises(TrajrecUsageError, match=rf"agent Agent \(seed 0, step 1\): act\(obs, info\) must return a "
                                                 rf"tuple \(action, note\) with note a mapping of note fields or "
                                                 rf"None; {got}.*Return \(action, None\) when there is no note"):
        collect(lambda: Flaky(), lambda env, seed: Agent(env, seed, reply), episodes=2, out=out, progress=False)
    assert _run_seeds(out) == []  # not part of the run
    (staged,) = _staged(out)  # step 0 was recorded: kept, saying why it ends there
    with open_episode(staged) as ep:
        assert len(ep) == 1 and ep.summary["outcome"] == "error"
        assert "must return a tuple (action, note)" in ep.summary["agent_error"]["message"]


def test_a_bad_first_act_leaves_no_file(tmp_path: Path) -> None:
    class Bare(Agent):
        def act(self, obs: Any, info: dict[str, Any]) -> Any:
            return 1

    out = tmp_path / "run"
    with pytest.raises(TrajrecUsageError, match=r"agent \S*Bare \(seed 0, step 0\).*got an int"):
        collect(lambda: Flaky(), Bare, episodes=2, out=out, progress=False)
    assert _run_seeds(out) == [] and _staged(out) == []
    assert collect(lambda: Flaky(), Agent, episodes=2, out=out, progress=False)[0]["outcome"] == "terminated"


def test_an_agent_exception_is_raised_after_earlier_seeds_are_in_the_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="my parser choked"):
        collect(lambda: Flaky(), lambda env, seed: Agent(env, seed, crash_at=1), episodes=3, out=out, run_id="r",
                progress=False)
    assert _run_seeds(out) == [0]
    (staged,) = _staged(out)
    with open_episode(staged) as ep:
        assert ep.reset.seed == 1 and len(ep) == 1 and ep.summary["outcome"] == "error"
        assert ep.summary["agent_error"]["message"] == "the agent raised ValueError: my parser choked"
    # Resuming with the agent fixed records seed 1 (it was never part of the run) and seed 2.
    res = collect(lambda: Flaky(), Agent, episodes=3, out=out, run_id="r", progress=False)
    assert [r["skipped"] for r in res] == [True, False, False] and _run_seeds(out) == [0, 1, 2]


def test_an_agent_error_keeps_the_model_call_note(tmp_path: Path) -> None:
    class Down(Agent):
        def act(self, obs: Any, info: dict[str, Any]) -> Any:
            raise AgentError("model server down", {"model_call": {"error": "503"}})

    out = tmp_path / "run"
    with pytest.raises(AgentError, match="model server down"):
        collect(lambda: Flaky(), Down, episodes=1, out=out, progress=False)
    (staged,) = _staged(out)
    with open_episode(staged) as ep:
        assert ep.summary["agent_error"]["message"] == "model server down"


def test_a_call_without_run_id_never_resumes_by_chance_and_says_how_to_resume(tmp_path: Path) -> None:
    """Two calls without ``run_id`` in the same second were one run (the id was the clock's second): the second
    recorded nothing. Each call is now a new run, warned about when the folder holds one; the raised exception of a
    stopped call names the id that resumes it."""
    out = tmp_path / "run"
    first = collect(lambda: Flaky(), Agent, episodes=2, out=out, progress=False)
    (run_id,) = {r["run_id"] for r in first}
    assert run_id.startswith("collect-") and [r["skipped"] for r in first] == [False, False]
    with pytest.warns(UserWarning, match=rf"already holds collect runs \('{run_id}'\).*run_id='{run_id}'"):
        second = collect(lambda: Flaky(), Agent, episodes=2, out=out, progress=False)
    assert {r["run_id"] for r in second} != {run_id} and [r["skipped"] for r in second] == [False, False]
    assert _run_seeds(out) == [0, 0, 1, 1]  # what the warning says: the seeds are there twice

    out = tmp_path / "stopped"
    with pytest.raises(ValueError, match="my parser choked") as info:
        collect(lambda: Flaky(), lambda env, seed: Agent(env, seed, crash_at=1), episodes=3, out=out, progress=False)
    if sys.version_info >= (3, 11):  # exception notes are Python 3.11's
        (note,) = info.value.__notes__
        stopped_id = note.split("run id is ")[1].split("'")[1]
        assert f"run_id={stopped_id!r}" in note and str(out) in note
    else:
        (stopped_id,) = [p.name for p in (out / ".trajrec" / "collect").iterdir()]
    res = collect(lambda: Flaky(), Agent, episodes=3, out=out, run_id=stopped_id, progress=False)
    assert [r["skipped"] for r in res] == [True, False, False] and _run_seeds(out) == [0, 1, 2]


@pytest.mark.parametrize("run_id", ["", "a/b", "..", 5])
def test_a_run_id_that_is_not_a_name_is_refused(tmp_path: Path, run_id: Any) -> None:
    with pytest.raises(TrajrecUsageError, match="run_id must be"):
        collect(lambda: Flaky(), Agent, episodes=1, out=tmp_path / "r", run_id=run_id, progress=False)
    assert not list(tmp_path.rglob("*.msgpack.zst"))
