"""A model server that is down or failing is the agent's failure, not the env's: the openai agent's call fails after
its retries, the env is not stepped with a made-up action, and the episode ends with outcome ``error`` and the failed
call in the summary's ``agent_error`` (env failures stay at zero). Real HTTP: a local server answering 500, and a
port nobody listens on (connection refused)."""

from __future__ import annotations

import re

import pytest
from fake_openai_server import FakeOpenAIServer, closed_port, error_reply, raw_reply, tool_reply

from trajrec.cli import main
from trajrec.recorder import open_episode, read_index

pytest.importorskip("openai")


def record(capsys, base_url: str, out, *extra: str) -> tuple[int, str]:
    code = main(["record", "trajrec/MathCalc-v0", "--agent", "openai", "--model", "m", "--base-url", base_url,
                 "--retries", "1", "--episodes", "1", "--out", str(out), *extra])
    return code, capsys.readouterr().err



def test_a_server_answering_500_ends_the_episode_as_an_agent_error(tmp_path, capsys):
    with FakeOpenAIServer([error_reply(500)] * 2) as server:
        code, err = record(capsys, server.base_url, tmp_path)
    assert code == 1 and len(server.requests) == 2  # one call, retried once; no second call
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"trajrec record: error: the model server at {server.base_url} failed 2 attempts")
    assert "outcome error" in last and "--resume" in last
    (path,) = tmp_path.glob("*.msgpack.zst")
    ep = open_episode(path)
    assert len(ep) == 0  # the env was not stepped
    s = ep.summary
    assert s["outcome"] == "error" and s["failures"] == 0 and s["error"].startswith("the agent failed: ")
    call = s["agent_error"]["model_call"]
    assert call["error"]["status"] == 500 and [a["status"] for a in call["attempts"]] == [500]
    assert (s["model"]["calls"], s["model"]["failed_calls"], s["model"]["failed_attempts"]) == (1, 1, 2)
    # The error line, the summary and `show` count the same attempts (the last, failed one included).
    said = int(re.search(r"failed (\d+) attempts", last).group(1))
    assert said == s["model"]["failed_attempts"] == len(server.requests)
    capsys.readouterr()
    assert main(["show", str(path)]) == 0
    assert f"model     1 call ({said} failed attempts)" in capsys.readouterr().out


def test_connection_refused_after_a_good_step(tmp_path, capsys):
    # A real server for the first call, then the server is gone: the second call cannot connect.
    with FakeOpenAIServer([tool_reply("calc", '{"expr": "50 - 14*3"}')]) as server:
        port = server.base_url.split(":")[2].split("/")[0]
        import trajrec.openai_agent as oa

        done = []
        real = oa.OpenAIToolAgent._complete

        def complete_then_stop(self):  # shut the real server after its one answer
            call = real(self)
            if not done:
                done.append(1)
                server.__exit__(None, None, None)
            return call

        oa.OpenAIToolAgent._complete = complete_then_stop
        try:
            code, err = record(capsys, server.base_url, tmp_path)
        finally:
            oa.OpenAIToolAgent._complete = real
    assert code == 1, err
    (path,) = tmp_path.glob("*.msgpack.zst")
    ep = open_episode(path)
    assert len(ep) == 1 and ep[0].failure is None and ep[0].observation == "50 - 14*3 = 8"
    s = ep.summary
    assert s["outcome"] == "error" and s["failures"] == 0
    assert s["agent_error"]["model_call"]["error"]["error"] == "connection"
    assert f":{port}/" in s["agent_error"]["message"]


def test_nothing_listening_then_resume_records_the_seed_again(tmp_path, capsys):
    code, err = record(capsys, f"http://127.0.0.1:{closed_port()}/v1", tmp_path)
    assert code == 1, err
    (path,) = tmp_path.glob("*.msgpack.zst")
    index = read_index(path)
    assert index["steps"] == 0 and index["summary"]["outcome"] == "error"
    assert index["summary"]["agent_error"]["model_call"]["error"]["error"] == "connection"
    with FakeOpenAIServer([tool_reply("submit", '{"answer": 8}')]) as server:
        code, err = record(capsys, server.base_url, tmp_path, "--resume")
    assert code == 0, err
    (again,) = tmp_path.glob("*.msgpack.zst")
    assert open_episode(again).summary["outcome"] == "passed"
    assert [p.name for p in tmp_path.glob("*.unfinished")] == [path.name + ".unfinished"]


MALFORMED = {
    "no choices": raw_reply(b'{"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []}'),
    "an HTML page": raw_reply(b"<html><body>sign in</body></html>", "text/html"),
    "a message that is no object": raw_reply(b'{"choices": [{"message": 5}]}'),
}


@pytest.mark.parametrize("what", list(MALFORMED))
def test_a_200_reply_that_is_no_chat_completion_is_retried_then_ends_as_an_agent_error(tmp_path, capsys, what):
    with FakeOpenAIServer([MALFORMED[what]] * 2) as server:
        code, err = record(capsys, server.base_url, tmp_path)
    assert code == 1 and len(server.requests) == 2, err  # retried once, as an HTTP error is; no traceback
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"trajrec record: error: the model server at {server.base_url} failed 2 attempts"), last
    assert "malformed: the reply is not a chat completion" in last
    (path,) = tmp_path.glob("*.msgpack.zst")
    s = open_episode(path).summary
    assert s["outcome"] == "error" and s["agent_error"]["model_call"]["error"]["error"] == "malformed"


@pytest.mark.parametrize("what", ["no choices", "cut off"])
def test_a_malformed_reply_then_a_good_one_records_the_step(tmp_path, capsys, what):
    bad = MALFORMED[what] if what in MALFORMED else raw_reply(b'{"choices": [{"message": "oops"')  # a body cut short
    script = [bad, tool_reply("calc", '{"expr": "50 - 14*3"}'),
              tool_reply("submit", '{"answer": 8}')]
    with FakeOpenAIServer(script) as server:
        code, err = record(capsys, server.base_url, tmp_path)
    assert code == 0, err
    (path,) = tmp_path.glob("*.msgpack.zst")
    ep = open_episode(path)
    assert [a["error"] for a in ep[0].note["model_call"]["attempts"]] == ["malformed"]
    assert ep.summary["outcome"] == "passed"


def test_an_outage_with_two_workers_says_the_other_episode_was_cut_short(tmp_path, capsys):
    """One worker's call fails for good while the other waits on a slow reply: the command stops both, and its
    error line counts the other episode cut short, as a Ctrl-C's line does (FINDINGS24 #2: it named only the
    failed one). The count is read back from the files, whatever the order the workers met the server in."""
    slow = {**tool_reply("calc", '{"expr": "50 - 14*3"}'), "_delay": 5}
    with FakeOpenAIServer([slow] + [error_reply(500)] * 8) as server:
        code, err = record(capsys, server.base_url, tmp_path, "--episodes", "2", "--workers", "2")
    assert code == 1
    outcomes = sorted(read_index(p)["summary"]["outcome"] for p in tmp_path.glob("*.msgpack.zst"))
    cut = sum(1 for o in outcomes if o != "error")
    assert "error" in outcomes
    line = err.strip().splitlines()[-1]
    assert "the episode of seed" in line and "--resume" in line
    if cut:
        assert f"({cut} other episode{'s' if cut != 1 else ''} cut short by the stop" in line
    else:
        assert "cut short" not in line
