"""Hostile input to the Inspect and ATIF importers (FINDINGS22 #2, #5, #7): every Inspect tool result is kept, in
order (positional when ids are missing or repeated), a result no turn asked for is a step that calls nothing (never
a call the agent did not make); an ATIF value of the wrong type is a one-line error naming the field path. Real
files (the Inspect log of the test data, rebuilt with hostile samples), the real importers and exports."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from import_helpers import INSPECT_ERRORS

from trajrec import open_episode
from trajrec.importers import ImportFormatError, import_paths
from trajrec.replay.exports import ExportOptions, export


def _assistant(content: str, calls: list[tuple[Any, str, dict[str, Any]]]) -> dict[str, Any]:
    return {"role": "assistant", "content": content,
            "tool_calls": [{"id": i, "function": f, "arguments": a, "type": "function"} for i, f, a in calls]}


def _tool(cid: Any, content: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": cid, "function": "bash", "content": content}


def _sample(sid: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": sid, "epoch": 1, "input": "task", "target": "", "messages": messages, "scores": None}


@pytest.fixture()
def inspect_run(tmp_path: Path) -> dict[str, Any]:
    log = json.loads(INSPECT_ERRORS.read_text())
    task = {"role": "user", "content": "task"}
    log["samples"] = [
        _sample("dupid", [task, _assistant("dup", [("a", "bash", {"cmd": "ls"}), ("a", "bash", {"cmd": "pwd"})]),
                          _tool("a", "R1"), _tool("a", "R2")]),
        _sample("noid", [task, _assistant("noid", [(None, "bash", {"cmd": "ls"}), (None, "bash", {"cmd": "pwd"})]),
                         _tool(None, "R1"), _tool(None, "R2")]),
        _sample("extra", [task, _assistant("one", [("a", "bash", {"cmd": "ls"})]), _tool("a", "LS"),
                          _tool("zz", "ORPHAN")]),
        _sample("swap", [task, _assistant("two", [("a", "bash", {"cmd": "ls"}), ("b", "bash", {"cmd": "pwd"})]),
                         _tool("b", "PWD"), _tool("a", "LS")]),
    ]
    log["eval"]["dataset"]["samples"] = len(log["samples"])
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(log))
    report = import_paths("inspect", [path], tmp_path / "run")
    eps = {}
    for f in report.files:
        for name in f.episodes:
            ep = open_episode(tmp_path / "run" / name)
            eps[ep.task["id"].split("/")[-1].split("-")[0]] = ep
    return {"eps": eps, "run": tmp_path / "run", "tmp": tmp_path}


def test_inspect_keeps_every_result_in_order(inspect_run: dict[str, Any]) -> None:
    eps = inspect_run["eps"]
    # two results answering one repeated id: both kept, in order (R1 was lost and R2 doubled)
    assert eps["dupid"][0].observation == [{"tool_call_id": "a", "content": "R1"},
                                           {"tool_call_id": "a", "content": "R2"}]
    # results without ids: their contents, in order (they were read as null)
    assert eps["noid"][0].observation == [{"tool_call_id": None, "content": "R1"},
                                          {"tool_call_id": None, "content": "R2"}]
    # ids on both sides: by id, in the calls' order, as before
    assert eps["swap"][0].observation == [{"tool_call_id": "a", "content": "LS"},
                                          {"tool_call_id": "b", "content": "PWD"}]


def test_inspect_orphan_result_is_no_call(inspect_run: dict[str, Any]) -> None:
    ep = inspect_run["eps"]["extra"]
    assert [s.action for s in ep] == [{"tool": "bash", "args": {"cmd": "ls"}, "id": "a"}, {"message": ""}]
    assert [s.observation for s in ep] == ["LS", "ORPHAN"]
    assert ep[1].note["orphan_result"]["tool_call_id"] == "zz"
    out = inspect_run["tmp"] / "chat.jsonl"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export([inspect_run["run"]], "chat", out, options=ExportOptions())
    rows = {json.loads(line)["trajrec"]["task_id"].split("/")[-1].split("-")[0]: json.loads(line)
            for line in out.read_text().splitlines()}
    msgs = rows["extra"]["messages"]
    # one call in the training rows: the one the agent made (no `bash({})` it never made)
    assert sum(len(m.get("tool_calls") or ()) for m in msgs) == 1
    assert rows["extra"]["trajrec"]["final_observation"] == "ORPHAN"
    # the results of the repeated id are all in the row (chat writes that turn as text: no honest pairing)
    assert '"R1"' in rows["dupid"]["trajrec"]["final_observation"]


ATIF_STEP = {"step_id": 2, "source": "agent", "message": "m",
             "tool_calls": [{"tool_call_id": "a", "function_name": "bash", "arguments": {"command": "ls"}}],
             "observation": {"results": [{"source_call_id": "a", "content": "LS"}]}}


@pytest.mark.parametrize("change,field", [
    (lambda s: s.update(message=5), "$.steps[1].message"),
    (lambda s: s.update(message={"a": 1}), "$.steps[1].message"),
    (lambda s: s["observation"]["results"][0].update(content=42), "$.steps[1].observation.results[0].content"),
    (lambda s: s["observation"].update(results=["LS"]), "$.steps[1].observation.results[0]"),
    (lambda s: s["observation"]["results"][0].update(source_call_id=["a"]),
     "$.steps[1].observation.results[0].source_call_id"),
    (lambda s: s["tool_calls"][0].update(tool_call_id={"x": 1}), "$.steps[1].tool_calls[0].tool_call_id"),
    (lambda s: s.update(reasoning_content=["r"]), "$.steps[1].reasoning_content"),
    (lambda s: s.update(model_name=3), "$.steps[1].model_name"),
    (lambda s: s.update(extra="x"), "$.steps[1].extra"),
    (None, "$.steps[0].message"),  # a system step's message too (the system prompt was dropped)
])
def test_atif_wrong_type_is_a_field_error(tmp_path: Path, change: Any, field: str) -> None:
    step = json.loads(json.dumps(ATIF_STEP))
    lead = [{"step_id": 1, "source": "user", "message": "task"}]
    if change is None:
        lead.insert(0, {"step_id": 0, "source": "system", "message": 7})
        step = {**step, "step_id": 3}
    else:
        change(step)
    doc = {"schema_version": "ATIF-v1.6", "session_id": "s", "agent": {"name": "a", "version": "1"},
           "steps": [*lead, step]}
    path = tmp_path / "bad.trajectory.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ImportFormatError) as err:
        import_paths("atif", [path], tmp_path / "run")
    text = str(err.value)
    assert f"field {field}:" in text and "\n" not in text
    # the well-typed step imports, its values kept
    path.write_text(json.dumps({**doc, "steps": [lead[-1], ATIF_STEP]}))
    report = import_paths("atif", [path], tmp_path / "ok")
    ep = open_episode(tmp_path / "ok" / report.files[0].episodes[0])
    assert ep[0].observation == "LS" and ep[0].note["thought"] == "m"


def test_atif_results_without_ids_stay_unpaired_through_the_atif_round_trip(tmp_path: Path) -> None:
    # Calls with ids, results without source_call_id (ATIF allows it): chat pairs nothing, and the ATIF export of
    # the import writes the calls and the results without adding a pairing the file never stated.
    second = {"tool_call_id": "b", "function_name": "bash", "arguments": {"command": "pwd"}}
    step = {**ATIF_STEP, "tool_calls": [ATIF_STEP["tool_calls"][0], second],
            "observation": {"results": [{"content": "PWD"}, {"content": "LS"}]}}
    doc = {"schema_version": "ATIF-v1.6", "session_id": "s", "agent": {"name": "a", "version": "1"},
           "steps": [{"step_id": 1, "source": "user", "message": "task"}, step]}
    path = tmp_path / "noids.trajectory.json"
    path.write_text(json.dumps(doc))
    import_paths("atif", [path], tmp_path / "run")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export([tmp_path / "run"], "atif", tmp_path / "a.jsonl", options=ExportOptions())
        export([tmp_path / "run"], "chat", tmp_path / "c.jsonl", options=ExportOptions())
    [again] = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    agent = [s for s in again["steps"] if s["source"] == "agent"][0]
    assert [c["tool_call_id"] for c in agent["tool_calls"]] == ["a", "b"]
    assert agent["observation"]["results"] == [{"content": "PWD"}, {"content": "LS"}]
    [row] = [json.loads(line) for line in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert not any(m.get("tool_calls") for m in row["messages"])  # chat: a text turn, no answer to the wrong call


def test_a_tool_events_error_goes_on_its_own_call(tmp_path: Path) -> None:
    """A tool event's error is the step's error unless the call's result holds one: it was tested against a
    variable of the results' loop, run after it (an UnboundLocalError on a first turn, another turn's result
    later)."""
    log = json.loads(INSPECT_ERRORS.read_text())
    task = {"role": "user", "content": "task"}
    messages = [task, _assistant("first", [("a", "bash", {"cmd": "ls"})]), _tool("a", "LS"),
                _assistant("second", [("b", "bash", {"cmd": "pwd"})]),
                {**_tool("b", "oops"), "error": {"type": "permission", "message": "denied"}},
                _assistant("third", [("c", "bash", {"cmd": "id"})]), _tool("c", "uid=0")]
    sample = _sample("events", messages)
    sample["events"] = [{"event": "tool", "id": "a", "function": "bash", "error": {"type": "timeout",
                                                                                   "message": "slow"}},
                        {"event": "tool", "id": "c", "function": "bash"}]
    log["samples"] = [sample]
    log["eval"]["dataset"]["samples"] = 1
    path = tmp_path / "events.json"
    path.write_text(json.dumps(log))
    report = import_paths("inspect", [path], tmp_path / "run")
    (name,) = report.files[0].episodes
    ep = open_episode(tmp_path / "run" / name)
    assert ep[0].info.get("error") == "timeout: slow"  # the event's: its result has none
    assert ep[1].info.get("error") == "permission: denied"  # the result's own
    assert "error" not in (ep[2].info or {})  # neither: the second turn's error is not carried over
