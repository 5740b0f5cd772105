"""``chat`` as trainers read it: loaded by ``datasets`` and rendered through real chat templates.

The templates in ``chat_templates/`` are Qwen2.5, Llama-3.1 and Qwen3 tool-calling templates as shipped inside the
TRL wheel (``trl/chat_templates/``, Apache-2.0), kept here as fixtures. They are rendered with jinja2 the way
``transformers``' ``apply_chat_template`` does (sandboxed, ``trim_blocks``/``lstrip_blocks``, its ``tojson``), so
the default suite needs neither transformers nor a tokenizer; the heavy tests render through transformers itself.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from trajrec.replay.exports import ExportOptions, export

TEMPLATES = Path(__file__).parent / "chat_templates"
TEMPLATE_NAMES = ("qwen2_5", "llama3_1", "qwen3")


def render(name: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> str:
    """A chat template rendered as transformers renders it (``transformers.utils.chat_template_utils``)."""
    jinja2 = pytest.importorskip("jinja2")
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
               sort_keys: bool = False) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.datetime(2026, 1, 1).strftime(fmt)
    template = env.from_string((TEMPLATES / f"{name}.jinja").read_text())
    return template.render(messages=messages, tools=tools or None, add_generation_prompt=False,
                           bos_token="<s>", eos_token="</s>")


def load(path: Path, cache: Path) -> Any:
    datasets = pytest.importorskip("datasets")
    return datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(cache))


def calls(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [tc["function"] for m in messages for tc in (m.get("tool_calls") or ())]


@pytest.fixture
def chat_rows(builtin_run: Path, tmp_path: Path) -> Any:
    export([builtin_run], "chat", tmp_path / "chat.jsonl")
    return load(tmp_path / "chat.jsonl", tmp_path / "hf")


def test_tools_are_exactly_the_envs_tools(chat_rows: Any) -> None:
    import trajrec.envs  # noqa: F401
    import gymnasium as gym

    declared = {}
    for env_id in ("trajrec/MathCalc-v0", "trajrec/Shell-v0", "trajrec/SupportTicket-v0"):
        declared[env_id] = [s.name for s in gym.make(env_id).unwrapped.tool_specs]
    seen_text_turns = 0
    for row in chat_rows:
        env_id = row["trajrec"]["env_id"]
        names = [t["function"]["name"] for t in row["tools"]]
        assert names == declared[env_id]
        used = {c["name"] for c in calls(row["messages"])}
        assert used <= set(names), f"{env_id} calls a tool it does not have: {used - set(names)}"
        for m in row["messages"]:
            if m["role"] == "assistant" and not m.get("tool_calls"):
                seen_text_turns += 1  # malformed or unknown-tool actions: assistant text, never an invented call
    assert "shell" not in declared["trajrec/MathCalc-v0"] and seen_text_turns > 0


def test_arguments_are_objects_and_messages_follow_the_conversational_shape(chat_rows: Any) -> None:
    assert set(chat_rows.column_names) == {"messages", "tools", "trajrec"}  # no top-level labels
    for row in chat_rows:
        msgs = row["messages"]
        assert msgs[0]["role"] == "user"
        for i, m in enumerate(msgs):
            if m["role"] == "assistant":
                assert m["weight"] in (0, 1) and isinstance(m["content"], str)
                for tc in m.get("tool_calls") or ():
                    assert isinstance(tc["function"]["arguments"], dict)
                    if i + 1 == len(msgs):
                        continue  # the last action: its answer is trajrec.final_observation
                    nxt = msgs[i + 1]
                    assert (nxt["role"], nxt["tool_call_id"], nxt["name"]) == ("tool", tc["id"],
                                                                               tc["function"]["name"])
                    assert set(nxt) == {"role", "tool_call_id", "name", "content"}
        assert msgs[-1]["role"] == "assistant" and isinstance(row["trajrec"]["final_observation"], str)
        steps = row["trajrec"]["steps"]
        assert [msgs[s["message"]]["weight"] for s in steps] == [s["weight"] for s in steps]
        # weights follow --weights label: 0 for failed or -1-labeled steps
        assert [s["weight"] for s in steps] == [int(not s["failed"] and s["rating"] != -1) for s in steps]


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_templates_render_arguments_once_unescaped(chat_rows: Any, template: str) -> None:
    rendered_calls = 0
    for row in chat_rows:
        msgs, tools = row["messages"], row["tools"]
        text = render(template, msgs, tools)
        for fn in calls(msgs):
            args = json.dumps(fn["arguments"], ensure_ascii=False)
            same = sum(1 for c in calls(msgs) if c["arguments"] == fn["arguments"])
            # Qwen writes the call as {"name": ..., "arguments": ARGS}, Llama-3.1 as {"name": ..., "parameters": ARGS}
            once = text.count(f'"arguments": {args}') + text.count(f'"parameters": {args}')
            assert once == same, (template, args)
            if fn["arguments"]:
                escaped = json.dumps(args, ensure_ascii=False)[1:-1]
                assert escaped not in text, f"{template} double-encoded {args}"
            rendered_calls += 1
        for t in tools:
            assert t["function"]["name"] in text
        if "trajrec/Shell-v0" != row["trajrec"]["env_id"]:
            assert '"name": "shell"' not in text
    assert rendered_calls > 20


def test_string_arguments_are_for_openai_files_and_double_encode_in_hf_templates(builtin_run: Path,
                                                                                tmp_path: Path) -> None:
    # The contrast that makes the object default necessary: the same rows with --tool-arguments string render
    # escaped JSON in Qwen2.5 (the template json-encodes a string once more).
    export([builtin_run], "chat", tmp_path / "s.jsonl", options=ExportOptions(tool_arguments="string"))
    rows = load(tmp_path / "s.jsonl", tmp_path / "hf")
    row = next(r for r in rows if calls(r["messages"]))
    fn = calls(row["messages"])[0]
    assert isinstance(fn["arguments"], str)
    text = render("qwen2_5", row["messages"], row["tools"])
    assert json.dumps(fn["arguments"]) in text  # escaped quotes: what a model trained on it would learn to emit


def test_weight_policies(builtin_run: Path, tmp_path: Path) -> None:
    got = {}
    for policy in ("label", "positive", "failures", "all"):
        export([builtin_run], "chat", tmp_path / f"{policy}.jsonl", options=ExportOptions(weights=policy))
        rows = [json.loads(line) for line in (tmp_path / f"{policy}.jsonl").read_text().splitlines()]
        got[policy] = [(s["weight"], s["failed"], s["rating"]) for r in rows for s in r["trajrec"]["steps"]]
    assert all(w == 1 for w, _, _ in got["all"])
    assert all(w == (0 if failed else 1) for w, failed, _ in got["failures"])
    assert all(w == (1 if r == 1 else 0) for w, _, r in got["positive"])
    assert any(w == 0 for w, _, _ in got["label"]) and any(w == 1 for w, _, _ in got["label"])
