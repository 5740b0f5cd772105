"""A step is exported as the turn the agent took (FINDINGS19 #1, #2, #7): a message action ``{"message": text}``
is its text, once, never the wrapper's JSON; a list of calls is one assistant turn with several ``tool_calls`` and
one tool message per call, answering by id; the episode's system prompt (the reset info's ``system``) starts the
conversation. Recorded with the real Recorder and imported from real ATIF and mini-swe-agent files, exported with
the real formats, each through both the text and the dict path of ``chat`` and ``kto``."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

from trajrec.importers import import_paths
from trajrec.recorder import Recorder
from trajrec.replay.exports import ExportOptions, base, chat, export, prefs

TOOLS = [{"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
         for name in ("put", "cat")]
SYSTEM = "You are a careful agent."
MINI_V1 = Path(__file__).resolve().parents[1] / "data" / "mini-swe-agent" / "test_output.traj.json"


class TurnEnv(gym.Env):
    """Declares two tools and (unless ``system`` is None) a system prompt; answers a list of calls with one result
    per call, in the reverse order (results pair by id, not by place), and ends at step ``ends``."""

    metadata = {"render_modes": []}

    def __init__(self, system: str | None, ends: int) -> None:
        self.observation_space = gym.spaces.Text(100)
        self.action_space = gym.spaces.Text(100)
        self.system, self.ends = system, ends

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.t = 0
        info: dict[str, Any] = {"task": {"id": "t1", "text": "Store x.", "split": "train"}, "tools": TOOLS}
        if self.system is not None:
            info["system"] = self.system
        return "Store x.", info

    def step(self, action: Any):
        self.t += 1
        if isinstance(action, list):
            obs: Any = [{"tool_call_id": a["id"], "content": f"did {a['tool']}"} for a in reversed(action)]
        else:
            obs = f"seen {self.t}"
        return obs, 0.0, self.t >= self.ends, False, {}


PARALLEL = [{"tool": "put", "args": {"x": 1}, "id": "a"}, {"tool": "cat", "args": {"path": "x"}, "id": "b"}]


def _record(run: Path) -> None:
    # long: calls, a message said as the thought, a message after a thought, an empty one, a call; passed.
    # middle: the same task; its last step has several calls; failed (dpo pairs the two).
    # short: no system prompt, no verdict.
    for system, turns, verdict in (
            (SYSTEM, [("Two at once.", PARALLEL), ("ANSWER: 3", {"message": "ANSWER: 3"}),
                      ("Checking.", {"message": "All stored."}), ("", {"message": ""}),
                      ("Read it.", {"tool": "cat", "args": {"path": "x"}})], True),
            (SYSTEM, [("ANSWER: 3", {"message": "ANSWER: 3"}), ("Two at once.", PARALLEL)], False),
            (None, [("Hi.", {"message": "Hi."})], None)):
        env = Recorder(TurnEnv(system, len(turns)), run)
        env.reset(seed=0)
        for thought, action in turns:
            env.note(thought=thought)
            env.step(action)
        if verdict is not None:
            env.check(verdict, judge="env@1", target="episode")
        env.close()


@pytest.fixture(scope="module")
def turn_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("turns") / "run"
    _record(run)
    return run


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _both_paths(run: Path, fmt: str, out: Path, monkeypatch: pytest.MonkeyPatch, **opts: Any) -> list[dict[str, Any]]:
    """The rows of ``fmt``, checked to be the same bytes through the text path and the dict path."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export([run], fmt, out / f"{fmt}.text.jsonl", options=ExportOptions(**opts))
        with monkeypatch.context() as m:
            m.setattr(chat.ChatFormat, "lines", base.JsonlFormat.lines)
            m.setattr(prefs.KtoFormat, "lines", base.JsonlFormat.lines)
            export([run], fmt, out / f"{fmt}.dicts.jsonl", options=ExportOptions(**opts))
    text = (out / f"{fmt}.text.jsonl").read_bytes()
    assert text == (out / f"{fmt}.dicts.jsonl").read_bytes()
    return _rows(out / f"{fmt}.text.jsonl")


def _by_length(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The rows, longest ``key`` first (the episodes above have 5, 2 and 1 steps)."""
    return sorted(rows, key=lambda r: -len(r[key]))


@pytest.mark.parametrize("arguments", ["object", "string"])
def test_chat_writes_messages_once_and_several_calls_as_tool_calls(turn_run: Path, tmp_path: Path, arguments: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    long, middle, short = _by_length(
        _both_paths(turn_run, "chat", tmp_path, monkeypatch, tool_arguments=arguments), "messages")
    msgs = long["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "tool", "tool", "assistant", "user",
                                         "assistant", "user", "assistant", "user", "assistant"]
    assert msgs[0] == {"role": "system", "content": SYSTEM}
    calls = msgs[2]["tool_calls"]
    assert msgs[2]["content"] == "Two at once."
    assert [c["id"] for c in calls] == ["call_0_0", "call_0_1"]
    assert [c["function"]["name"] for c in calls] == ["put", "cat"]
    args = [c["function"]["arguments"] for c in calls]
    assert (args if arguments == "object" else [json.loads(a) for a in args]) == [{"x": 1}, {"path": "x"}]
    # each result answers its own call (the env answered in the reverse order)
    assert [(m["tool_call_id"], m["name"], m["content"]) for m in msgs[3:5]] == [
        ("call_0_0", "put", "did put"), ("call_0_1", "cat", "did cat")]
    assert msgs[5]["content"] == "ANSWER: 3"  # the thought is the message: said once
    assert msgs[7]["content"] == "Checking.\n\nAll stored."
    assert msgs[9]["content"] == ""  # an empty message with no thought
    assert not any("message" in m["content"] and "{" in m["content"] for m in msgs)
    assert msgs[-1]["tool_calls"][0]["id"] == "call_4"  # a single call as before
    assert long["trajrec"]["final_observation"] == "seen 5"
    assert [s["tool"] for s in long["trajrec"]["steps"]] == ["put", None, None, None, "cat"]
    assert [s["message"] for s in long["trajrec"]["steps"]] == [2, 5, 7, 9, 11]
    # a last turn with several calls ends the conversation, its answers (all of them) the final observation
    msgs = middle["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant"]
    assert msgs[2]["content"] == "ANSWER: 3"
    assert len(msgs[-1]["tool_calls"]) == 2
    final = json.loads(middle["trajrec"]["final_observation"])
    assert {r["tool_call_id"]: r["content"] for r in final} == {"a": "did put", "b": "did cat"}
    # no system prompt recorded: no system message
    assert short["messages"] == [{"role": "user", "content": "Store x."},
                                 {"role": "assistant", "content": "Hi.", "weight": 1}]


def test_system_option_replaces_or_leaves_out_the_recorded_system_prompt(turn_run: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _both_paths(turn_run, "chat", tmp_path, monkeypatch, system="Given.")
    assert [r["messages"][0]["content"] for r in rows] == ["Given."] * 3
    assert all(sum(m["role"] == "system" for m in r["messages"]) == 1 for r in rows)
    rows = _both_paths(turn_run, "kto", tmp_path, monkeypatch, system="")  # none: the recorded one left out
    assert [r["prompt"] for r in rows] == [[{"role": "user", "content": "Store x."}]] * 2


def test_kto_and_dpo_take_the_same_turns(turn_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prompt = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Store x."}]
    long, middle = _by_length(_both_paths(turn_run, "kto", tmp_path, monkeypatch), "completion")  # short: no verdict
    assert long["prompt"] == middle["prompt"] == prompt
    assert [m["role"] for m in long["completion"]][:4] == ["assistant", "tool", "tool", "assistant"]
    assert long["completion"][3] == {"role": "assistant", "content": "ANSWER: 3"}
    assert len(long["completion"][0]["tool_calls"]) == 2 and "weight" not in long["completion"][0]
    assert (long["label"], middle["label"]) == (True, False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export([turn_run], "dpo", tmp_path / "dpo.jsonl")
    [pair] = _rows(tmp_path / "dpo.jsonl")
    assert pair["prompt"] == prompt
    assert pair["chosen"] == long["completion"] and pair["rejected"] == middle["completion"]


def test_trl_stepwise_completions_say_a_message_once(turn_run: Path, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export([turn_run], "trl-stepwise", tmp_path / "prm.jsonl", options=ExportOptions(unlabeled="false"))
    long, middle, short = _by_length(_rows(tmp_path / "prm.jsonl"), "completions")
    assert long["prompt"] == middle["prompt"] == f"{SYSTEM}\n\nStore x."
    assert long["completions"][1:4] == ["ANSWER: 3", "Checking. All stored.", ""]
    assert middle["completions"][0] == "ANSWER: 3"
    assert short["prompt"] == "Store x." and short["completions"] == ["Hi."]


def test_an_imported_atif_turn_with_two_calls_and_a_final_message(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    doc = {"schema_version": "ATIF-v1.5", "session_id": "s1",
           "agent": {"name": "terminus", "version": "2", "tool_definitions": [
               {"type": "function", "function": {"name": "bash", "parameters": {"type": "object"}}}]},
           "steps": [{"step_id": 1, "source": "user", "message": "Create hello.txt"},
                     {"step_id": 2, "source": "agent", "message": "Create the file.", "tool_calls": [
                         {"tool_call_id": "tc1", "function_name": "bash", "arguments": {"command": "echo hi > h"}},
                         {"tool_call_id": "tc2", "function_name": "bash", "arguments": {"command": "cat h"}}],
                      "observation": {"results": [{"source_call_id": "tc2", "content": "hi"},
                                                  {"source_call_id": "tc1", "content": ""}]}},
                     {"step_id": 3, "source": "agent", "message": "Done."}]}
    src = tmp_path / "hello.trajectory.json"
    src.write_text(json.dumps(doc))
    import_paths("atif", [src], tmp_path / "run")
    [row] = _both_paths(tmp_path / "run", "chat", tmp_path, monkeypatch)
    msgs = row["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "tool", "assistant"]
    assert [c["function"]["arguments"]["command"] for c in msgs[1]["tool_calls"]] == ["echo hi > h", "cat h"]
    assert [m["content"] for m in msgs[2:4]] == ["", "hi"]
    assert msgs[-1]["content"] == "Done."
    # trajrec's own round trip: atif export, import, chat: the text turn comes back as it was
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (tmp_path / "atif").mkdir()
        export([tmp_path / "run"], "atif", tmp_path / "atif")
        import_paths("atif", sorted((tmp_path / "atif").glob("*.json")), tmp_path / "back")
        export([tmp_path / "back"], "chat", tmp_path / "back.jsonl")
    [back] = _rows(tmp_path / "back.jsonl")
    assert back["messages"][-1]["content"] == "Done."


def test_an_imported_system_prompt_starts_the_conversation(tmp_path: Path) -> None:
    import_paths("mini-swe-agent", [MINI_V1], tmp_path / "run")
    source_system = json.loads(MINI_V1.read_text())["messages"][0]
    assert source_system["role"] == "system"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export([tmp_path / "run"], "chat", tmp_path / "chat.jsonl")
        export([tmp_path / "run"], "trl-stepwise", tmp_path / "prm.jsonl", options=ExportOptions(unlabeled="false"))
    [row] = _rows(tmp_path / "chat.jsonl")
    assert row["messages"][0] == {"role": "system", "content": source_system["content"]}
    assert row["messages"][1]["role"] == "user" and source_system["content"] not in row["messages"][1]["content"]
    [prm] = _rows(tmp_path / "prm.jsonl")
    assert prm["prompt"].startswith(source_system["content"] + "\n\n")


def test_an_imported_mini_swe_agent_turn_with_two_commands(tmp_path: Path) -> None:
    """mini-swe-agent's several bash calls of one turn (its 1.1 layout): one step whose action is the command
    lines and whose observation is their outputs, in an env whose text tool is ``bash``: two calls, two answers."""
    def call(cid: str, command: str) -> dict[str, Any]:
        return {"id": cid, "type": "function", "function": {"name": "bash", "arguments": json.dumps({"command": command})}}

    doc = {"trajectory_format": "mini-swe-agent-1.1", "info": {"exit_status": "Submitted", "mini_version": "2.0"},
           "messages": [
               {"role": "system", "content": "You are a shell agent."},
               {"role": "user", "content": "List and count."},
               {"role": "assistant", "content": "Both at once.", "tool_calls": [call("c1", "ls"), call("c2", "wc -l a")],
                "extra": {"actions": [{"command": "ls", "tool_call_id": "c1"},
                                      {"command": "wc -l a", "tool_call_id": "c2"}]}},
               {"role": "tool", "tool_call_id": "c1", "content": "a\nb", "extra": {"returncode": 0}},
               {"role": "tool", "tool_call_id": "c2", "content": "3 a", "extra": {"returncode": 0}},
               {"role": "assistant", "content": "Done.", "tool_calls": [call("c3", "echo SUBMIT")],
                "extra": {"actions": [{"command": "echo SUBMIT", "tool_call_id": "c3"}]}},
               {"role": "tool", "tool_call_id": "c3", "content": "", "extra": {"returncode": 0}}]}
    src = tmp_path / "two.traj.json"
    src.write_text(json.dumps(doc))
    import_paths("mini-swe-agent", [src], tmp_path / "run")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export([tmp_path / "run"], "chat", tmp_path / "chat.jsonl")
    [row] = _rows(tmp_path / "chat.jsonl")
    msgs = row["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "tool", "tool", "assistant"]
    assert msgs[0]["content"] == "You are a shell agent."
    assert [(c["function"]["name"], c["function"]["arguments"]) for c in msgs[2]["tool_calls"]] == [
        ("bash", {"command": "ls"}), ("bash", {"command": "wc -l a"})]
    assert [(m["tool_call_id"], m["content"]) for m in msgs[3:5]] == [("call_0_0", "a\nb"), ("call_0_1", "3 a")]


def test_a_model_agents_system_prompt_and_text_reply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A native episode of a model agent (what ``trajrec record --agent openai`` records): the system message its
    first model call sent starts the conversation, and a reply with no tool call (the action is the reply text,
    the step's thought the same text) is said once."""
    from trajrec.recorder.model_call import ModelCall

    run = tmp_path / "run"
    env = Recorder(TurnEnv(None, 2), run)
    env.reset(seed=0)
    sent = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Store x."}]
    env.note(model_call=ModelCall(model="m", messages=sent, messages_before=0, tool_calls=[
        {"id": "c1", "name": "put", "arguments": {"x": 1}, "raw_arguments": '{"x": 1}', "error": None}]).to_dict())
    env.step(json.dumps({"name": "put", "arguments": {"x": 1}}))
    env.note(model_call=ModelCall(model="m", content="ANSWER: 3", messages_before=2, messages=[
        {"role": "tool", "tool_call_id": "c1", "content": "seen 1"}]).to_dict())
    env.step("ANSWER: 3")
    env.check(True, judge="env@1", target="episode")
    env.close()
    [row] = _both_paths(run, "chat", tmp_path, monkeypatch)
    assert row["messages"][0] == {"role": "system", "content": "Be brief."}
    assert row["messages"][-1] == {"role": "assistant", "content": "ANSWER: 3", "weight": 1}
    [kto] = _both_paths(run, "kto", tmp_path, monkeypatch)
    assert kto["prompt"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Store x."}]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export([run], "trl-stepwise", tmp_path / "prm.jsonl", options=ExportOptions(unlabeled="false"))
    [prm] = _rows(tmp_path / "prm.jsonl")
    assert prm["prompt"] == "Be brief.\n\nStore x." and prm["completions"][-1] == "ANSWER: 3"


@pytest.mark.parametrize("template", ["qwen2_5", "llama3_1", "qwen3"])
def test_several_calls_render_through_chat_templates(turn_run: Path, tmp_path: Path, template: str) -> None:
    """The turn with two calls renders through real tool-calling templates (the fixtures of
    ``test_chat_for_trainers``) with each call and each result once, and no trajrec wrapper anywhere. Llama-3.1's
    template takes one call per message and says so (docs/EXPORT.md)."""
    from test_chat_for_trainers import render

    jinja2 = pytest.importorskip("jinja2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export([turn_run], "chat", tmp_path / "chat.jsonl")
    long = _by_length(_rows(tmp_path / "chat.jsonl"), "messages")[0]
    if template == "llama3_1":
        with pytest.raises(jinja2.exceptions.TemplateError, match="only supports single tool-calls"):
            render(template, long["messages"], long["tools"])
        return
    text = render(template, long["messages"], long["tools"])
    assert SYSTEM in text
    assert text.count('"path": "x"') == 2  # the parallel cat call and the last step's cat call
    assert text.count('"x": 1') == 1
    assert text.count("did put") == 1 and text.count("did cat") == 1
    assert text.index("did put") < text.index("did cat")  # answered in the calls' order
    assert text.count("ANSWER: 3") == 1 and '"message"' not in text
