"""The openai agent against a real HTTP server on localhost with scripted replies: a 500 then a retry, a tool call
with malformed arguments, a reply with no tool call; the model side of each step recorded, summed per episode and
shown by show, ls, the viewer and the records export."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer, error_reply, text_reply, tool_reply

from trajrec.cli import main
from trajrec.recorder import open_episode
from trajrec.recorder.model_call import conversation

pytest.importorskip("openai")

ROOT = Path(__file__).resolve().parents[2]


def script() -> list[dict]:
    # MathCalc seed 0 is task math-change-1: 50 - 14*3 = 8.
    return [
        error_reply(500),
        tool_reply("calc", '{"expr": "50 - 14*3"', prompt_tokens=100, completion_tokens=10),  # malformed JSON
        text_reply("The answer is 8, I think.", prompt_tokens=120, completion_tokens=12),  # no tool call
        tool_reply("calc", '{"expr": "50 - 14*3"}', prompt_tokens=140, completion_tokens=14, reasoning="compute it"),
        tool_reply("submit", '{"answer": 8}', prompt_tokens=160, completion_tokens=16),
    ]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def recorded(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TRAJREC_TEST_KEY", "sk-test")
    with FakeOpenAIServer(script()) as server:
        code, out, err = run_cli(capsys, "record", "trajrec/MathCalc-v0", "--agent", "openai", "--model", "fake-model",
                                 "--base-url", server.base_url, "--api-key-env", "TRAJREC_TEST_KEY", "--episodes", "1",
                                 "--temperature", "0.2", "--max-tokens", "256", "--price-in", "1", "--price-out", "2",
                                 "--out", str(tmp_path / "run"), "--json")
    assert code == 0, err
    (path,) = sorted((tmp_path / "run").glob("*.msgpack.zst"))
    return path, server, json.loads(out)


def test_steps_carry_the_model_side(recorded):
    path, server, summary = recorded
    ep = open_episode(path)
    assert len(ep) == 3 and ep.summary["outcome"] == "passed"
    assert ep.provenance["agent"]["name"] == "openai-tools" and ep.provenance["agent"]["model"] == "fake-model"
    assert ep.provenance["agent"]["sampling"] == {"temperature": 0.2, "max_tokens": 256}

    first, second, third = (st.note["model_call"] for st in ep)
    # Step 0: a 500, retried; then a tool call whose arguments are not JSON, passed to the env, which refuses it.
    assert [(a["error"], a["status"]) for a in first["attempts"]] == [("http_error", 500)]
    assert "upstream model crashed" in first["attempts"][0]["message"]
    assert first["tool_calls"][0]["name"] == "calc" and first["tool_calls"][0]["arguments"] is None
    assert first["tool_calls"][0]["error"].startswith("arguments are not valid JSON")
    assert json.loads(ep[0].action) == {"name": "calc", "arguments": '{"expr": "50 - 14*3"'}
    assert ep[0].failure.kind == "tool_error"
    assert first["model"] == "fake-model-1" and first["sampling"] == {"temperature": 0.2, "max_tokens": 256}
    assert first["usage"] == {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}
    assert first["cost"] == pytest.approx((100 * 1 + 10 * 2) / 1e6) and first["latency"] > 0
    assert first["completion"]["choices"][0]["finish_reason"] == "tool_calls"
    assert [m["role"] for m in first["messages"]] == ["system", "user"] and first["messages_before"] == 0
    assert [t["function"]["name"] for t in first["tools"]] == ["calc", "submit"]
    # Step 1: a reply without a tool call is an unparseable attempt, answered with a reminder; then the retry.
    assert [a["error"] for a in second["attempts"]] == ["unparseable"]
    assert second["attempts"][0]["usage"]["total_tokens"] == 132
    assert second["reasoning"] == "compute it" and "tools" not in second
    assert [m["role"] for m in second["messages"]] == ["assistant", "tool", "assistant", "user"]
    assert second["messages"][1]["content"].startswith("error: could not parse the arguments of calc as JSON")
    assert ep[1].observation == "50 - 14*3 = 8" and ep[1].retry_of == 0 and ep[1].recovers == [0]
    assert third["tool_calls"][0]["arguments"] == {"answer": 8} and ep[2].terminated
    # The whole conversation comes back from the per-step deltas.
    assert [m["role"] for m in conversation(st.note for st in ep)] == [
        "system", "user", "assistant", "tool", "assistant", "user", "assistant", "tool"]

    # What went over the wire: the retry repeated the request; the key, the tools and the sampling were sent.
    bodies = [r["body"] for r in server.requests]
    assert len(bodies) == 5 and bodies[0] == bodies[1]
    assert server.requests[0]["authorization"] == "Bearer sk-test"
    assert bodies[0]["temperature"] == 0.2 and bodies[0]["max_tokens"] == 256 and bodies[0]["model"] == "fake-model"
    assert bodies[3]["messages"][-1] == {"role": "user", "content": "Your reply had no tool call. Call exactly one "
                                                                     "of the tools now."}

    totals = ep.summary["model"]
    assert (totals["calls"], totals["failed_attempts"], totals["failed_calls"]) == (3, 2, 0)
    assert (totals["prompt_tokens"], totals["completion_tokens"], totals["total_tokens"]) == (520, 52, 572)
    assert totals["cost"] == pytest.approx((520 + 2 * 52) / 1e6)
    assert totals["latency"] >= sum(n["latency"] for n in (first, second, third))
    assert totals["models"] == {"fake-model-1": 3}
    assert summary["model"]["total_tokens"] == 572


def test_show_ls_and_records_export(recorded, tmp_path, capsys):
    path, _, _ = recorded
    code, out, _ = run_cli(capsys, "show", str(path))
    assert code == 0
    assert "model     3 calls (2 failed attempts), 572 tokens (520 in / 52 out)" in out
    code, out, _ = run_cli(capsys, "show", str(path), "--step", "0")
    assert "fake-model-1  110 tokens (100 in / 10 out)" in out
    assert "attempt 1 failed: http_error 500 after" in out
    assert 'tool call calc({"expr": "50 - 14*3"): arguments are not valid JSON' in out
    code, out, _ = run_cli(capsys, "show", str(path), "--step", "1")
    assert "attempt 1 failed: unparseable" in out and "reasoning: compute it" in out
    code, out, _ = run_cli(capsys, "ls", str(path))
    row = out.splitlines()[1].split()
    assert row[-3:-1] == ["572", f"{open_episode(path).summary['model']['latency']:.2f}"] and row[-1] == "$0.000624"
    code, out, _ = run_cli(capsys, "ls", str(path), "--json")
    assert json.loads(out)["model"]["total_tokens"] == 572
    out_file = tmp_path / "records.jsonl"
    assert run_cli(capsys, "export", str(path.parent), "-f", "records", "-o", str(out_file))[0] == 0
    (rec,) = [json.loads(line) for line in out_file.read_text().splitlines()]
    summary = json.loads(rec["summary"])  # records@2: env- and agent-typed fields are JSON text
    assert summary["model"]["total_tokens"] == 572 and summary["model"]["failed_attempts"] == 2
    assert json.loads(rec["steps"][0]["note"])["model_call"]["attempts"][0]["status"] == 500


def test_viewer_header_and_step_detail(recorded):
    from trajrec.tui.app import create_app
    from trajrec.tui.episode_header import EpisodeHeader, header_text
    from trajrec.tui.episode_screen import EpisodeScreen
    from trajrec.tui.step_detail import StepDetail

    path, _, _ = recorded
    assert "model   3 calls (2 failed attempts), 572 tokens (520 in / 52 out)" in header_text(open_episode(path)).plain

    async def run() -> None:
        app = create_app([path], annotator="ana")
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(500):
                if isinstance(app.screen, EpisodeScreen) and app.screen.markers_ready:
                    break
                await pilot.pause(0.01)
            await pilot.pause()
            assert app.screen.query_one(EpisodeHeader) is not None
            detail = app.screen.query_one(StepDetail).text.plain
            assert "model_call:" in detail and "attempt 1 failed: http_error 500" in detail
            assert "arguments are not valid JSON" in detail and "110 tokens (100 in / 10 out)" in detail

    asyncio.run(run())


def test_openai_options_need_the_openai_agent(tmp_path, capsys):
    code, _, err = run_cli(capsys, "record", "trajrec/MathCalc-v0", "--model", "m", "--out", str(tmp_path))
    assert code != 0 and "--model only apply to --agent openai" in err
    code, _, err = run_cli(capsys, "record", "trajrec/MathCalc-v0", "--agent", "openai", "--out", str(tmp_path))
    assert code != 0 and "--agent openai needs --model M" in err


def test_example_script_records_against_the_server(tmp_path):
    replies = [tool_reply("calc", '{"expr": "50 - 14*3"}'), error_reply(500),
               tool_reply("submit", '{"answer": 8}', prompt_tokens=200)]
    with FakeOpenAIServer(replies) as server:
        proc = subprocess.run([sys.executable, str(ROOT / "examples" / "openai_agent.py"), "--model", "m",
                               "--base-url", server.base_url, "--out", str(tmp_path), "--episodes", "1"],
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (path,) = tmp_path.glob("*.msgpack.zst")
    ep = open_episode(path)
    assert ep.summary["outcome"] == "passed" and ep.summary["model"]["total_tokens"] == 110 + 210
    assert [a["status"] for a in ep[1].note["model_call"]["attempts"]] == [500]
    assert "passed" in proc.stdout


def test_openai_is_imported_only_by_the_agent():
    code = ("import sys, trajrec.recorder, trajrec.recorder.model_call, trajrec.openai_agent\n"
            "from trajrec.cli import build_parser\n"
            "build_parser().parse_args(['record', 'x', '--out', 'y', '--agent', 'openai', '--model', 'm'])\n"
            "print('openai' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_missing_openai_names_the_install(tmp_path):
    code = ("import sys; sys.modules['openai'] = None  # as if not installed\n"
            "from trajrec.cli import main\n"
            f"sys.exit(main(['record', 'trajrec/MathCalc-v0', '--agent', 'openai', '--model', 'm', '--out', {str(tmp_path)!r}]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert out.stderr.strip().splitlines()[-1] == ("trajrec record: error: the openai agent needs openai, which is not "
                                                    "installed: pip install 'trajrec[openai]'")


def test_a_timeout_is_a_failed_attempt_then_retried(tmp_path, capsys):
    slow = {**tool_reply("calc", '{"expr": "1"}'), "_delay": 1.5}
    with FakeOpenAIServer([slow, tool_reply("submit", '{"answer": 8}')]) as server:
        code, _, err = run_cli(capsys, "record", "trajrec/MathCalc-v0", "--agent", "openai", "--model", "m",
                               "--base-url", server.base_url, "--request-timeout", "0.3", "--episodes", "1",
                               "--out", str(tmp_path))
    assert code == 0, err
    (path,) = tmp_path.glob("*.msgpack.zst")
    ep = open_episode(path)
    [attempt] = ep[0].note["model_call"]["attempts"]
    assert attempt["error"] == "timeout" and 0.3 <= attempt["latency"] < 1.5
    assert ep.summary["outcome"] == "passed" and ep.summary["model"]["failed_attempts"] == 1
