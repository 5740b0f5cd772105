"""mini-swe-agent .traj.json in its three layouts, from mini-swe-agent's repository."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

from import_helpers import MINI_LIST, MINI_V1, import_one, mini_big

from trajrec.importers import import_paths


def test_current_layout_tool_calls_times_and_failures(tmp_path: Path) -> None:
    path = mini_big(tmp_path)
    assert 400_000 < path.stat().st_size < 420_000
    src = json.loads(path.read_text())
    assert src["trajectory_format"] == "mini-swe-agent-1.1"
    _, [ep] = import_one("mini-swe-agent", path, tmp_path / "run")
    turns = [m for m in src["messages"] if m["role"] == "assistant"]
    assert len(ep) == len(turns)
    outputs = {m["tool_call_id"]: m for m in src["messages"] if m["role"] == "tool"}
    for step, m in zip(ep, turns):
        actions = m["extra"]["actions"]
        assert step.action == actions[0]["command"]  # one action per turn in this file
        assert step.note["call_ids"] == [a["tool_call_id"] for a in actions] == [c["id"] for c in m["tool_calls"]]
        assert step.time == m["extra"]["timestamp"]  # original timestamps kept
        assert step.note["thought"] == m["content"]
        call = step.note["model_call"]  # the record live LLM recording writes
        assert call["usage"]["total_tokens"] == m["extra"]["response"]["usage"]["total_tokens"]
        assert call["cost"] == m["extra"]["cost"] and call["model"] == m["extra"]["response"]["model"]
        out = outputs.get(actions[0]["tool_call_id"])
        if out is not None:
            assert step.observation == out["content"]
            assert step.duration == out["extra"]["timestamp"] - m["extra"]["timestamp"]
            rc = out["extra"]["returncode"]
            assert (step.failure is not None) == (rc != 0)
            if rc != 0:
                assert step.failure.kind == "tool_error" and step.info["returncode"] == rc
    failed = sum(1 for s in ep if s.failed)
    assert failed == sum(1 for m in src["messages"] if m["role"] == "tool" and m["extra"]["returncode"] != 0) > 0
    # Retries and recoveries come from the shared classifier: a retry repeats the command word of a failed step.
    for s in ep:
        if s.retry_of is not None:
            assert ep[s.retry_of].failed and ep[s.retry_of].action.split()[0] == s.action.split()[0]
        for r in s.recovers:
            assert ep[r].failed and r < s.index and not s.failed
    assert ep.summary["failures"] == failed
    assert abs(ep.summary["model"]["cost"] - src["info"]["model_stats"]["instance_cost"]) < 1e-9
    [check] = ep.checks
    assert check.value == src["info"]["exit_status"] == "Submitted"
    assert ep[-1].terminated
    assert ep.provenance["agent"]["version"] == src["info"]["mini_version"]


def test_v1_layout_parses_bash_blocks_and_return_codes(tmp_path: Path) -> None:
    src = json.loads(MINI_V1.read_text())
    assert src["trajectory_format"] == "mini-swe-agent-1"
    _, [ep] = import_one("mini-swe-agent", MINI_V1, tmp_path / "run")
    assistants = [m["content"] for m in src["messages"] if m["role"] == "assistant"]
    assert len(ep) == len(assistants)
    for step, content in zip(ep, assistants):
        block = re.search(r"```bash\s*\n(.*?)\n?```", content, re.S)
        assert step.action == block.group(1)
        assert step.note["thought"] == content
    codes = [int(re.search(r"<returncode>(-?\d+)</returncode>", m["content"]).group(1))
             for m in src["messages"][2:] if m["role"] == "user" and "<returncode>" in m["content"]]
    assert [s.failed for s in ep][:len(codes)] == [c != 0 for c in codes]
    assert ep.checks[0].value == src["info"]["exit_status"]


def test_first_layout_bare_list(tmp_path: Path) -> None:
    src = json.loads(MINI_LIST.read_text())
    assert isinstance(src, list)
    _, [ep] = import_one("auto", MINI_LIST, tmp_path / "run")
    assert [s.action for s in ep] == ["echo 'hello world'", "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"]
    assert ep[0].observation == src[3]["content"] and ep.reset.info["system"] == src[0]["content"]
    assert ep.task["text"] == src[1]["content"]


def test_format_error_turn_is_a_failed_step(tmp_path: Path) -> None:
    # Crafted from the current layout's documented shape: a FormatError is a user message carrying the rejected
    # response, then the agent tries again.
    msgs = [{"role": "system", "content": "sys"}, {"role": "user", "content": "task"},
            {"role": "user", "content": "Please always provide EXACTLY ONE action",
             "extra": {"interrupt_type": "FormatError", "cost": 0.01,
                       "response": {"choices": [{"message": {"content": "no block here"}}]}}},
            {"role": "assistant", "content": "ok\n```mswea_bash_command\nls\n```",
             "extra": {"actions": [{"command": "ls"}], "timestamp": 10.0}},
            {"role": "user", "content": "<returncode>0</returncode>\n<output>\na\n</output>",
             "extra": {"returncode": 0, "timestamp": 10.5}},
            {"role": "exit", "content": "", "extra": {"exit_status": "LimitsExceeded", "submission": ""}}]
    path = tmp_path / "fe.traj.json"
    path.write_text(json.dumps({"info": {"mini_version": "2.0.0"}, "messages": msgs,
                                "trajectory_format": "mini-swe-agent-1.1"}))
    _, [ep] = import_one("auto", path, tmp_path / "run")
    assert len(ep) == 2
    assert ep[0].failure.kind == "format_error" and ep[0].action == "no block here"
    assert not ep[1].failed and ep[1].duration == 0.5
    assert ep[1].truncated and ep.checks[0].value == "LimitsExceeded"


def test_report_names_what_was_mapped(tmp_path: Path) -> None:
    report = import_paths("mini-swe-agent", [MINI_V1, MINI_LIST], tmp_path / "run")
    fields = report.fields["mini-swe-agent"]
    assert fields["mapped"]["info.model_stats"] == "provenance.agent.model_stats"
    assert report.episodes == 2 and [f.format for f in report.files] == ["mini-swe-agent"] * 2


def test_atif_export_of_an_import_has_the_tool_calls_harbor_writes_for_the_same_run(tmp_path: Path) -> None:
    """The astropy run as mini-swe-agent saved it, imported and exported as ATIF, has the same bash calls with the
    same ids, arguments and order as Harbor's own ATIF of that run (the importer declares the agent's shell tool)."""
    import gzip

    from trajrec.cli import main

    data = Path(__file__).resolve().parents[1] / "data"
    run, out = tmp_path / "run", tmp_path / "atif.jsonl"
    assert main(["import", "mini-swe-agent", str(data / "mini-swe-agent" / "astropy__astropy-12907.traj.json.gz"),
                 "--out", str(run)]) == 0
    assert main(["export", str(run), "--format", "atif", "--out", str(out)]) == 0
    (doc,) = [json.loads(x) for x in out.read_text().splitlines()]
    ours = [c for s in doc["steps"] if s["source"] == "agent" for c in s.get("tool_calls", [])]
    harbor = json.load(gzip.open(data / "atif" / "astropy__astropy-12907.harbor.trajectory.json.gz"))
    theirs = [c for s in harbor["steps"] if s.get("source") == "agent" for c in s.get("tool_calls") or []]
    assert len(ours) == len(theirs) == 64
    assert [(c["tool_call_id"], c["function_name"], c["arguments"]) for c in ours] == \
        [(c["tool_call_id"], c["function_name"], c["arguments"]) for c in theirs]
    assert doc["agent"]["tool_definitions"][0]["function"]["name"] == "bash"


def test_chat_and_trl_stepwise_keep_each_turn_as_the_agent_wrote_it(tmp_path: Path) -> None:
    """A text-layout run (commands in fenced blocks) exports each assistant turn as its text, the command not
    added again; a tool-calling run exports bash calls. A thought that merely mentions the command is no fence."""
    from trajrec.cli import main
    from trajrec.replay.exports.base import fenced_in

    data = Path(__file__).resolve().parents[1] / "data" / "mini-swe-agent"
    for name, calls in (("test_output.traj.json", False), ("astropy__astropy-12907.traj.json.gz", True)):
        run, out, trl = tmp_path / name / "run", tmp_path / name / "c.jsonl", tmp_path / name / "t.jsonl"
        assert main(["import", "mini-swe-agent", str(data / name), "--out", str(run)]) == 0
        assert main(["export", str(run), "--format", "chat", "--out", str(out)]) == 0
        assert main(["export", str(run), "--format", "trl-stepwise", "--unlabeled", "neutral", "--out", str(trl)]) == 0
        (row,) = [json.loads(x) for x in out.read_text().splitlines()]
        turns = [m for m in row["messages"] if m["role"] == "assistant"]
        src = json.loads(gzip.open(data / name).read() if name.endswith(".gz") else (data / name).read_text())
        said = [m["content"] for m in src["messages"] if m["role"] == "assistant"][:len(turns)]
        assert [m["content"] for m in turns] == said
        assert all(bool(m.get("tool_calls")) is calls for m in turns)
        (prm,) = [json.loads(x) for x in trl.read_text().splitlines()]
        if not calls:
            assert [c.replace(" ", "") for c in prm["completions"]] == [t.replace("\n", "").replace(" ", "")
                                                                       for t in said]
    assert not fenced_in("I'll run ls to look.", "ls") and fenced_in("Look:\n```bash\nls\n```", "ls")
