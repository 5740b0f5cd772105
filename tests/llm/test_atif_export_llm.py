"""An episode recorded with the openai agent against a real HTTP server (a 500, a malformed tool call, a reply with
no tool call), exported as ATIF: the tokens and cost of failed attempts are counted as the summary counts them,
the model's call ids are kept, a malformed call is the step's message; the ATIF import gives the same totals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer, error_reply, text_reply, tool_reply

from trajrec.cli import main
from trajrec.recorder import open_episode

pytest.importorskip("openai")


def script() -> list[dict]:
    # MathCalc seed 0 is task math-change-1: 50 - 14*3 = 8.
    return [
        error_reply(500),
        tool_reply("calc", '{"expr": "50 - 14*3"', prompt_tokens=100, completion_tokens=10),  # malformed JSON
        text_reply("The answer is 8, I think.", prompt_tokens=120, completion_tokens=12),  # no tool call
        tool_reply("calc", '{"expr": "50 - 14*3"}', prompt_tokens=140, completion_tokens=14),
        tool_reply("submit", '{"answer": 8}', prompt_tokens=160, completion_tokens=16),
    ]


@pytest.fixture()
def exported(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TRAJREC_TEST_KEY", "sk-test")
    with FakeOpenAIServer(script()) as server:
        code = main(["record", "trajrec/MathCalc-v0", "--agent", "openai", "--model", "fake-model",
                     "--base-url", server.base_url, "--api-key-env", "TRAJREC_TEST_KEY", "--episodes", "1",
                     "--price-in", "1", "--price-out", "2", "--out", str(tmp_path / "run")])
    assert code == 0, capsys.readouterr().err
    (path,) = sorted((tmp_path / "run").glob("*.msgpack.zst"))
    out = tmp_path / "atif.jsonl"
    assert main(["export", str(tmp_path / "run"), "--format", "atif", "--out", str(out)]) == 0
    (doc,) = [json.loads(line) for line in out.read_text().splitlines()]
    return open_episode(path), doc, out


def test_final_metrics_count_failed_attempts_as_the_summary_does(exported):
    ep, doc, _ = exported
    model = ep.summary["model"]
    assert model["failed_attempts"] == 2  # the 500 and the reply without a tool call
    fm = doc["final_metrics"]
    assert fm["total_prompt_tokens"] == model["prompt_tokens"] == 100 + 120 + 140 + 160
    assert fm["total_completion_tokens"] == model["completion_tokens"] == 10 + 12 + 14 + 16
    assert fm["total_cost_usd"] == pytest.approx(model["cost"], rel=1e-12)
    # The step whose call had the unparseable attempt carries its tokens and cost too.
    second = [st for st in doc["steps"] if st["source"] == "agent"][1]
    assert second["metrics"]["prompt_tokens"] == 120 + 140 and second["metrics"]["completion_tokens"] == 12 + 14
    assert second["metrics"]["cost_usd"] == pytest.approx((260 * 1 + 26 * 2) / 1e6, rel=1e-12)


def test_call_ids_are_the_models_and_a_malformed_call_is_the_message(exported):
    ep, doc, _ = exported
    # The system prompt the agent's first call sent, then the task, then the agent's steps.
    assert [st["source"] for st in doc["steps"][:2]] == ["system", "user"]
    agent_steps = doc["steps"][2:]
    assert len(agent_steps) == len(ep) == 3 and all(st["source"] == "agent" for st in agent_steps)
    # Step 0: arguments that are not JSON are no call of any tool: the action goes in the message, as written.
    assert "tool_calls" not in agent_steps[0] and ep[0].action in agent_steps[0]["message"]
    assert "source_call_id" not in agent_steps[0]["observation"]["results"][0]
    for st, rec in zip(agent_steps[1:], list(ep)[1:]):
        (call,) = st["tool_calls"]
        assert call["tool_call_id"] == rec.note["model_call"]["tool_calls"][0]["id"]
        assert st["observation"]["results"][0]["source_call_id"] == call["tool_call_id"]


def test_atif_round_trip_keeps_tokens_and_cost(exported, tmp_path):
    ep, _doc, out = exported
    assert main(["import", "atif", str(out), "--out", str(tmp_path / "back")]) == 0
    (back_path,) = sorted((tmp_path / "back").glob("*.msgpack.zst"))
    before, after = ep.summary["model"], open_episode(back_path).summary["model"]
    for k in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert after[k] == before[k], k
    assert after["cost"] == pytest.approx(before["cost"], rel=1e-12)
