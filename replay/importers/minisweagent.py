"""mini-swe-agent ``.traj.json`` files, in their three layouts.

* ``mini-swe-agent-1.1`` (v2.x, ``DefaultAgent.serialize``): ``{"info", "messages", "trajectory_format"}``;
  assistant messages carry ``extra.actions`` (``[{"command", "tool_call_id"}]``), ``extra.cost``,
  ``extra.timestamp`` and the raw ``extra.response``; observations are ``user`` or ``tool`` messages with
  ``extra.returncode``/``timestamp``; a format error is a ``user`` message with ``extra.interrupt_type:
  "FormatError"``; the run ends with an ``exit`` message (``extra.exit_status``, ``submission``).
* ``mini-swe-agent-1`` (v1.x): the same object, hand-formatted ``{"role", "content"}`` messages; the command is
  the fenced ``bash`` block of the assistant text, the return code is in ``<returncode>N</returncode>``.
* the first releases: a bare JSON list of such messages.

Mapping: one step per assistant turn. Several actions of one turn stay in one step (action = list of command
lines, observation = list of outputs, ``note.call_ids`` the original ids). thought = the assistant text; model
call metadata (model, tokens, cost) from ``extra.response``/``extra.cost``; time = the message timestamp,
duration = until the last observation of the turn. Failures: a non-zero return code (``tool_error``), an
exception in the environment, a format error (``format_error``: the turn whose output could not be parsed),
limits (``LimitsExceeded``/``TimeExceeded`` truncate the last step). The exit status is an episode check (judge
``mini-swe-agent:exit_status``). The messages array is streamed, so memory stays flat in the file's size.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

from .base import (ImportedEpisode, ImportedStep, Importer, SourceFile, info_object, open_text, parse_time,
                   read_model_stats, shell_tool, with_episode_usage)
from .jsonstream import ImportFormatError, JsonStream, shown

_BLOCK = re.compile(r"```(?:bash|mswea_bash_command|sh)\s*\n(.*?)\n?```", re.S)
_RC = re.compile(r"<returncode>\s*(-?\d+)\s*</returncode>")
_LIMITS = ("LimitsExceeded", "TimeExceeded")
#: What mini-swe-agent's agent prints to submit (its default config's ``echo`` line; older versions' word first):
#: a trajectory without an exit message whose last command is one of these ended by submitting.
_SUBMIT = ("MINI_SWE_AGENT_FINAL_OUTPUT", "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT")


# mini-swe-agent runs every action as a command line in a shell (a fresh subshell each): exports read an action as a
# call of this one tool (ATIF keeps the model's call ids with it).
_SHELL_TOOL = shell_tool("Run a command line in the agent's shell (mini-swe-agent runs each in a fresh subshell).")

class MiniSweAgentImporter(Importer):
    name = "mini-swe-agent"
    description = "mini-swe-agent .traj.json files (layouts mini-swe-agent-1.1, mini-swe-agent-1 and bare lists)"
    suffixes = (".traj.json",)

    @classmethod
    def detect(cls, path: Path, head: bytes) -> str | None:
        text = head.decode("utf-8", "replace")
        m = re.search(r'"trajectory_format"\s*:\s*"(mini-swe-agent[^"]*)"', text)
        if m:
            return f"trajectory_format {m.group(1)!r}"
        if re.search(r'"mini_version"\s*:', text):
            return "an 'info.mini_version' member (mini-swe-agent)"
        if path.name.endswith(".traj.json") and re.match(r'\s*\[\s*\{\s*"role"', text):
            return "a .traj.json list of chat messages (mini-swe-agent's first layout)"
        if path.name.endswith(".traj.json") and re.match(r'\s*\{\s*"info"', text):
            return "a .traj.json object starting with 'info' (mini-swe-agent)"
        return None

    def read(self, source: SourceFile) -> Iterator[ImportedEpisode]:
        path = source.path
        top: dict[str, Any] = {}
        system = prompt = None
        bare = False
        with open_text(path, self.description) as fh:
            s = JsonStream(fh, path)
            kind = s.kind()
            if kind == "array":
                bare = True
                system, prompt = _first_prompt(s.items())
            elif kind == "object":
                found = False
                for key in s.keys():
                    if key == "messages":
                        found = True
                        system, prompt = _first_prompt(s.items())
                    else:
                        top[key] = s.value()
                if not found:
                    raise ImportFormatError(path, "$.messages", "not a mini-swe-agent trajectory: no 'messages' member")
            else:
                raise ImportFormatError(path, "$", "not a mini-swe-agent trajectory: expected a JSON object or list")
        f = self.fields
        info = info_object(path, top, "exit_status, submission, model_stats, config")
        layout = top.get("trajectory_format") or ("list" if bare else "mini-swe-agent-1")
        config = info.get("config") if isinstance(info.get("config"), dict) else {}
        model_cfg = config.get("model") if isinstance(config.get("model"), dict) else {}
        kwargs = model_cfg.get("model_kwargs") if isinstance(model_cfg.get("model_kwargs"), dict) else {}
        agent = {"name": "mini-swe-agent", "version": info.get("mini_version"), "model": model_cfg.get("model_name"),
                 "sampling": {k: kwargs[k] for k in ("temperature", "top_p", "max_tokens") if k in kwargs} or None,
                 "model_stats": info.get("model_stats"), "config": config or None}
        f.mapped("info.config.model", "provenance.agent.model/sampling")
        f.mapped("info.model_stats", "provenance.agent.model_stats")
        f.mapped("info.mini_version", "provenance.agent.version")
        instance = top.get("instance_id")
        env_cfg = config.get("environment")
        task = {"id": instance or path.name.removesuffix(".gz").removesuffix(".traj.json"), "text": prompt,
                "sandbox": {"type": config.get("environment_type"), "config": env_cfg} if env_cfg else None,
                "verification": ["environment"]}
        f.mapped("messages[role=user][0]", "task.text")
        extra = {f"info.{k}": v for k, v in f.keep_rest("info.", info, ("config", "model_stats", "mini_version",
                                                                          "exit_status", "submission")).items()}
        extra.update(f.keep_rest("", top, ("info", "messages", "trajectory_format", "instance_id")))
        stats, stats_extra = read_model_stats(info.get("model_stats"), f)
        extra.update(stats_extra)
        final: dict[str, Any] = {"exit_status": info.get("exit_status"), "submission": info.get("submission")}

        def steps() -> Iterator[ImportedStep]:
            with open_text(path, self.description) as fh:
                s = JsonStream(fh, path)
                if bare:
                    yield from self._steps(path, "$", s.items(), final)
                    return
                for key in s.keys():
                    if key == "messages":
                        yield from self._steps(path, "$.messages", s.items(), final)

        def checks() -> list[dict[str, Any]]:
            if not final.get("exit_status"):
                return []
            f.mapped("exit_status", "checks[judge=mini-swe-agent:exit_status]")
            return [{"target": "episode", "kind": "environment",
                     "judge": f"mini-swe-agent:exit_status@{agent['version'] or 'unknown'}",
                     "value": final["exit_status"], "rationale": "mini-swe-agent's exit status",
                     "submission": final.get("submission")}]

        yield ImportedEpisode(task=task, agent=agent, reset_observation=prompt,
                              reset_info={"system": system, "layout": layout, **_SHELL_TOOL},
                              steps=with_episode_usage(steps(), stats, agent["model"],
                                                       "info.model_stats"),
                              checks=checks,
                              where="messages", name=str(task["id"]), extra=extra)

    def _steps(self, path: Path, base: str, items: Iterator[tuple[int, Any]],
               final: dict[str, Any]) -> Iterator[ImportedStep]:
        f = self.fields
        turn: dict[str, Any] | None = None
        outputs: list[dict[str, Any]] = []
        seen_prompt = False
        pending: ImportedStep | None = None
        for j, msg in items:
            if not isinstance(msg, dict):
                raise ImportFormatError(path, f"{base}[{j}]", f"expected a message object, found {shown(msg)}")
            role = msg.get("role")
            if not isinstance(role, str):
                raise ImportFormatError(path, f"{base}[{j}].role", f"expected a role name, found {shown(role)}")
            extra = msg.get("extra") if isinstance(msg.get("extra"), dict) else {}
            if role == "system":
                continue
            if role == "user" and not seen_prompt and turn is None:
                seen_prompt = True
                continue
            if role == "assistant" or (role == "user" and extra.get("interrupt_type") == "FormatError"):
                if turn is not None:
                    step = self._make_step(path, turn, outputs)
                    if pending is not None:
                        yield pending
                    pending = step
                if role == "user":  # v2 format error: the rejected turn and the error message in one
                    turn = {"j": j, "msg": {"role": "assistant", "content": _response_text(extra),
                                            "extra": extra}, "format_error": _text(msg.get("content"))}
                    outputs = []
                else:
                    turn, outputs = {"j": j, "msg": msg}, []
                continue
            if role == "exit" or extra.get("exit_status"):
                final["exit_status"] = extra.get("exit_status") or final.get("exit_status")
                final["submission"] = extra.get("submission", final.get("submission"))
                if extra.get("traceback"):
                    final["traceback"] = extra["traceback"]
                f.mapped("messages[role=exit].extra.exit_status", "checks[judge=mini-swe-agent:exit_status]")
                continue
            if turn is not None:
                outputs.append(msg)
        if turn is not None:
            step = self._make_step(path, turn, outputs)
            if pending is not None:
                yield pending
            pending = step
        if pending is not None:
            status = final.get("exit_status") or ""
            if status == "Submitted" or (not status and _submits(pending.action)):
                pending.terminated = True
            elif status in _LIMITS:
                pending.truncated = True
            elif status and final.get("traceback") and pending.failure is None:
                pending.failure = {"kind": "exception", "message": status, "traceback": final.get("traceback")}
            yield pending

    def _make_step(self, path: Path, turn: dict[str, Any], outputs: list[dict[str, Any]]) -> ImportedStep:
        f = self.fields
        msg = turn["msg"]
        extra = msg.get("extra") if isinstance(msg.get("extra"), dict) else {}
        content = _text(msg.get("content"))
        actions = extra.get("actions")
        call_ids: list[Any] = []
        if isinstance(actions, list):
            commands = [a.get("command") if isinstance(a, dict) else a for a in actions]
            call_ids = [a.get("tool_call_id") for a in actions if isinstance(a, dict)]
            f.mapped("messages[assistant].extra.actions", "step.action")
        else:
            commands = [m.group(1) for m in _BLOCK.finditer(content or "")]
            f.mapped("messages[assistant].content (bash block)", "step.action")
        if not any(call_ids) and isinstance(msg.get("tool_calls"), list):
            call_ids = [c.get("id") for c in msg["tool_calls"] if isinstance(c, dict)]
        texts = [_text(o.get("content")) for o in outputs]
        codes: list[Any] = []
        for o, text in zip(outputs, texts):
            oe = o.get("extra") if isinstance(o.get("extra"), dict) else {}
            rc = oe.get("returncode")
            if rc is None and text:
                m = _RC.search(text)
                rc = int(m.group(1)) if m else None
            codes.append(rc)
        note: dict[str, Any] = {"thought": content}
        if call_ids and any(call_ids):
            note["call_ids"] = call_ids
            f.mapped("messages[assistant].tool_calls[].id", "step.note.call_ids")
        if msg.get("tool_calls"):
            note["tool_calls"] = msg["tool_calls"]
        response = extra.get("response") if isinstance(extra.get("response"), dict) else {}
        usage = response.get("usage") if isinstance(response.get("usage"), dict) else None
        if response.get("model"):
            note["model"] = response["model"]
        if usage:
            note["usage"] = usage
            f.mapped("messages[assistant].extra.response.usage", "step.note.usage")
        if "cost" in extra:
            note["cost"] = extra["cost"]
            f.mapped("messages[assistant].extra.cost", "step.note.cost")
        reasoning = msg.get("reasoning_content")
        if reasoning:
            note["reasoning"] = reasoning
        if response:
            f.kept("messages[assistant].extra.response")
            note["extra"] = {"response_id": response.get("id")}
        t0 = parse_time(extra.get("timestamp"), path=path, field_name=f"$.messages[{turn['j']}].extra.timestamp")
        t1 = None
        for o in outputs:
            oe = o.get("extra") if isinstance(o.get("extra"), dict) else {}
            t1 = parse_time(oe.get("timestamp"), path=path, field_name="messages[].extra.timestamp") or t1
        duration = (t1 - t0) if t0 is not None and t1 is not None and t1 >= t0 else None
        info: dict[str, Any] = {}
        failure = None
        if turn.get("format_error") is not None or (not commands and outputs and msg.get("role") == "assistant"
                                                    and not actions and not msg.get("tool_calls")
                                                    and extra.get("exit_status") is None):
            failure = {"kind": "format_error", "message": (turn.get("format_error") or texts[0] or "")[:500]}
            f.mapped("messages[user].extra.interrupt_type=FormatError", "step.failure(format_error)")
            observation: Any = turn.get("format_error") or (texts[0] if texts else None)
        else:
            observation = texts[0] if len(texts) == 1 else texts or None
        for o in outputs:
            oe = o.get("extra") if isinstance(o.get("extra"), dict) else {}
            if oe.get("exception_info"):
                failure = failure or {"kind": "exception", "message": str(oe["exception_info"])[:500]}
        if codes and any(c not in (None, 0) for c in codes):
            info["returncode"] = codes[0] if len(codes) == 1 else codes
            bad = next(c for c in codes if c not in (None, 0))
            failure = failure or {"kind": "tool_error", "message": f"exit code {bad}"}
            f.mapped("observation returncode", "step.info.returncode/failure")
        elif codes and any(c is not None for c in codes):
            info["returncode"] = codes[0] if len(codes) == 1 else codes
        action: Any = commands[0] if len(commands) == 1 else (commands or (content or ""))
        return ImportedStep(action=action, observation=observation, info=info, time=t0, duration=duration,
                            note=note, failure=failure)


def _submits(action: Any) -> bool:
    """Whether a step's command (or commands) is mini-swe-agent's submit line."""
    commands = action if isinstance(action, list) else [action]
    return any(isinstance(c, str) and any(word in c for word in _SUBMIT) for c in commands)


def _first_prompt(items: Iterator[tuple[int, Any]]) -> tuple[str | None, str | None]:
    """The system text and the task prompt (the first user message); the rest of the array is passed over."""
    system = prompt = None
    for _, m in items:
        if isinstance(m, dict) and m.get("role") == "system" and system is None:
            system = _text(m.get("content"))
        elif isinstance(m, dict) and m.get("role") == "user" and prompt is None:
            prompt = _text(m.get("content"))
    return system, prompt


def _text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    if content is None:
        return None
    return json.dumps(content)


def _response_text(extra: dict[str, Any]) -> str:
    response = extra.get("response")
    try:
        return str(response["choices"][0]["message"]["content"] or "")  # type: ignore[index]
    except (KeyError, IndexError, TypeError):
        return ""
