"""OpenHands event streams from OpenHands' repository (tests/runtime/trajs)."""

from __future__ import annotations

import json
from pathlib import Path

from import_helpers import OH_BASIC, OH_CHAT, OH_RENAME, import_one

from trajrec.replay.importers.base import parse_time


def test_actions_pair_with_their_observations(tmp_path: Path) -> None:
    events = json.loads(OH_RENAME.read_text())
    _, [ep] = import_one("openhands", OH_RENAME, tmp_path / "run")
    actions = [e for e in events if "action" in e and e["source"] == "agent"]
    assert len(ep) == len(actions)
    by_cause = {e["cause"]: e for e in events if "observation" in e}
    for step, a in zip(ep, actions):
        meta = a["tool_call_metadata"]
        assert step.action["tool"] == meta["function_name"] and step.action["id"] == meta["tool_call_id"]
        assert step.note["thought"] == a["args"]["thought"]
        assert step.time == parse_time(a["timestamp"])
        ob = by_cause.get(a["id"])
        if ob is not None:
            assert step.observation == ob["content"]
            assert step.duration == parse_time(ob["timestamp"]) - parse_time(a["timestamp"])
    run = next(s for s in ep if s.action["tool"] == "execute_bash")
    assert run.action["args"]["command"].startswith("mv ") and not run.failed
    assert ep[-1].terminated  # finish
    assert ep.task["text"] == events[0]["message"]
    assert ep.provenance["agent"]["model"] == actions[0]["tool_call_metadata"]["model_response"]["model"]


def test_later_user_turns_are_kept(tmp_path: Path) -> None:
    events = json.loads(OH_CHAT.read_text())
    _, [ep] = import_one("auto", OH_CHAT, tmp_path / "run")
    users = [e for e in events if e["source"] == "user"]
    assert ep.reset.observation == users[0]["message"]
    assert [u["message"] for s in ep for u in s.note.get("user_before", ())] == [u["message"] for u in users[1:]]
    assert ep[0].action == {"message": events[1]["args"]["content"]}


def test_exit_codes_fail_steps(tmp_path: Path) -> None:
    events = json.loads(OH_RENAME.read_text())
    for e in events:
        if e.get("observation") == "run":
            e["extras"]["metadata"]["exit_code"] = 1
    path = tmp_path / "events.json"
    path.write_text(json.dumps(events))
    _, [ep] = import_one("openhands", path, tmp_path / "run")
    [failed] = [s for s in ep if s.failed]
    assert failed.failure.kind == "tool_error" and failed.failure.message == "exit code 1"


def test_events_folder(tmp_path: Path) -> None:
    folder = tmp_path / "events"
    folder.mkdir()
    for e in json.loads(OH_BASIC.read_text()):
        (folder / f"{e['id']}.json").write_text(json.dumps(e))
    report, [ep] = import_one("auto", folder, tmp_path / "run")
    assert report.files[0].format == "openhands" and len(ep) == 2
    assert ep.provenance["imported_from"]["sha256"]


def _sent(event: dict) -> tuple[str, dict]:
    """The call the model made for an action event, from its raw model response."""
    meta = event["tool_call_metadata"]
    (call,) = [c for c in meta["model_response"]["choices"][0]["message"]["tool_calls"]
               if c["id"] == meta["tool_call_id"]]
    return call["function"]["name"], json.loads(call["function"]["arguments"])


def test_calls_are_what_the_model_sent_and_their_tools_are_declared(tmp_path: Path) -> None:
    # OpenHands' events hold the action as OpenHands ran it (defaults such as blocking/is_input added, its own
    # action name); the model's call is in the raw response. The step's action is the model's call, OpenHands'
    # action is kept in the note, and the tools called are declared so the exports write calls, not text.
    events = json.loads(OH_RENAME.read_text())
    _, [ep] = import_one("openhands", OH_RENAME, tmp_path / "run")
    actions = [e for e in events if "action" in e and e["source"] == "agent"]
    for step, a in zip(ep, actions):
        name, args = _sent(a)
        assert step.action == {"tool": name, "args": args, "id": a["tool_call_metadata"]["tool_call_id"]}
        assert step.note["openhands_actions"][0]["action"] == a["action"]
        assert step.note["openhands_actions"][0]["args"] == {k: v for k, v in a["args"].items() if k != "thought"}
    declared = {t["function"]["name"]: t["function"]["parameters"]["properties"] for t in ep.reset.info["tools"]}
    assert set(declared) == {_sent(a)[0] for a in actions} == {"str_replace_editor", "execute_bash", "finish"}
    assert "command" in declared["execute_bash"] and "action" not in declared["execute_bash"]

    from trajrec.cli import main

    out = tmp_path / "chat.jsonl"
    assert main(["export", str(tmp_path / "run"), "--format", "chat", "--out", str(out)]) == 0
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    calls = [c["function"] for m in row["messages"] for c in m.get("tool_calls") or ()]
    assert [(c["name"], c["arguments"]) for c in calls] == [_sent(a) for a in actions]
    assert all(m["role"] != "user" for m in row["messages"][1:])  # tool results are tool messages
    assert '"action"' not in out.read_text()
