"""The reply text a model gives beside its tool call (``model_call.content``, recorded by ``--agent openai``)
is the assistant's text in every training export — chat, trl-stepwise, atif, parquet — and what judges see, as a
thought is: it was exported as "" (SFT on it would teach calls without the model's words)."""

from __future__ import annotations

import json

import pytest
from fake_openai_server import FakeOpenAIServer, tool_reply

from trajrec.cli import main
from trajrec.recorder import open_episode

pytest.importorskip("openai")

SAID = ["Let me compute 50 - 14*3 first.", "So the answer is 8."]


@pytest.fixture()
def run(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TRAJREC_TEST_KEY", "sk-test")
    script = [tool_reply("calc", '{"expr": "50 - 14*3"}', content=SAID[0]),  # MathCalc seed 0: 50 - 14*3 = 8
              tool_reply("submit", '{"answer": 8}', content=SAID[1], prompt_tokens=120)]
    with FakeOpenAIServer(script) as server:
        code = main(["record", "trajrec/MathCalc-v0", "--agent", "openai", "--model", "fake-model",
                     "--base-url", server.base_url, "--api-key-env", "TRAJREC_TEST_KEY", "--episodes", "1",
                     "--out", str(tmp_path / "run")])
    assert code == 0, capsys.readouterr().err
    (path,) = sorted((tmp_path / "run").glob("*.msgpack.zst"))
    ep = open_episode(path)
    assert [s.note.get("thought") for s in ep] == [None, None]  # the text is in the model call only
    assert [s.note["model_call"]["content"] for s in ep] == SAID
    return tmp_path / "run"


def _export(run, tmp_path, fmt: str, name: str, *extra: str):
    out = tmp_path / name
    assert main(["export", str(run), "--format", fmt, "--out", str(out), *extra]) == 0
    return out


def test_chat_and_trl_stepwise_carry_the_models_words(run, tmp_path) -> None:
    (row,) = [json.loads(x) for x in _export(run, tmp_path, "chat", "c.jsonl").read_text().splitlines()]
    said = [m["content"] for m in row["messages"] if m["role"] == "assistant"]
    assert said == SAID, said
    rows = [json.loads(x) for x in _export(run, tmp_path, "trl-stepwise", "t.jsonl", "--unlabeled", "neutral").read_text().splitlines()]
    completions = [c for r in rows for c in r["completions"]]
    assert all(any(s in c for c in completions) for s in SAID), completions


def test_atif_and_parquet_carry_the_models_words(run, tmp_path) -> None:
    (doc,) = [json.loads(x) for x in _export(run, tmp_path, "atif", "a.jsonl").read_text().splitlines()]
    assert [s["message"] for s in doc["steps"] if s["source"] == "agent"] == SAID
    pq = pytest.importorskip("pyarrow.parquet", reason="the parquet check needs the [parquet] extra (pyarrow)")
    table = pq.read_table(_export(run, tmp_path, "parquet", "p.parquet"))
    assert table.column("thought").to_pylist() == SAID


def test_judges_see_the_models_words_as_the_thought(run) -> None:
    from trajrec.replay.autolabel import _step_summary

    ep = open_episode(next(run.glob("*.msgpack.zst")))
    assert [_step_summary(s)["thought"] for s in ep] == SAID
