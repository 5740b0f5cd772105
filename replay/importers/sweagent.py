"""SWE-agent ``.traj`` files (SWE-agent 0.x and 1.x).

Layout (``sweagent/agent/agents.py``, ``save_trajectory``): a JSON object with ``environment`` (name),
``trajectory`` (one entry per agent step: ``action``, ``observation``, ``response``, ``thought``,
``execution_time``, ``state``, sometimes ``query`` and ``extra_info``), ``history`` (the chat messages sent
to the model, with ``tool_calls`` and their ids for function-calling agents), ``info`` (``exit_status``,
``submission``, ``model_stats``, ``swe_agent_version``, ``edited_files*``) and ``replay_config`` (the run config,
as an object or as JSON text).

Mapping: one step per ``trajectory`` entry. action = the command line, or, for a function-calling agent
(SWE-agent 1.x), the model's calls from ``history``'s matching assistant message (``{"tool", "args", "id"}``:
name, arguments parsed from their JSON text, the original id; the command line SWE-agent made of them in
``note.command``); observation; duration = ``execution_time``; note = thought, raw response, the tool calls as
``history`` has them; state = ``state`` (diffed step to step). The reset info declares ``bash`` (a command line,
for steps without calls) and every tool the calls name (their argument names; SWE-agent keeps no schema in the
file), so the exports write the model's calls as it made them. A step fails (kind ``tool_error``) when its observation
shows a shell error (command not found, a Python traceback, an edit rejected for syntax errors). The exit
status becomes an episode check (judge ``swe-agent:exit_status``); a limit exit (``exit_cost``,
``exit_context``, ``exit_format``...) truncates the last step, ``submitted`` terminates it. SWE-agent files carry
no wall-clock times: step times are 0 (unknown), durations are kept.

The file is read twice, streaming: first the small members and the call ids of ``history``, then the
``trajectory`` one entry at a time, so memory stays flat in the number of steps.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

from .base import (ImportedEpisode, ImportedStep, Importer, SeenTools, SourceFile, call_of, info_object, open_text,
                   read_model_stats, shell_tool, usd_amount, with_episode_usage)
from .jsonstream import ImportFormatError, JsonStream, shown

_STEP_KNOWN = ("action", "observation", "response", "thought", "execution_time", "state", "query", "messages")
_ERROR = re.compile(r"command not found|Traceback \(most recent call last\)|Your proposed edit has introduced new "
                    r"syntax error|No such file or directory")
_LIMIT_EXITS = ("exit_cost", "exit_context", "exit_format", "exit_error", "exit_command_timeout",
                "exit_total_execution_time", "exit_forfeit", "exit_api")


class SweAgentImporter(Importer):
    name = "swe-agent"
    description = "SWE-agent .traj files"
    suffixes = (".traj",)

    @classmethod
    def detect(cls, path: Path, head: bytes) -> str | None:
        text = head.decode("utf-8", "replace")
        if path.name.endswith(".traj") and text.lstrip().startswith("{"):
            return "a .traj file holding a JSON object (SWE-agent trajectory)"
        if re.search(r'^\s*\{\s*"(environment|trajectory)"\s*:', text):
            return "a JSON object starting with SWE-agent's 'environment'/'trajectory' members"
        return None

    def read(self, source: SourceFile) -> Iterator[ImportedEpisode]:
        path = source.path
        top: dict[str, Any] = {}
        calls: list[dict[str, Any]] = []
        prompt: str | None = None
        system: str | None = None
        n_traj = 0
        with open_text(path, self.description) as fh:
            s = JsonStream(fh, path)
            for key in s.keys():
                if key == "trajectory":
                    for n_traj, _ in s.items():
                        pass
                    n_traj += 1
                elif key == "history":
                    for _, msg in s.items():
                        if not isinstance(msg, dict) or msg.get("is_demo"):
                            continue
                        role = msg.get("role")
                        if role == "system":
                            system, prompt, calls = _text(msg.get("content")), None, []
                        elif role == "user" and prompt is None:
                            prompt = _text(msg.get("content"))
                        elif role == "assistant" and msg.get("action") is not None:
                            calls.append({"action": msg.get("action"), "tool_calls": msg.get("tool_calls")})
                else:
                    top[key] = s.value()
        seen = SeenTools("SWE-agent")
        for c in calls:  # (of the last attempt: a system prompt starts the history again)
            for tc in _model_calls(c.get("tool_calls")) or ():
                seen.add(tc["tool"], tc["args"])
        if "trajectory" not in top and n_traj == 0 and "history" not in top and not calls:
            raise ImportFormatError(path, "$.trajectory", "not a SWE-agent trajectory: no 'trajectory' member")
        info = info_object(path, top, "exit_status, submission, model_stats")
        config = top.get("replay_config")
        if isinstance(config, str):
            try:
                config = json.loads(config)
            except ValueError:
                config = {"text": config}
        config = config if isinstance(config, dict) else {}
        f = self.fields
        problem = config.get("problem_statement") if isinstance(config.get("problem_statement"), dict) else {}
        agent_cfg = config.get("agent") if isinstance(config.get("agent"), dict) else {}
        model = agent_cfg.get("model") if isinstance(agent_cfg.get("model"), dict) else {}
        task = {
            "id": problem.get("id") or top.get("environment") or path.stem,
            "text": problem.get("text") or prompt,
            "url": problem.get("github_url"),
            "sandbox": config.get("env"),
            "verification": ["environment"],
        }
        f.mapped("replay_config.problem_statement", "task.id/text")
        f.mapped("replay_config.env", "task.sandbox")
        stats, stats_extra = read_model_stats(info.get("model_stats"), f)
        agent = {"name": "swe-agent", "version": info.get("swe_agent_version"), "model": model.get("name"),
                 "sampling": {k: model[k] for k in ("temperature", "top_p") if k in model} or None,
                 "model_stats": info.get("model_stats"), "config": agent_cfg or None}
        f.mapped("replay_config.agent.model", "provenance.agent.model/sampling")
        f.mapped("info.model_stats", "provenance.agent.model_stats")
        extra = f.keep_rest("info.", info, ("exit_status", "submission", "model_stats", "swe_agent_version"))
        extra.update(stats_extra)
        extra.update({f"replay_config.{k}": v for k, v in f.keep_rest("replay_config.", config,
                                                                         ("problem_statement", "env", "agent")).items()})
        exit_status = info.get("exit_status")
        # Function-calling agents keep the call ids in history's assistant messages (of the last attempt, after
        # the last system prompt); a step takes the next one whose action is its own (the final submit may have
        # none).
        def steps() -> Iterator[ImportedStep]:
            j = 0
            with open_text(path, self.description) as fh:
                s = JsonStream(fh, path)
                for key in s.keys():
                    if key != "trajectory":
                        continue
                    for i, entry in s.items():
                        call = None
                        action = entry.get("action") if isinstance(entry, dict) else None
                        for k in range(j, len(calls)):
                            if calls[k].get("action") == action:
                                call, j = calls[k], k + 1
                                break
                        yield self._step(path, i, entry, call, i == n_traj - 1, exit_status)

        def checks() -> list[dict[str, Any]]:
            if exit_status is None:
                return []
            f.mapped("info.exit_status", "checks[judge=swe-agent:exit_status]")
            return [{"target": "episode", "kind": "environment",
                     "judge": f"swe-agent:exit_status@{agent['version'] or 'unknown'}", "value": exit_status,
                     "rationale": "SWE-agent's exit status", "submission": info.get("submission")}]

        yield ImportedEpisode(task=task, agent=agent, reset_observation=prompt if prompt is not None else task["text"],
                              reset_info={**({"system": system} if system else {}), **_SHELL_TOOL,
                                          "tools": [*_SHELL_TOOL["tools"], *seen.schemas(["bash"])]},
                              steps=with_episode_usage(steps(), stats, agent["model"],
                                                       "info.model_stats"), reset_state={},
                              checks=checks, where="trajectory", name=task["id"], extra=extra)

    def _step(self, path: Path, i: int, entry: Any, call: dict[str, Any] | None, last: bool,
              exit_status: Any) -> ImportedStep:
        field = f"$.trajectory[{i}]"
        if not isinstance(entry, dict):
            raise ImportFormatError(path, field, f"expected an object per step, found {shown(entry)}")
        action = entry.get("action")
        if not isinstance(action, str):
            raise ImportFormatError(path, f"{field}.action", f"expected the command text, found {shown(action)}")
        f = self.fields
        f.mapped("trajectory[].action", "step.action")
        f.mapped("trajectory[].observation", "step.observation")
        f.mapped("trajectory[].thought", "step.note.thought")
        f.mapped("trajectory[].response", "step.note.response")
        f.mapped("trajectory[].execution_time", "step.duration")
        obs = entry.get("observation")
        note: dict[str, Any] = {"thought": entry.get("thought"), "response": entry.get("response")}
        model_calls = _model_calls(call.get("tool_calls")) if call is not None else None
        if call is not None and call.get("tool_calls"):
            f.mapped("history[].tool_calls", "step.note.tool_calls")
            note["tool_calls"] = call["tool_calls"]
            note["call_ids"] = [c.get("id") for c in call["tool_calls"] if isinstance(c, dict)]
        if model_calls:
            # A function-calling agent (SWE-agent 1.x): the step's action is the model's calls (name, arguments,
            # id), what it sent; SWE-agent's command line made from them stays in the note.
            f.mapped("history[assistant].tool_calls[].function", "step.action (the model's calls)")
            note["command"] = action
            action = model_calls[0] if len(model_calls) == 1 else model_calls
        extra = f.keep_rest("trajectory[].", entry, _STEP_KNOWN)
        if extra:
            note["extra"] = extra
        state = entry.get("state")
        if isinstance(state, str):
            try:
                state = json.loads(state)
            except ValueError:
                state = {"state": state}
        f.mapped("trajectory[].state", "step.diff")
        failure = None
        if isinstance(obs, str) and _ERROR.search(obs):
            failure = {"kind": "tool_error", "message": _ERROR.search(obs).group(0)}  # type: ignore[union-attr]
        terminated = truncated = False
        if last and isinstance(exit_status, str):
            if exit_status.startswith(_LIMIT_EXITS) or "exit_" in exit_status:
                truncated = True
                if failure is None and exit_status.startswith(("exit_error", "exit_format")):
                    failure = {"kind": "limit", "message": exit_status}
            elif "submit" in exit_status:
                terminated = True
        duration = entry.get("execution_time")
        if duration is not None and not usd_amount(duration):  # (seconds: a finite number >= 0, as an amount)
            # A time that cannot be read is kept as it is, and the step's duration is unknown (0), not made up.
            f.unread("trajectory[].execution_time", f"expected seconds (a number >= 0), found {shown(duration)}; "
                     "the step's duration is unknown")
            note.setdefault("extra", {})["execution_time"] = duration
            duration = None
        return ImportedStep(action=action, observation=obs, terminated=terminated, truncated=truncated,
                            duration=float(duration) if duration is not None else None, note=note,
                            failure=failure, state=state if state is not None else {}, has_state=True)


def _model_calls(tool_calls: Any) -> list[dict[str, Any]] | None:
    """A history message's OpenAI-style ``tool_calls`` as actions ``{"tool", "args", "id"}`` (arguments parsed
    from their JSON text), or None when there are none or one cannot be read as a call with an object of
    arguments (the step keeps its command line then)."""
    if not isinstance(tool_calls, list) or not tool_calls:
        return None
    out = []
    for c in tool_calls:
        read = call_of(c)
        if read is None:
            return None
        out.append({"tool": read[0], "args": read[1], "id": c.get("id")})
    return out


def _text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return None


# SWE-agent runs every action as a command line in its shell session (its own commands, find_file, open, edit,
# are installed there).
_SHELL_TOOL = shell_tool("Run a command line in SWE-agent's shell session (its own commands included).")
