"""The openai agent and the example loop against a real local HTTP server: a 200 reply whose body is not JSON is a
retried ``malformed`` attempt; the env's answer to a text action is sent back to the model (the record and the
requests agree); the example records an outage (and a timeout) as the CLI does; Ctrl-C while waiting on the model
keeps the in-flight call (a real ``trajrec record`` subprocess gets SIGINT)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer, closed_port, error_reply, raw_reply, text_reply, tool_reply

from trajrec.cli import main
from trajrec.recorder import open_episode
from trajrec.recorder.model_call import conversation

pytest.importorskip("openai")

ROOT = Path(__file__).resolve().parents[2]
CUT_OFF = raw_reply(b'{"choices": [{"message": "oops"')  # a 200 whose JSON body was cut short


def record(capsys, base_url: str, out, *extra: str) -> tuple[int, str]:
    code = main(["record", "trajrec/MathCalc-v0", "--agent", "openai", "--model", "m", "--base-url", base_url,
                 "--episodes", "1", "--out", str(out), *extra])
    return code, capsys.readouterr().err



def test_a_200_reply_that_is_not_json_is_retried_then_ends_as_an_agent_error(tmp_path, capsys):
    with FakeOpenAIServer([CUT_OFF] * 2) as server:
        code, err = record(capsys, server.base_url, tmp_path, "--retries", "1")
    assert code == 1 and len(server.requests) == 2, err  # retried once, as an HTTP error is
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"trajrec record: error: the model server at {server.base_url} failed 2 attempts"), last
    assert "malformed: the reply is not a chat completion" in last and "--resume" in last
    (path,) = tmp_path.glob("*.msgpack.zst")
    s = open_episode(path).summary
    assert s["outcome"] == "error"
    call = s["agent_error"]["model_call"]
    assert call["error"]["error"] == "malformed" and [a["error"] for a in call["attempts"]] == ["malformed"]
    assert (s["model"]["failed_calls"], s["model"]["failed_attempts"]) == (1, 2)


def test_the_env_answer_to_a_text_action_is_sent_to_the_model(tmp_path, capsys):
    # Three replies without a tool call: after two reminders the third reply's text is the action; the env's
    # answer to it must reach the model, as a user message, before the next call.
    script = [text_reply("hmm one"), text_reply("hmm two"), text_reply("hmm three"),
              tool_reply("submit", '{"answer": 8}')]
    with FakeOpenAIServer(script) as server:
        code, err = record(capsys, server.base_url, tmp_path)
    assert code == 0, err
    (path,) = tmp_path.glob("*.msgpack.zst")
    ep = open_episode(path)
    assert ep[0].action == "hmm three" and ep[0].observation.startswith("error:")
    last_sent = server.requests[-1]["body"]["messages"]
    assert last_sent[-2:] == [{"role": "assistant", "content": "hmm three"},
                              {"role": "user", "content": ep[0].observation}]
    # The record and the wire agree: the conversation rebuilt from the notes is what the server got last.
    rebuilt = conversation(st.note for st in ep)
    assert [_plain(m) for m in rebuilt] == [_plain(m) for m in last_sent]


def _plain(message: dict) -> dict:
    return {k: v for k, v in message.items() if v is not None}


def _example(base_url: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "examples" / "openai_agent.py"), "--model", "m",
                           "--base-url", base_url, "--out", str(out), "--episodes", "1", *extra],
                          capture_output=True, text=True, timeout=120)


def test_the_example_records_an_outage_as_an_agent_error(tmp_path):
    proc = _example(f"http://127.0.0.1:{closed_port()}/v1", tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "failed 4 attempts" in proc.stderr and "outcome error" in proc.stderr
    (path,) = tmp_path.glob("*.msgpack.zst")
    s = open_episode(path).summary
    assert s["outcome"] == "error" and s["error"].startswith("the agent failed: ")
    call = s["agent_error"]["model_call"]
    assert call["error"]["error"] == "connection" and len(call["attempts"]) == 3
    assert (s["model"]["calls"], s["model"]["failed_calls"], s["model"]["failed_attempts"]) == (1, 1, 4)


def test_the_example_retries_a_cut_off_reply_and_names_a_timeout(tmp_path):
    slow = {**tool_reply("calc", '{"expr": "1"}'), "_delay": 1.5}
    with FakeOpenAIServer([CUT_OFF, slow, tool_reply("submit", '{"answer": 8}')]) as server:
        proc = _example(server.base_url, tmp_path, "--request-timeout", "0.3")
    assert proc.returncode == 0, proc.stderr
    (path,) = tmp_path.glob("*.msgpack.zst")
    ep = open_episode(path)
    assert [a["error"] for a in ep[0].note["model_call"]["attempts"]] == ["malformed", "timeout"]
    assert ep.summary["outcome"] == "passed"


def _sigint_default() -> None:
    """In the child: Ctrl-C as a terminal's script gets it. A suite run as a background job (`cmd &` without job
    control, as CI may run it) starts with SIGINT ignored, which every child inherits; a plain Python script then
    installs no KeyboardInterrupt handler and rightly runs on (`trajrec record` installs its own)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _ctrl_c_while_waiting(proc: subprocess.Popen[str], server: FakeOpenAIServer, requests: int, what: str) -> str:
    """Ctrl-C to ``proc``'s process group once its ``requests``-th request hangs on the server; its stderr."""
    deadline = time.monotonic() + 60  # a guard against a hang, not a measurement
    while len(server.requests) < requests:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the hanging request was never sent"
        time.sleep(0.05)
    time.sleep(0.5)  # waiting on the model now
    os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.communicate(timeout=60)[1]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"Ctrl-C did not stop {what}")


@pytest.mark.skipif(sys.platform == "win32", reason="process groups and SIGINT are POSIX")
def test_ctrl_c_while_waiting_on_the_model_keeps_the_call(tmp_path):
    # Step 0 is answered; the next call gets a 500, then its retry hangs; Ctrl-C arrives during that wait.
    script = [tool_reply("calc", '{"expr": "50 - 14*3"}'), error_reply(500),
              {**tool_reply("submit", '{"answer": 8}'), "_delay": 30}]
    out = tmp_path / "run"
    with FakeOpenAIServer(script) as server:
        proc = subprocess.Popen([sys.executable, "-m", "trajrec", "record", "trajrec/MathCalc-v0", "--agent",
                                 "openai", "--model", "m", "--base-url", server.base_url, "--episodes", "1",
                                 "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        err = _ctrl_c_while_waiting(proc, server, 3, "`trajrec record`")
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("trajrec record: interrupted"), err
    (path,) = out.glob("*.msgpack.zst")
    ep = open_episode(path)
    s = ep.summary
    assert len(ep) == 1 and s["outcome"] == "stopped"
    stopped = s["agent_error"]
    assert stopped["interrupted"] is True
    call = stopped["model_call"]
    assert [a["status"] for a in call["attempts"]] == [500]
    assert call["error"]["error"] == "interrupted" and call["error"]["latency"] >= 0.5
    # The totals count the step's call and the interrupted one, its 500 and its wait.
    assert (s["model"]["calls"], s["model"]["failed_calls"], s["model"]["failed_attempts"]) == (2, 1, 2)
    assert s["model"]["latency"] >= call["error"]["latency"] + call["attempts"][0]["latency"]
    assert s["end_time"] - ep[0].time >= 0.5  # the stop time, not the last step's
    shown = subprocess.run([sys.executable, "-m", "trajrec", "show", str(path)], capture_output=True, text=True,
                           timeout=120)
    assert "stopped   stopped while the agent waited on its model" in shown.stdout, shown.stdout
    assert "model     2 calls (2 failed attempts)" in shown.stdout, shown.stdout


OWN_LOOP = """
import sys
import gymnasium as gym
import trajrec.envs
from trajrec import Recorder
from trajrec.envs.runner import run_episode
from trajrec.openai_agent import OpenAIAgentConfig, OpenAIToolAgent

agent = OpenAIToolAgent(OpenAIAgentConfig(model="m", base_url=sys.argv[1], backoff=0.01))
with Recorder(gym.make("trajrec/MathCalc-v0"), sys.argv[2]) as env:
    run_episode(env, agent, seed=0)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a process group is POSIX")
def test_ctrl_c_in_your_own_with_recorder_loop_keeps_the_call(tmp_path):
    script = [error_reply(503), {**tool_reply("submit", '{"answer": 8}'), "_delay": 30}]
    (tmp_path / "loop.py").write_text(OWN_LOOP)
    out = tmp_path / "run"
    with FakeOpenAIServer(script) as server:
        proc = subprocess.Popen([sys.executable, str(tmp_path / "loop.py"), server.base_url, str(out)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                                preexec_fn=_sigint_default)
        err = _ctrl_c_while_waiting(proc, server, 2, "the loop")
    assert "KeyboardInterrupt" in err  # your loop's own stop goes on as it was
    (path,) = out.glob("*.msgpack.zst")
    s = open_episode(path).summary
    assert s["outcome"] == "stopped" and s["agent_error"]["interrupted"] is True
    call = s["agent_error"]["model_call"]
    assert [a["status"] for a in call["attempts"]] == [503] and call["error"]["error"] == "interrupted"
    assert (s["model"]["failed_calls"], s["model"]["failed_attempts"]) == (1, 2)
