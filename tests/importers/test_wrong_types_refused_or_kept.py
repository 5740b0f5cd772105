"""Source fields of the wrong type are never dropped in silence (FINDINGS28 #1-#3, #5): a field the step is made of
(an Inspect role or content, OpenHands args or cause, SWE-agent info) is refused naming its path; a metadata value
(a token count, a cost, a time) that cannot be read is kept as extra with one warning, and the total it feeds is
unknown, not partial. OpenHands' older flat ``extras.exit_code`` fails steps as ``extras.metadata.exit_code`` does.
Error texts keep the JSON decoder's message whole and show found values as JSON. Real files (the test data,
rebuilt with the wrong value) through the real importers and ``trajrec.cli.main``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from import_helpers import INSPECT_ERRORS, MINI_V1, SWE, import_one

from trajrec.cli import main
from trajrec.importers import ImportFormatError, import_paths
from trajrec.recorder.model_call import model_usage_totals


def _import_cli(src: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["import", "auto", str(src), "--out", str(out)])
    got = capsys.readouterr()
    return code, got.out, got.err


# -- OpenHands exit codes ----------------------------------------------------------------------------------------


def _oh_events(extras: dict[str, Any]) -> list[dict[str, Any]]:
    """A user task, a command that fails (its observation's extras as given), then finish."""
    return [
        {"id": 0, "timestamp": "2025-01-01T10:00:00", "source": "user", "action": "message", "message": "Create x",
         "args": {"content": "Create x"}},
        {"id": 1, "timestamp": "2025-01-01T10:00:01", "source": "agent", "action": "run",
         "message": "Running command: cat hell.txt", "args": {"command": "cat hell.txt", "thought": "look"}},
        {"id": 2, "timestamp": "2025-01-01T10:00:02", "source": "agent", "observation": "run", "cause": 1,
         "content": "cat: hell.txt: No such file", "extras": {"command": "cat hell.txt", **extras}},
        {"id": 3, "timestamp": "2025-01-01T10:00:03", "source": "agent", "action": "finish", "message": "done",
         "args": {"outputs": {}}},
    ]


@pytest.mark.parametrize("extras, failed", [
    ({"exit_code": 1}, True),                                      # OpenHands/OpenDevin before the metadata change
    ({"metadata": {"exit_code": 1}}, True),                        # since it
    ({"exit_code": 0}, False),
    ({"exit_code": 1, "metadata": {"exit_code": 0}}, False),       # both: metadata wins (what OpenHands reads)
    ({"exit_code": 0, "metadata": {"exit_code": 2}}, True),
    ({"exit_code": -1}, False),                                    # -1: the command had not ended
])
def test_openhands_exit_code_in_either_layout_fails_the_step(tmp_path: Path, extras: dict[str, Any],
                                                             failed: bool) -> None:
    src = tmp_path / "oh.json"
    src.write_text(json.dumps(_oh_events(extras)))
    _, [ep] = import_one("openhands", src, tmp_path / "run")
    step = ep[0]
    assert step.action["args"]["command"] == "cat hell.txt"
    assert (step.failure is not None) is failed
    if failed:
        code = extras.get("metadata", {}).get("exit_code", extras.get("exit_code"))
        assert step.failure.kind == "tool_error" and step.failure.message == f"exit code {code}"
    assert ep.summary["failures"] == int(failed)


# -- essential fields: refused, naming the path ----------------------------------------------------------------------


def _inspect_log(tmp_path: Path, change: Any) -> Path:
    """The test data's Inspect log with its first sample changed by ``change(sample)``."""
    log = json.loads(INSPECT_ERRORS.read_text())
    sample = log["samples"][0]
    sample["messages"] = [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "Let me compute", "tool_calls": [
            {"id": "c1", "function": "calc", "arguments": {"expr": "2+2"}, "type": "function"}]},
        {"role": "tool", "tool_call_id": "c1", "function": "calc", "content": "4"},
        {"role": "assistant", "content": "4"},
    ]
    sample["events"] = []
    change(sample)
    src = tmp_path / "log.json"
    src.write_text(json.dumps(log))
    return src


def test_the_unchanged_inspect_log_imports(tmp_path: Path) -> None:
    _, [ep] = import_one("inspect", _inspect_log(tmp_path, lambda s: None), tmp_path / "run")
    assert ep[0].action["tool"] == "calc" and ep[0].note["thought"] == "Let me compute" and len(ep) == 2


def _set(path: list[Any], value: Any):  # type: ignore[no-untyped-def]
    def change(obj: Any) -> None:
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = value
    return change


@pytest.mark.parametrize("fmt, build, field, found", [
    ("inspect", lambda t: _inspect_log(t, _set(["messages", 1, "role"], 5)),
     "$.samples[0].messages[1].role", "expected the role (system, user, assistant or tool), found 5"),
    # An unknown role (a misspelt "assistant") would read the agent's turn as prompt text and drop its calls.
    ("inspect", lambda t: _inspect_log(t, _set(["messages", 1, "role"], "assitant")),
     "$.samples[0].messages[1].role", 'expected the role (system, user, assistant or tool), found "assitant"'),
    ("inspect", lambda t: _inspect_log(t, _set(["messages", 1, "content"], 12345)),
     "$.samples[0].messages[1].content", "expected text or a list of content parts, found 12345"),
    ("inspect", lambda t: _inspect_log(t, _set(["messages", 2], "oops")),
     "$.samples[0].messages[2]", 'expected a message object, found "oops"'),
    ("openhands", lambda t: _write(t / "oh.json", _oh_with(1, "args", "string")),
     "$[1].args", 'expected an object of arguments, found "string"'),
    ("openhands", lambda t: _write(t / "oh.json", _oh_with(2, "cause", "one")),
     "$[2].cause", 'expected the id of the action it answers (a whole number) or null, found "one"'),
    # FINDINGS29 #3: a failed command, an agent's action, a result's link and a verdict, never read as absent
    *(("openhands", (lambda v: lambda t: _write(t / "oh.json", _oh_events({"exit_code": v})))(v),
       "$[2].extras.exit_code", f"expected the command's exit code (a whole number) or null, found {shown}")
      for v, shown in (("1", '"1"'), (1.5, "1.5"), (True, "true"))),
    ("openhands", lambda t: _write(t / "oh.json", _oh_events({"metadata": {"exit_code": "1"}})),
     "$[2].extras.metadata.exit_code", 'expected the command\'s exit code (a whole number) or null, found "1"'),
    ("openhands", lambda t: _write(t / "oh.json", _oh_events({"metadata": "x"})),
     "$[2].extras.metadata", 'expected an object (exit_code...) or null, found "x"'),
    ("openhands", lambda t: _write(t / "oh.json", _oh_with(2, "extras", "x")),
     "$[2].extras", 'expected an object (exit_code, metadata...) or null, found "x"'),
    ("openhands", lambda t: _write(t / "oh.json", _oh_with(1, "source", 5)),
     "$[1].source", "expected who acted (agent, user, environment) or null, found 5"),
    ("openhands", lambda t: _write(t / "oh.json", _oh_with(1, "id", "three")),
     "$[1].id", 'or null, found "three"'),
    ("inspect", lambda t: _inspect_log(t, _set(["messages", 2, "tool_call_id"], 5)),
     "$.samples[0].messages[2].tool_call_id", "expected the id of the call it answers (text) or null, found 5"),
    ("inspect", lambda t: _inspect_log(t, _set(["messages", 1, "tool_calls", 0, "id"], 7)),
     "$.samples[0].messages[1].tool_calls[0].id", "expected the call's id (text) or null, found 7"),
    ("inspect", lambda t: _inspect_log(t, _set(["scores"], [1])),
     "$.samples[0].scores", "expected an object of scores by scorer name, found [1]"),
    ("swe-agent", lambda t: _write(t / "s.traj", _swe_with(["info"], "x")),
     "$.info", 'expected an object (exit_status, submission, model_stats), found "x"'),
    ("mini-swe-agent", lambda t: _write(t / "m.traj.json", {**json.loads(MINI_V1.read_text()), "info": ["x"]}),
     "$.info", 'expected an object (exit_status, submission, model_stats, config), found ["x"]'),
])
def test_an_essential_field_of_the_wrong_type_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        fmt: str, build: Any, field: str, found: str) -> None:
    src = build(tmp_path)
    with pytest.raises(ImportFormatError) as err:
        import_paths(fmt, [src], tmp_path / "run")
    assert err.value.field == field and found in str(err.value)
    assert not (tmp_path / "run").exists()  # nothing half imported
    code, _, stderr = _import_cli(src, tmp_path / "run2", capsys)
    assert code == 1 and f"field {field}" in stderr and found in stderr and len(stderr.strip().splitlines()) == 1


def _write(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc))
    return path


def _oh_with(k: int, key: str, value: Any) -> list[dict[str, Any]]:
    events = _oh_events({"exit_code": 0})
    events[k][key] = value
    return events


def _swe_with(path: list[Any], value: Any) -> dict[str, Any]:
    doc = json.loads(SWE.read_text())
    _set(path, value)(doc)
    return doc


# -- OpenHands: a top level that is no event list ----------------------------------------------------------------


@pytest.mark.parametrize("doc", [{}, {"eval": {"task": "t"}, "samples": []}, {"id": 0, "action": "run"}])
def test_openhands_refuses_a_top_level_that_is_no_event_list(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             doc: Any) -> None:
    """FINDINGS29 #4: ``{}`` or another tool's log was a 0-step episode (exit 0)."""
    src = _write(tmp_path / "x.json", doc)
    with pytest.raises(ImportFormatError) as err:
        import_paths("openhands", [src], tmp_path / "run")
    assert err.value.field == "$" and "not an OpenHands event list" in str(err.value)
    assert not (tmp_path / "run").exists()
    code = main(["import", "openhands", str(src), "--out", str(tmp_path / "run2")])
    stderr = capsys.readouterr().err
    assert code == 1 and "field $:" in stderr and len(stderr.strip().splitlines()) == 1


def test_openhands_object_with_events_still_imports(tmp_path: Path) -> None:
    src = _write(tmp_path / "x.json", {"events": _oh_events({"exit_code": 1})})
    _, [ep] = import_one("openhands", src, tmp_path / "run")
    assert len(ep) == 2 and ep.summary["failures"] == 1


# -- Inspect samples that are not an array ---------------------------------------------------------------------------


@pytest.mark.parametrize("samples, found", [("oops", '"oops"'), ({"a": 1}, "an object"), (5, "5")])
def test_inspect_samples_not_an_array_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], samples: Any,
                                                 found: str) -> None:
    log = json.loads(INSPECT_ERRORS.read_text())
    log["samples"] = samples
    src = _write(tmp_path / "log.json", log)
    code, _, err = _import_cli(src, tmp_path / "run", capsys)
    assert code == 1 and "field $.samples" in err and f"expected an array, found {found}" in err
    assert not (tmp_path / "run").exists()


def test_inspect_log_without_samples_is_empty(tmp_path: Path) -> None:
    log = json.loads(INSPECT_ERRORS.read_text())
    log["samples"] = None  # a log written without its samples (header only)
    report = import_paths("inspect", [_write(tmp_path / "log.json", log)], tmp_path / "run")
    assert report.episodes == 0 and not report.errors


# -- metadata: kept as extra, one warning, totals unknown --------------------------------------------------------------


def test_unreadable_token_count_makes_the_total_unknown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stats = json.loads(SWE.read_text())["info"]["model_stats"]
    src = _write(tmp_path / "s.traj", _swe_with(["info", "model_stats", "tokens_sent"], "lots"))
    code, out, err = _import_cli(src, tmp_path / "run", capsys)
    assert code == 0
    assert "info.model_stats.tokens_sent" in out.splitlines()[-1]  # the "kept N as extra: ..." line
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert warnings == ['trajrec import: warning: swe-agent info.model_stats.tokens_sent: expected a whole number '
                        '>= 0 or null, found "lots"; the episode\'s tokens are unknown; its value is kept as extra']
    [ep_path] = (tmp_path / "run").glob("*.msgpack.zst")
    from trajrec import open_episode

    ep = open_episode(ep_path)
    usage = model_usage_totals(ep.summary)
    # Not tokens_received alone shown as the total: unknown, as `ls` shows it ("?").
    assert usage["total_tokens"] is None and usage["completion_tokens"] is None
    assert usage["cost"] == pytest.approx(stats["instance_cost"])  # the readable cost still counts
    assert ep.provenance["extra"]["info.model_stats.tokens_sent"] == "lots"
    assert main(["ls", str(tmp_path / "run")]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    assert f"{stats['tokens_received']:,}" not in row and " ? " in row


def test_one_token_count_alone_is_no_total(tmp_path: Path) -> None:
    doc = json.loads(SWE.read_text())
    del doc["info"]["model_stats"]["tokens_sent"]
    _, [ep] = import_one("swe-agent", _write(tmp_path / "s.traj", doc), tmp_path / "run")
    assert model_usage_totals(ep.summary)["total_tokens"] is None


def test_negative_cost_is_kept_and_unknown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stats = json.loads(SWE.read_text())["info"]["model_stats"]
    src = _write(tmp_path / "s.traj", _swe_with(["info", "model_stats", "instance_cost"], -5))
    code, _, err = _import_cli(src, tmp_path / "run", capsys)
    assert code == 0 and "info.model_stats.instance_cost: expected a number of US dollars >= 0 or null, found -5" in err
    report = import_paths("swe-agent", [src], tmp_path / "run2")
    assert report.fields["swe-agent"]["unread"]["info.model_stats.instance_cost"].startswith("expected")
    from trajrec import open_episode

    ep = open_episode(tmp_path / "run2" / report.files[0].episodes[0])
    usage = model_usage_totals(ep.summary)
    assert usage["cost"] is None
    assert usage["total_tokens"] == stats["tokens_sent"] + stats["tokens_received"]  # the readable tokens count
    assert ep.provenance["extra"]["info.model_stats.instance_cost"] == -5


def test_unreadable_execution_time_is_kept_on_the_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _write(tmp_path / "s.traj", _swe_with(["trajectory", 0, "execution_time"], "fast"))
    code, _, err = _import_cli(src, tmp_path / "run", capsys)
    assert code == 0
    assert 'trajectory[].execution_time: expected seconds (a number >= 0), found "fast"' in err
    assert err.count("warning") == 1
    from trajrec import open_episode

    [ep_path] = (tmp_path / "run").glob("*.msgpack.zst")
    ep = open_episode(ep_path)
    assert ep[0].note["extra"]["execution_time"] == "fast"
    assert ep[1].duration == pytest.approx(json.loads(SWE.read_text())["trajectory"][1]["execution_time"])


# -- error texts -----------------------------------------------------------------------------------------------------


def test_decoder_message_is_whole_and_values_are_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = SWE.read_text()
    cut = text.index('"observation"', text.index('"trajectory"')) + len('"observation": "') + 3
    src = tmp_path / "trunc.traj"
    src.write_text(text[:cut])
    code, _, err = _import_cli(src, tmp_path / "run", capsys)
    assert code == 1
    with pytest.raises(ImportFormatError) as exc:
        import_paths("swe-agent", [src], tmp_path / "run")
    at = exc.value.offset
    assert f"(character {at}): invalid JSON: Unterminated string starting at character {at} [" in err
    assert text[at] == '"'

    for value, shown in ((None, "null"), ({"x": 1}, '{"x": 1}')):
        log = _inspect_log(tmp_path, _set(["messages"], value))
        code, _, err = _import_cli(log, tmp_path / "run", capsys)
        assert code == 1 and f"expected a list of messages, found {shown} [" in err
