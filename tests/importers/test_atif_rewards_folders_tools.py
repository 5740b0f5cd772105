"""ATIF imports as Harbor writes them and as ``export --format atif`` writes them: a 0/1 reward (Harbor's verifiers
write floats, ``{"reward": 1.0}``) is a verdict; a folder of documents imports; the system steps are the system
prompt (reset info), not part of the user's prompt; calls of tools the file does not define are declared, and the
atif export writes a call of an undeclared tool as text, as chat does (one definition of a call)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from import_helpers import ATIF, import_one

from trajrec import Recorder, open_episode
from trajrec.cli import main


def _variant(tmp_path: Path, name: str, **root: Any) -> Path:
    doc = json.loads(ATIF.read_text())
    doc.update(root)
    out = tmp_path / f"{name}.trajectory.json"
    out.write_text(json.dumps(doc))
    return out


@pytest.mark.parametrize(("reward", "outcome", "value"), [
    (1.0, "passed", True), (0.0, "failed", False), (1, "passed", True), (0, "failed", False),
    (True, "passed", True), (0.5, "terminated", 0.5)])
def test_harbor_rewards_one_and_zero_are_verdicts(tmp_path: Path, reward: Any, outcome: str, value: Any) -> None:
    src = _variant(tmp_path, "r", extra={"reward": reward})
    _, [ep] = import_one("atif", src, tmp_path / "run")
    assert ep.summary["outcome"] == outcome
    (check,) = [c for c in ep.checks if c.judge == "atif:reward"]
    assert check.value == value and type(check.value) is type(value)
    # The number as written is kept: as the score, and in the source's extra.
    assert check.score == (None if isinstance(reward, bool) else reward)
    assert ep.provenance["extra"]["extra"] == {"reward": reward}


def test_rewards_in_final_metrics_extra_too(tmp_path: Path) -> None:
    doc = json.loads(ATIF.read_text())
    doc["final_metrics"]["extra"] = {"rewards": {"reward": 0.0}}
    src = tmp_path / "fm.trajectory.json"
    src.write_text(json.dumps(doc))
    _, [ep] = import_one("atif", src, tmp_path / "run")
    assert ep.summary["outcome"] == "failed"


def test_kto_keeps_float_rewarded_episodes(tmp_path: Path) -> None:
    srcs = [_variant(tmp_path, f"r{k}", extra={"reward": r}, session_id=f"s{k}", trajectory_id=f"t{k}")
            for k, r in enumerate((1.0, 0.0))]
    assert main(["import", "atif", *map(str, srcs), "--out", str(tmp_path / "run")]) == 0
    out = tmp_path / "kto.jsonl"
    assert main(["export", str(tmp_path / "run"), "--format", "kto", "--out", str(out)]) == 0
    assert sorted(json.loads(line)["label"] for line in out.read_text().splitlines()) == [False, True]


def test_import_atif_of_an_export_folder(tmp_path: Path) -> None:
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "3", "--out", str(tmp_path / "run"), "--json"]) == 0
    atif = tmp_path / "atif"
    assert main(["export", str(tmp_path / "run"), "--format", "atif", "--out", f"{atif}/"]) == 0
    for fmt in ("atif", "auto"):
        back = tmp_path / f"back-{fmt}"
        assert main(["import", fmt, str(atif), "--out", str(back)]) == 0
        assert len(list(back.glob("*.msgpack.zst"))) == 3


def test_a_folder_a_format_cannot_read_is_refused_with_the_hint(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    for fmt in ("atif", "swe-agent", "auto"):
        assert main(["import", fmt, str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) != 0
        err = capsys.readouterr().err
        assert "is a folder; pass the trajectory files themselves" in err and "Is a directory" not in err, err


def test_system_steps_are_the_system_prompt_and_come_back_as_a_system_step(tmp_path: Path) -> None:
    doc = json.loads(ATIF.read_text())
    doc["steps"].insert(0, {"step_id": 0, "source": "system", "message": "You are a terminal agent."})
    for k, st in enumerate(doc["steps"], 1):
        st["step_id"] = k
    src = tmp_path / "sys.trajectory.json"
    src.write_text(json.dumps(doc))
    _, [ep] = import_one("atif", src, tmp_path / "run")
    assert ep.reset.info["system"] == "You are a terminal agent."
    assert ep.reset.observation == doc["steps"][1]["message"]  # the user's message alone
    out = tmp_path / "chat.jsonl"
    assert main(["export", str(tmp_path / "run"), "--format", "chat", "--out", str(out)]) == 0
    text = out.read_text()
    assert "[system]" not in text


def test_atif_declares_the_tools_its_calls_name(tmp_path: Path) -> None:
    # The RFC example calls financial_search without tool_definitions: declared from the calls (the chat export
    # then writes them as calls), while the atif export writes the file back without invented definitions.
    # (One call in the step: a turn of parallel calls is the chat export's own matter.)
    src = json.loads(ATIF.read_text())
    for st in src["steps"]:
        if st.get("tool_calls"):
            st["tool_calls"] = st["tool_calls"][:1]
            st["observation"]["results"] = st["observation"]["results"][:1]
    path = tmp_path / "one.trajectory.json"
    path.write_text(json.dumps(src))
    _, [ep] = import_one("atif", path, tmp_path / "run")
    names = [t["function"]["name"] for t in ep.reset.info["tools"]]
    assert "financial_search" in names
    schema = next(t for t in ep.reset.info["tools"] if t["function"]["name"] == "financial_search")
    assert set(schema["function"]["parameters"]["properties"]) == {"ticker", "metric"}
    out = tmp_path / "chat.jsonl"
    assert main(["export", str(tmp_path / "run"), "--format", "chat", "--out", str(out)]) == 0
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    calls = [c for m in row["messages"] for c in m.get("tool_calls") or ()]
    assert {c["function"]["name"] for c in calls} == {"financial_search"}
    atif = tmp_path / "atif"
    assert main(["export", str(tmp_path / "run"), "--format", "atif", "--out", f"{atif}/"]) == 0
    (doc,) = [json.loads(p.read_text()) for p in atif.glob("*.json")]
    assert "tool_definitions" not in doc["agent"]
    assert [c["function_name"] for s in doc["steps"] for c in s.get("tool_calls") or ()] == \
        [c["function_name"] for s in src["steps"] for c in s.get("tool_calls") or ()]


class _Calc:
    """An env that declares one tool; the agent also calls a tool it does not have."""

    TOOLS = [{"type": "function", "function": {"name": "calc", "description": "Evaluate.",
                                               "parameters": {"type": "object",
                                                              "properties": {"expr": {"type": "string"}}}}}]

    def reset(self, *, seed: Any = None, options: Any = None) -> tuple[str, dict[str, Any]]:
        return "Compute 2+2.", {"tools": self.TOOLS}

    def step(self, action: Any) -> tuple[str, float, bool, bool, dict[str, Any]]:
        return "4" if action.get("tool") == "calc" else "unknown tool", 0.0, action.get("tool") == "calc", False, {}


def test_atif_export_writes_a_call_of_an_undeclared_tool_as_text_like_chat(tmp_path: Path) -> None:
    env = Recorder(_Calc(), tmp_path / "run")
    env.reset(seed=0)
    env.step({"tool": "calculator", "args": {"expr": "2+2"}})
    env.step({"tool": "calc", "args": {"expr": "2+2"}})
    env.close()
    atif, chat = tmp_path / "atif", tmp_path / "chat.jsonl"
    assert main(["export", str(tmp_path / "run"), "--format", "atif", "--out", f"{atif}/"]) == 0
    assert main(["export", str(tmp_path / "run"), "--format", "chat", "--out", str(chat)]) == 0
    (doc,) = [json.loads(p.read_text()) for p in atif.glob("*.json")]
    agent = [s for s in doc["steps"] if s["source"] == "agent"]
    assert "tool_calls" not in agent[0] and "calculator" in agent[0]["message"]
    assert [c["function_name"] for c in agent[1]["tool_calls"]] == ["calc"]
    (row,) = [json.loads(line) for line in chat.read_text().splitlines()]
    said = [m for m in row["messages"] if m["role"] == "assistant"]
    assert "tool_calls" not in said[0] and "calculator" in said[0]["content"]
    assert [c["function"]["name"] for c in said[1]["tool_calls"]] == ["calc"]
    # ... and the import gives the text back as the agent's message, the call as a call
    back = tmp_path / "back"
    assert main(["import", "atif", str(atif), "--out", str(back)]) == 0
    ep = open_episode(next(back.glob("*.msgpack.zst")))
    assert "calculator" in ep[0].action["message"] and ep[1].action["tool"] == "calc"


def test_atif_export_writes_the_system_prompt_of_an_import_as_a_system_step(tmp_path: Path) -> None:
    from import_helpers import MINI_V1, SWE

    for fmt, src in (("mini-swe-agent", MINI_V1), ("swe-agent", SWE)):
        _, [ep] = import_one(fmt, src, tmp_path / fmt)
        system = ep.reset.info["system"]
        assert system and system not in (ep.reset.observation or "")
        out = tmp_path / f"{fmt}-atif"
        assert main(["export", str(tmp_path / fmt), "--format", "atif", "--out", f"{out}/"]) == 0
        (doc,) = [json.loads(p.read_text()) for p in out.glob("*.json")]
        assert [(s["source"], s["message"]) for s in doc["steps"][:2]] == [("system", system),
                                                                          ("user", ep.reset.observation)]
        assert [s["step_id"] for s in doc["steps"]] == list(range(1, len(doc["steps"]) + 1))
