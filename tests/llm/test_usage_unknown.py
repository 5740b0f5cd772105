"""A server that answers without ``usage`` (some local servers do) leaves the tokens unknown, not 0: the summary
counts those calls (``calls_without_usage``), ``show`` and ``ls`` say the tokens are unknown, and ``report`` says
how many calls are not in its token totals. A call that reported usage is still summed."""

from __future__ import annotations

import json

import pytest
from fake_openai_server import FakeOpenAIServer, tool_reply

from trajrec.cli import main
from trajrec.recorder import open_episode
from trajrec.recorder.model_call import ModelUsage, model_usage_totals

pytest.importorskip("openai")


def _no_usage(reply: dict) -> dict:
    reply = dict(reply)
    reply.pop("usage")
    return reply


def test_totals_of_calls_without_usage_are_unknown_and_partial_ones_are_named() -> None:
    none, some = ModelUsage(), ModelUsage()
    none.add_call({"model": "m", "content": "hi"})
    some.add_call({"model": "m", "usage": {"prompt_tokens": 7, "completion_tokens": 3}})
    some.add_call({"model": "m"})
    some.add_call({"error": {"error": "timeout"}})  # a failed call has no usage: not counted as unknown
    assert none.to_dict()["calls_without_usage"] == 1 and some.to_dict()["calls_without_usage"] == 1
    assert model_usage_totals({"model": none.to_dict()})["total_tokens"] is None
    assert model_usage_totals({"model": some.to_dict()})["total_tokens"] == 10
    assert "calls_without_usage" not in ModelUsage().to_dict()  # other summaries stay as they were


def test_a_server_without_usage_shows_unknown_tokens_everywhere(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("TRAJREC_TEST_KEY", "sk-test")
    script = [_no_usage(tool_reply("calc", '{"expr": "50 - 14*3"}')), _no_usage(tool_reply("submit", '{"answer": 8}'))]
    run = tmp_path / "run"
    with FakeOpenAIServer(script) as server:
        assert main(["record", "trajrec/MathCalc-v0", "--agent", "openai", "--model", "m", "--base-url",
                     server.base_url, "--api-key-env", "TRAJREC_TEST_KEY", "--episodes", "1", "--out", str(run)]) == 0
    (path,) = run.glob("*.msgpack.zst")
    model = open_episode(path).summary["model"]
    assert model["calls"] == 2 and model["calls_without_usage"] == 2
    capsys.readouterr()
    assert main(["show", str(path)]) == 0
    assert "model     2 calls, tokens unknown (the server reported no usage)" in capsys.readouterr().out
    assert main(["ls", str(run), "--json"]) == 0
    (row,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    assert row["model"]["total_tokens"] is None
    assert main(["report", str(run)]) == 0
    assert "2 of the model calls reported no usage: their tokens are unknown" in capsys.readouterr().out
