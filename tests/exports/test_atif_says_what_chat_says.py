"""The ATIF export decides what is a call, which result answers which call and what a turn's text is with the same
functions as ``chat`` (FINDINGS22 #1, #3, #4, #6): an answer the thought holds as a substring is still said, a
pairing chat refuses is stated by neither, a list holding anything but calls is text in both, and call ids are text
on both the call and its result. And the ATIF round trip (export atif, import atif, export chat) gives the
recording's chat rows. Recorded with the real Recorder, exported and imported with the real formats."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

from trajrec.importers import import_paths
from trajrec.recorder import Recorder
from trajrec.replay.exports import ExportOptions, export

TOOLS = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}} for n in ("calc", "look")]


def C(tool: str, args: dict[str, Any], cid: Any = None) -> dict[str, Any]:
    return {"tool": tool, "args": args} if cid is None else {"tool": tool, "args": args, "id": cid}


def R(cid: Any, content: str) -> dict[str, Any]:
    return {"tool_call_id": cid, "content": content}


#: name -> [(thought, action, observation)]: the hostile steps of FINDINGS22.
EPISODES: dict[str, list[tuple[str | None, Any, Any]]] = {
    "substring": [("The answer is 42, I am sure.", {"message": "42"}, "wrong"),
                  ("I will run ls now", "ls", "obs"),
                  ("Yes", {"message": "Y"}, "obs"),
                  ("  echo hi  ", "echo hi", "obs"),
                  ("Same.", {"message": "Same."}, "obs"),
                  ("Run:\n```bash\nls -la\n```", "ls -la", "obs")],
    "lists": [("non-dict", [C("calc", {"expr": "1"}, "a"), "look"], [R("a", "one"), "two"]),
              ("ids on calls, results positional", [C("calc", {"expr": "1"}, "a"), C("look", {"q": "2"}, "b")],
               [{"content": "B?"}, {"content": "A?"}]),
              ("obs list of strings", [C("calc", {"expr": "1"}), C("look", {"q": "2"})], ["first", "second"]),
              ("int ids", [C("calc", {"expr": "1"}, 1), C("look", {"q": "2"}, 2)], [R(2, "TWO"), R(1, "ONE")]),
              ("by id, reversed", [C("calc", {"expr": "1"}, "x"), C("look", {"q": "2"}, "y")],
               [R("y", "Y!"), R("x", "X!")]),
              ("one unanswered", [C("calc", {"expr": "1"}, "p"), C("look", {"q": "2"}, "q")], [R("q", "Q!")]),
              ("ids without results' ids, too few", [C("calc", {"expr": "1"}), C("look", {"q": "2"})], ["only"]),
              ("single", C("calc", {"expr": "3"}, "s"), "3"),
              ("end", {"message": "bye"}, "ok")],
}


class Scripted(gym.Env):
    observation_space = gym.spaces.Text(1000)
    action_space = gym.spaces.Text(1000)

    def __init__(self, script: list[tuple[Any, Any, Any]]) -> None:
        self.script = script

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.i = 0
        return "Task: do it", {"tools": TOOLS, "task": {"id": "t", "text": "Task: do it"}, "system": "You are SYS."}

    def step(self, action: Any):
        obs = self.script[self.i][2]
        self.i += 1
        return obs, 0.0, self.i == len(self.script), False, {}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("hostile") / "run"
    for name, script in EPISODES.items():
        env = Recorder(Scripted(script), run, task={"id": name})
        env.reset(seed=0)
        for thought, action, _ in script:
            if thought is not None:
                env.note(thought=thought)
            env.step(action)
        env.close()
    return run


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _export(src: Path, fmt: str, out: Path) -> list[dict[str, Any]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export([src], fmt, out, options=ExportOptions())
    return _rows(out)


def _by_task(rows: list[dict[str, Any]], key: Any) -> dict[str, dict[str, Any]]:
    return {key(r): r for r in rows}


def _chat(run: Path, out: Path) -> dict[str, dict[str, Any]]:
    return _by_task(_export(run, "chat", out), lambda r: r["trajrec"]["task_id"].split("/")[-1])


def _atif(run: Path, out: Path) -> dict[str, dict[str, Any]]:
    return _by_task(_export(run, "atif", out), lambda r: r["extra"]["trajrec"]["task"]["id"].split("/")[-1])


def test_atif_turn_text_is_chats(hostile: Path, tmp_path: Path) -> None:
    chat = _chat(hostile, tmp_path / "c.jsonl")["substring"]
    atif = _atif(hostile, tmp_path / "a.jsonl")["substring"]
    said = [m["content"] for m in chat["messages"] if m["role"] == "assistant"]
    agent = [s["message"] for s in atif["steps"] if s["source"] == "agent"]
    # the answer the thought holds as a substring is said after it, in both (it was dropped from ATIF)
    assert said[:3] == ["The answer is 42, I am sure.\n\n42", "I will run ls now\n\nls", "Yes\n\nY"]
    assert said[3] == "  echo hi  \n\necho hi"
    assert said[4] == "Same." and said[5].endswith("ls -la\n```")  # the same text, a fenced command: said once
    assert agent == said


def test_atif_states_only_the_pairings_chat_makes(hostile: Path, tmp_path: Path) -> None:
    steps = [s for s in _atif(hostile, tmp_path / "a.jsonl")["lists"]["steps"] if s["source"] == "agent"]
    chat = _chat(hostile, tmp_path / "c.jsonl")["lists"]["messages"]
    # a list holding a non-call is text, as in chat: no call, no result naming one
    assert "tool_calls" not in steps[0] and steps[0]["message"].startswith("non-dict\n\n[")
    assert [r.get("source_call_id") for r in steps[0]["observation"]["results"]] == [None]
    # calls with ids, results without: chat refuses the pairing, ATIF states none (the step is text in both)
    assert "tool_calls" not in steps[1]
    assert all("source_call_id" not in r for r in steps[1]["observation"]["results"])
    assert chat[4]["role"] == "assistant" and "tool_calls" not in chat[4]
    # int ids: text on the call and on its result, each result naming its own call
    calls = {c["tool_call_id"]: c["function_name"] for c in steps[3]["tool_calls"]}
    assert calls == {"1": "calc", "2": "look"}
    assert {(calls[r["source_call_id"]], r["content"]) for r in steps[3]["observation"]["results"]} == {
        ("calc", "ONE"), ("look", "TWO")}
    # by id in another order; a call no result answers gets no result in ATIF
    assert {(r["source_call_id"], r["content"]) for r in steps[4]["observation"]["results"]} == {
        ("x", "X!"), ("y", "Y!")}
    assert [(r["source_call_id"], r["content"]) for r in steps[5]["observation"]["results"]] == [("q", "Q!")]
    # too few results for calls without ids: no pairing, text in both
    assert "tool_calls" not in steps[6]
    for s in steps:
        for r in (s.get("observation") or {}).get("results", ()):
            assert r.get("source_call_id") is None or isinstance(r["source_call_id"], str)
        for c in s.get("tool_calls", ()):
            assert isinstance(c["tool_call_id"], str)


def test_atif_round_trip_gives_the_recordings_chat_rows(hostile: Path, tmp_path: Path) -> None:
    recorded = _chat(hostile, tmp_path / "c.jsonl")
    _export(hostile, "atif", tmp_path / "a.jsonl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import_paths("atif", [tmp_path / "a.jsonl"], tmp_path / "back")
    again = _chat(tmp_path / "back", tmp_path / "c2.jsonl")
    assert set(again) == set(recorded) == set(EPISODES)
    for name in EPISODES:
        assert again[name]["messages"] == recorded[name]["messages"], name
        assert again[name]["trajrec"]["final_observation"] == recorded[name]["trajrec"]["final_observation"]
    # and a second ATIF export of the import states what the first did (calls, ids, results)
    first, second = _atif(hostile, tmp_path / "a1.jsonl"), _atif(tmp_path / "back", tmp_path / "a2.jsonl")
    for name in EPISODES:
        strip = [{k: s.get(k) for k in ("message", "tool_calls", "observation")} for s in first[name]["steps"]
                 if s["source"] == "agent"]
        assert strip == [{k: s.get(k) for k in ("message", "tool_calls", "observation")}
                         for s in second[name]["steps"] if s["source"] == "agent"], name
