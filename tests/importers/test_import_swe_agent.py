"""SWE-agent .traj: a real trajectory from SWE-agent's repository, mapped step by step."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from import_helpers import SWE, import_one

from trajrec.replay.exports import export


def source() -> dict:
    return json.loads(SWE.read_text(encoding="utf-8"))


def test_steps_match_the_trajectory(tmp_path: Path) -> None:
    src = source()
    report, [ep] = import_one("swe-agent", SWE, tmp_path / "run")
    traj = src["trajectory"]
    assert len(ep) == len(traj) == report.steps
    made = {m["action"]: m["tool_calls"] for m in src["history"] if m["role"] == "assistant"}
    for step, entry in zip(ep, traj):
        # The model's call where history has it (SWE-agent 1.x function calling), else the command line; the
        # command line SWE-agent made of a call stays in the note.
        if entry["action"] in made:
            (call,) = made[entry["action"]]
            assert step.action == {"tool": call["function"]["name"], "id": call["id"],
                                   "args": json.loads(call["function"]["arguments"])}
            assert step.note["command"] == entry["action"]
        else:
            assert step.action == entry["action"]
        assert step.observation == entry["observation"]
        assert step.note["thought"] == entry["thought"]
        assert step.duration == entry["execution_time"]
        assert ep.state_at(step.index) == entry["state"]  # the state diff chain rebuilds SWE-agent's state
    # Call ids of the function-calling agent, from history, with the step whose action they made.
    calls = {m["action"]: [c["id"] for c in m["tool_calls"]] for m in src["history"] if m["role"] == "assistant"}
    assert len(calls) == len(traj) - 1  # the final submit has no history message
    assert [s.note.get("call_ids") for s in ep] == [calls.get(e["action"]) for e in traj]
    assert ep[-1].terminated and src["info"]["exit_status"] == "submitted"


def test_task_checks_and_provenance(tmp_path: Path) -> None:
    src = source()
    report, [ep] = import_one("swe-agent", SWE, tmp_path / "run")
    assert ep.task["id"] == src["replay_config"]["problem_statement"]["id"]
    assert ep.task["sandbox"] == src["replay_config"]["env"]
    assert ep.task["env_id"] == "imported/swe-agent"
    [check] = ep.checks
    assert check.judge.startswith("swe-agent:exit_status@") and check.value == "submitted"
    assert check.extra["submission"] == src["info"]["submission"]
    imported = ep.provenance["lineage"]["imported_from"]
    assert imported["sha256"] == hashlib.sha256(SWE.read_bytes()).hexdigest()
    assert imported["format"] == "swe-agent" and imported["importer"]["version"]
    agent = ep.provenance["agent"]
    assert agent["model"] == src["replay_config"]["agent"]["model"]["name"]
    assert agent["model_stats"] == src["info"]["model_stats"]
    # What had no place is kept, and reported.
    assert ep.provenance["extra"]["edited_files30"] == src["info"]["edited_files30"]
    assert "info.edited_files30" in report.fields["swe-agent"]["extra"]
    assert report.fields["swe-agent"]["mapped"]["trajectory[].action"] == "step.action"


def test_chat_export_reproduces_the_conversation(tmp_path: Path) -> None:
    src = source()
    import_one("swe-agent", SWE, tmp_path / "run")
    out = tmp_path / "chat.jsonl"
    export([tmp_path / "run"], "chat", out)
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    msgs = row["messages"]
    prompt = next(m["content"] for m in src["history"] if m["role"] == "user")
    system = next(m["content"] for m in src["history"] if m["role"] == "system")
    # The agent's system prompt starts the conversation as the system message, as in the source's history.
    assert msgs[:2] == [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
    turns = msgs[2:]
    # The conversation ends with the agent's last message; the env's answer to it is trajrec.final_observation.
    assert len(turns) == 2 * len(src["trajectory"]) - 1
    assert row["trajrec"]["final_observation"] == src["trajectory"][-1]["observation"]
    # The tools the model called (declared from its calls) and bash, for a command line without a call.
    made = {m["action"]: m["tool_calls"][0]["function"] for m in src["history"] if m["role"] == "assistant"}
    assert [t["function"]["name"] for t in row["tools"]] == ["bash", "find_file", "open", "edit"]
    for k, entry in enumerate(src["trajectory"]):
        assistant = turns[2 * k]
        assert assistant["content"] == entry["thought"]
        fn = made.get(entry["action"])
        assert (assistant["tool_calls"][0]["function"]["name"], assistant["tool_calls"][0]["function"]["arguments"]) \
            == ((fn["name"], json.loads(fn["arguments"])) if fn else ("bash", {"command": entry["action"]}))
        if 2 * k + 1 < len(turns):
            tool = turns[2 * k + 1]
            assert tool["content"] == entry["observation"]
            assert tool["tool_call_id"] == assistant["tool_calls"][0]["id"]


def test_function_calls_with_empty_and_unreadable_arguments(tmp_path: Path) -> None:
    # The real run, with its final submit made by a call (`submit` with arguments "{}", as SWE-agent 1.x writes
    # it) and one call whose arguments are not JSON: the submit is a call of `submit` with {}, the unreadable one
    # keeps its command line (a call of bash), and `submit` is declared.
    src = source()
    edit = [m for m in src["history"] if m["role"] == "assistant" and m.get("tool_calls")][2]
    edit["tool_calls"][0]["function"]["arguments"] = "{not json"
    broken = edit["action"]
    src["history"].append({"role": "assistant", "content": "Submit.", "thought": "Submit.", "action": "submit",
                           "agent": "main", "message_type": "action",
                           "tool_calls": [{"id": "call_submit", "type": "function",
                                           "function": {"name": "submit", "arguments": "{}"}}]})
    path = tmp_path / "run.traj"
    path.write_text(json.dumps(src))
    _, [ep] = import_one("swe-agent", path, tmp_path / "run")
    assert ep[len(ep) - 1].action == {"tool": "submit", "args": {}, "id": "call_submit"}
    (k,) = [i for i, e in enumerate(src["trajectory"]) if e["action"] == broken]
    assert ep[k].action == broken and ep[k].note["tool_calls"][0]["function"]["arguments"] == "{not json"
    assert "submit" in [t["function"]["name"] for t in ep.reset.info["tools"]]
