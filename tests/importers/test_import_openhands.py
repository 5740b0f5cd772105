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
