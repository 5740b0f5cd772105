"""A run recorded with trajrec's LLM agent keeps what the model said beside its tool calls: the reply text
(``note.model_call.content``, no ``thought``) is the assistant's content in the chat and kto exports, the step's
message in ATIF, ``thought`` in parquet, and part of the trl completion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer, text_reply, tool_reply

from trajrec.cli import main
from trajrec.recorder import open_episode

pytest.importorskip("openai")

SAID = "Let me compute 50 - 14*3 first."


def _with_text(reply: dict, text: str) -> dict:
    reply["choices"][0]["message"]["content"] = text
    return reply


@pytest.fixture()
def recorded(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRAJREC_TEST_KEY", "sk-test")
    script = [_with_text(tool_reply("calc", '{"expr": "50 - 14*3"}'), SAID),
              tool_reply("submit", '{"answer": 8}')]
    with FakeOpenAIServer(script) as server:
        code = main(["record", "trajrec/MathCalc-v0", "--agent", "openai", "--model", "fake-model", "--base-url",
                     server.base_url, "--api-key-env", "TRAJREC_TEST_KEY", "--episodes", "1", "--out",
                     str(tmp_path / "run")])
    assert code == 0, capsys.readouterr().err
    run = tmp_path / "run"
    (path,) = sorted(run.glob("*.msgpack.zst"))
    steps = list(open_episode(path))
    assert steps[0].note["model_call"]["content"] == SAID and "thought" not in steps[0].note
    return run


def _export(run: Path, fmt: str, out: Path, *extra: str) -> list[dict]:
    assert main(["export", str(run), "--format", fmt, "--out", str(out), *extra]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_the_reply_text_reaches_every_export(recorded: Path, tmp_path: Path) -> None:
    (chat,) = _export(recorded, "chat", tmp_path / "chat.jsonl")
    said = [m["content"] for m in chat["messages"] if m["role"] == "assistant"]
    assert said[0] == SAID and said[1:] == [""] * (len(said) - 1)  # the submit came with no text
    atif = _export(recorded, "atif", tmp_path / "atif.jsonl")
    messages = [s["message"] for t in atif for s in t["steps"] if s.get("source") == "agent"]
    assert messages[0] == SAID and SAID not in messages[1:]
    (trl,) = _export(recorded, "trl-stepwise", tmp_path / "trl.jsonl", "--unlabeled", "neutral")
    assert trl["completions"][0].startswith(SAID + " ")
    pq = pytest.importorskip("pyarrow.parquet")
    assert main(["export", str(recorded), "--format", "parquet", "--out", str(tmp_path / "s.parquet")]) == 0
    assert pq.read_table(tmp_path / "s.parquet").column("thought").to_pylist()[0] == SAID
