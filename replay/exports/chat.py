"""``chat``: OpenAI-style messages with tool calls, one row per episode, with per-step labels.

messages: an optional system message, the task as the user message, then per step an assistant message
(``content`` = the agent's thought, ``tool_calls`` = one function call ``call_<step>``) and a tool message
(``tool_call_id``, ``name``, ``content`` = the observation, ``error`` = the step failed; a step whose env raised
has ``content`` "error: <kind>: <message>"). JSON tool call actions keep their tool name and arguments; a command
line becomes a ``shell`` call ``{"command": ...}``; any other action an ``act`` call ``{"action": ...}``.
``tools``: the env's tool schemas from the reset info, plus ``shell``/``act`` when used; null when unknown.
``labels``: one entry per labeled step: step, message (index of its assistant message), judge, kind, origin,
value, rating, label (``--label-map``), rationale, tags.
"""

from __future__ import annotations

from typing import Any, Iterable

from .base import EpisodeView, JsonlFormat
from ..labels import rating
from .choice import map_label, origin
from .encode import ACT_TOOL, SHELL_TOOL, text_of, tool_call_json


def _tool_names(tools: list[Any]) -> set[str]:
    names = set()
    for t in tools:
        if isinstance(t, dict):
            fn = t["function"] if isinstance(t.get("function"), dict) else t
            if isinstance(fn.get("name"), str):
                names.add(fn["name"])
    return names


class ChatFormat(JsonlFormat):
    name = "chat"

    def rows(self, view: EpisodeView) -> tuple[Iterable[dict[str, Any]], int]:
        label_map = self.options.label_map
        messages: list[dict[str, Any]] = []
        if self.options.system:
            messages.append({"role": "system", "content": self.options.system})
        messages.append({"role": "user", "content": view.prompt()})
        labels: list[dict[str, Any]] = []
        synthetic: set[str] = set()
        n = 0
        for rec in view.steps():
            i = rec["i"]
            name, arguments, made_up = tool_call_json(rec.get("action"))
            if made_up:
                synthetic.add(name)
            call_id = f"call_{i}"
            chosen = view.choose(i, mapped=False)
            if chosen is not None:
                labels.append({
                    "step": i, "message": len(messages), "judge": chosen.judge, "kind": chosen.kind,
                    "origin": origin(chosen), "value": chosen.value, "rating": rating(chosen.value),
                    "label": map_label(chosen.value, label_map), "rationale": chosen.rationale,
                    "tags": list(chosen.tags),
                })
            messages.append({
                "role": "assistant",
                "content": view.thought(rec) or "",
                "tool_calls": [{"id": call_id, "type": "function",
                                "function": {"name": name, "arguments": arguments}}],
            })
            failure = rec.get("failure")
            obs = rec.get("observation")
            content = text_of(obs)
            if failure and (obs is None or not content):
                content = f"error: {failure.get('kind')}: {failure.get('message')}"
            messages.append({"role": "tool", "tool_call_id": call_id, "name": name, "content": content,
                             "error": bool(failure)})
            n += 1
        tools = view.tools()
        if synthetic:
            known = _tool_names(tools or [])
            extra = [t for name, t in (("shell", SHELL_TOOL), ("act", ACT_TOOL))
                     if name in synthetic and name not in known]
            tools = [*(tools or []), *extra]
        task = view.task
        row = {
            "episode_id": view.episode_id,
            "env_id": task.get("env_id"),
            "task_id": task.get("id"),
            "outcome": view.ep.summary.get("outcome"),
            "messages": messages,
            "tools": tools,
            "labels": labels,
        }
        return [row], n
