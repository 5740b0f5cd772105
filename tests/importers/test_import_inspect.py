"""Inspect AI logs (.eval archives and .json logs) from inspect_ai's repository: one episode per sample and epoch."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from import_helpers import INSPECT_ERRORS, INSPECT_EVAL, INSPECT_JSON, INSPECT_TOOLS_EVAL, import_one

from trajrec.importers import import_paths
from trajrec.replay.importers.base import parse_time


def sample_of(path: Path) -> tuple[dict, dict]:
    with zipfile.ZipFile(path) as z:
        name = next(n for n in z.namelist() if n.startswith("samples/"))
        return json.loads(z.read("header.json")), json.loads(z.read(name))


def test_tool_calls_events_and_state(tmp_path: Path) -> None:
    header, sample = sample_of(INSPECT_TOOLS_EVAL)
    _, [ep] = import_one("inspect", INSPECT_TOOLS_EVAL, tmp_path / "run")
    turns = [m for m in sample["messages"] if m["role"] == "assistant"]
    results = {m["tool_call_id"]: m["content"] for m in sample["messages"] if m["role"] == "tool"}
    models = {e["output"]["choices"][0]["message"]["id"]: e for e in sample["events"] if e["event"] == "model"}
    tools = {e["id"]: e for e in sample["events"] if e["event"] == "tool"}
    assert len(ep) == len(turns) == 6
    for step, m in zip(ep, turns):
        assert step.note["message_id"] == m["id"]
        assert step.time == parse_time(models[m["id"]]["timestamp"])
        if m.get("tool_calls"):
            [call] = m["tool_calls"]
            assert step.action == {"tool": call["function"], "args": call["arguments"], "id": call["id"]}
            assert step.observation == results[call["id"]]
            assert step.duration == models[m["id"]]["working_time"] + tools[call["id"]]["working_time"]
        else:
            assert step.action == {"message": m["content"]}
    # The same command five times, none failed: no retries invented.
    assert ep.summary["failures"] == ep.summary["retries"] == 0
    # state events (JSON Patch) became diff rows: the tools the solver set up are in the state.
    final = ep.state_at(len(ep) - 1)
    assert final["task_state"]["tool_choice"] == "auto"
    assert [t["name"] for t in final["task_state"]["tools"]] == ["bash", "python"]
    assert ep.reset.info["tools"][0]["name"] == "bash"
    [check] = ep.checks
    assert check.judge == f"inspect:closeness_log@{header['eval']['packages']['inspect_ai']}"
    assert check.value == sample["scores"]["closeness_log"]["value"]
    assert ep.task["id"].endswith(f"/{sample['id']}") and ep.task["epoch"] == sample["epoch"]


def test_eval_and_json_of_one_run_agree(tmp_path: Path) -> None:
    _, [a] = import_one("inspect", INSPECT_EVAL, tmp_path / "a")
    _, [b] = import_one("inspect", INSPECT_JSON, tmp_path / "b")
    src = json.loads(INSPECT_JSON.read_text())
    sample = src["samples"][0]
    assert len(a) == len(b) == 1
    assert a[0].action == b[0].action == {"message": "Yes\n"}
    assert a.task["text"] == b.task["text"] == sample["input"]
    assert a.task["target"] == sample["target"]
    # Inspect's "C" (CORRECT) reads as a pass, with the scorer as judge; the answer and explanation are kept.
    for ep in (a, b):
        [check] = ep.checks
        assert check.value is True and check.extra["inspect_value"] == "C"
        assert check.judge.startswith("inspect:match@")
        assert check.rationale == sample["scores"]["match"]["explanation"]
        assert ep.summary["outcome"] == "passed"
        assert ep.provenance["agent"]["model"] == src["eval"]["model"]
        usage = ep[0].note["model_call"]["usage"]
        assert {k: usage[k] for k in sample["output"]["usage"]} == sample["output"]["usage"]
        assert ep.summary["model"]["total_tokens"] == sample["output"]["usage"]["total_tokens"]


def test_tool_errors_fail_steps(tmp_path: Path) -> None:
    src = json.loads(INSPECT_ERRORS.read_text())
    msgs = src["samples"][0]["messages"]
    _, [ep] = import_one("auto", INSPECT_ERRORS, tmp_path / "run")
    # Tool results no assistant turn asked for are kept as steps, not dropped.
    assert len(ep) == len(msgs)
    for step, m in zip(ep, msgs):
        assert step.failed and step.failure.kind == "tool_error"
        assert step.info["error_types"] == [m["error"]["type"]]
        # ... as steps that call nothing (no call the agent never made), the result's id in the note
        assert step.action == {"message": ""} and step.observation == m["content"]
        assert step.note["orphan_result"]["tool_call_id"] == m["tool_call_id"] and step.note["orphan"]
    # Same tool over and over: each failure after the first is a retry of the one before (shared classifier).
    assert [s.retry_of for s in ep] == [None, *range(len(msgs) - 1)]


def test_one_episode_per_sample_and_epoch(tmp_path: Path) -> None:
    # Two epochs of one sample, rebuilt from the real .json log: two episodes with their own epoch.
    src = json.loads(INSPECT_JSON.read_text())
    second = json.loads(json.dumps(src["samples"][0]))
    second["epoch"] = 2
    src["samples"].append(second)
    path = tmp_path / "two.json"
    path.write_text(json.dumps(src))
    report = import_paths("inspect", [path], tmp_path / "run")
    assert report.episodes == 2
    names = report.files[0].episodes
    assert any("epoch1" in n for n in names) and any("epoch2" in n for n in names)


def test_store_events_become_diff_rows(tmp_path: Path) -> None:
    # The real sample, with two store events (Inspect's JSON Patch shape) added after its first two model turns.
    header, sample = sample_of(INSPECT_TOOLS_EVAL)
    models = [k for k, e in enumerate(sample["events"]) if e["event"] == "model"]
    store = [{"event": "store", "timestamp": sample["events"][models[0]]["timestamp"],
              "changes": [{"op": "add", "path": "/guesses", "value": []}]},
             {"event": "store", "timestamp": sample["events"][models[1]]["timestamp"],
              "changes": [{"op": "add", "path": "/guesses/-", "value": "ls"}]}]
    sample["events"].insert(models[1] + 1, store[1])
    sample["events"].insert(models[0] + 1, store[0])
    path = tmp_path / "log.json"
    path.write_text(json.dumps({**header, "samples": [sample]}))
    _, [ep] = import_one("inspect", path, tmp_path / "run")
    assert ep.state_at(0)["store"] == {"guesses": []}
    assert ep.state_at(1)["store"] == {"guesses": ["ls"]}
    assert ep[1].diff and ep[1].diff[0].path == ["store", "guesses", 0] and ep[1].diff[0].value == "ls"
    assert ep.state_at(len(ep) - 1)["store"] == {"guesses": ["ls"]}


def test_system_prompt_is_reset_info_not_part_of_the_prompt(tmp_path: Path) -> None:
    import json

    src = json.loads(INSPECT_JSON.read_text())["samples"][0]["messages"]
    (system,) = [m["content"] for m in src if m["role"] == "system"]
    _, [ep, *_] = import_one("inspect", INSPECT_JSON, tmp_path / "run")
    assert ep.reset.info["system"] == system
    assert "[system]" not in ep.reset.observation and system not in ep.reset.observation


def test_a_log_without_model_events_declares_the_tools_its_calls_name(tmp_path: Path) -> None:
    # A .json log of the real .eval sample as Inspect writes it without events (log-level "info" and older
    # logs): the tool list of the model events is not there, the calls still name their tools.
    import json
    import zipfile

    from trajrec.cli import main

    with zipfile.ZipFile(INSPECT_TOOLS_EVAL) as z:
        header = json.loads(z.read("header.json"))
        samples = [json.loads(z.read(n)) for n in z.namelist() if n.startswith("samples/")]
    for sample in samples:
        sample.pop("events", None)
    log = tmp_path / "no-events.json"
    log.write_text(json.dumps({**header, "samples": samples}))
    _, [ep] = import_one("inspect", log, tmp_path / "run")
    called = {c["function"] for m in samples[0]["messages"] if m["role"] == "assistant"
              for c in m.get("tool_calls") or ()}
    assert called and {t["function"]["name"] for t in ep.reset.info["tools"]} == called
    out = tmp_path / "chat.jsonl"
    assert main(["export", str(tmp_path / "run"), "--format", "chat", "--out", str(out)]) == 0
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    made = [c["function"]["name"] for m in row["messages"] for c in m.get("tool_calls") or ()]
    assert made and set(made) == called
    assert all(m["role"] in ("user", "assistant", "tool", "system") for m in row["messages"])
    assert '\\"tool\\":' not in out.read_text()  # no call written as JSON text
