"""OpenHands event streams: an exported trajectory (a JSON list of events) or a session's ``events/`` folder
(one ``<id>.json`` file per event).

Layout (``openhands/events/serialization``): every event has ``id``, ``timestamp``, ``source`` (user, agent,
environment) and ``message``; an action has ``action`` (message, run, read, edit, browse, finish...), ``args``
(with the agent's ``thought``), ``tool_call_metadata`` (``function_name``, ``tool_call_id``, the raw
``model_response`` with model and usage) and sometimes ``llm_metrics``; an observation has ``observation``,
``cause`` (the id of the action it answers), ``content``, ``extras`` (``metadata.exit_code`` for commands;
``exit_code`` directly in ``extras`` in OpenHands/OpenDevin before the metadata change) and sometimes ``success``.

Mapping: the first user message is the task (text and reset observation). One step per agent turn: the actions
produced by one model response (same ``model_response.id``) stay together (action = ``{"tool", "args", "id"}`` or a
list; observation = the answering observation's content, or a list). A call is the model's: the raw response's
``tool_calls`` entry with the event's ``tool_call_id`` gives the name and the arguments as sent (OpenHands' ``args``
add defaults the model did not send; they and OpenHands' action name are kept in ``note.openhands_actions``);
without a response, ``function_name`` and OpenHands' ``args``. The tools called are declared in the reset info
(``base.SeenTools``: OpenHands keeps no schemas in the event stream). A turn with no tool call (an agent
``message``) has action ``{"message": text}``. Later user messages are kept in the next step's
``note.user_before``. time = the action's timestamp, duration = until its last observation. Failures: a non-zero
exit code (``extras.metadata.exit_code``, else ``extras.exit_code``; -1, a command not ended, is none), an ``error``
observation, ``success: false`` (``info["error"]``, the classifier's tool-error rule); an
``agent_state_changed`` to ``error`` fails the last step (kind ``exception``). ``finish`` terminates the episode.
Events are streamed (a list file) or read one file at a time (a folder).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

from .base import (ImportedEpisode, ImportedStep, Importer, SeenTools, SourceFile, call_of, open_text, parse_time,
                   read_text)
from .jsonstream import ImportFormatError, JsonStream, shown

_EVENT_KNOWN = ("id", "timestamp", "source", "message", "action", "args", "tool_call_metadata", "timeout",
                "observation", "cause", "content", "extras", "success", "llm_metrics")


class OpenHandsImporter(Importer):
    name = "openhands"
    description = "OpenHands event streams (exported JSON lists or events/ folders)"
    suffixes = (".json",)
    reads_folders = True

    @classmethod
    def detect(cls, path: Path, head: bytes) -> str | None:
        text = head.decode("utf-8", "replace")
        if re.match(r'\s*\[\s*\{\s*"id"\s*:\s*\d+\s*,\s*"timestamp"', text) and re.search(
                r'"(action|observation)"\s*:', text):
            return "a JSON list of events with id/timestamp/action (OpenHands event stream)"
        return None

    def read(self, source: SourceFile) -> Iterator[ImportedEpisode]:
        path = source.path
        first_user: dict[str, Any] | None = None
        first_model = None
        seen = SeenTools("the OpenHands agent")
        for _, ev in self._events(path):  # a streamed first pass: the task, the model and the tools go in the header
            if not isinstance(ev, dict):
                continue
            if first_user is None and ev.get("source") == "user" and ev.get("action") == "message":
                first_user = ev
            meta = ev.get("tool_call_metadata")
            if first_model is None and isinstance(meta, dict) and isinstance(meta.get("model_response"), dict):
                first_model = meta["model_response"].get("model")
            if isinstance(meta, dict) and "action" in ev and ev.get("source") in ("agent", None):
                tool, args, _ = _call(ev, meta)
                seen.add(tool, args)
        f = self.fields
        text = first_user.get("message") if first_user else None
        f.mapped("events[source=user][0].message", "task.text / reset.observation")
        task = {"id": path.stem if path.is_file() else path.name, "text": text, "verification": []}
        agent = {"name": "openhands", "version": None, "model": first_model}

        def steps() -> Iterator[ImportedStep]:
            pending: dict[str, Any] | None = None  # the open turn: its actions and observations
            by_action: dict[Any, dict[str, Any]] = {}
            user_before: list[dict[str, Any]] = []
            seen_first = False
            held: ImportedStep | None = None
            for where, ev in self._events(path):
                if not isinstance(ev, dict):
                    raise ImportFormatError(path, where, f"expected an event object, found {shown(ev)}")
                _check_event(path, where, ev)
                if "action" in ev:
                    # The arguments are the action (a command, a path): read as none, the step would say the
                    # agent ran nothing.
                    if ev.get("args") is not None and not isinstance(ev.get("args"), dict):
                        raise ImportFormatError(path, f"{where}.args", "expected an object of arguments, found "
                                                f"{shown(ev['args'])}")
                    if ev.get("source") == "user":
                        if ev.get("action") == "message" and not seen_first:
                            seen_first = True
                            continue
                        user_before.append(ev)
                        f.mapped("events[source=user] after the first", "next step.note.user_before")
                        continue
                    if ev.get("source") not in ("agent", None):
                        user_before.append(ev)
                        continue
                    meta = ev.get("tool_call_metadata") if isinstance(ev.get("tool_call_metadata"), dict) else {}
                    response = meta.get("model_response") if isinstance(meta.get("model_response"), dict) else {}
                    rid = response.get("id")
                    if pending is not None and (rid is None or rid != pending["rid"]):
                        if held is not None:
                            yield held
                        held = self._step(path, pending)
                        pending = None
                    if pending is None:
                        pending = {"rid": rid, "actions": [], "obs": {}, "response": response,
                                   "before": user_before}
                        user_before = []
                    pending["actions"].append(ev)
                    by_action[ev.get("id")] = pending
                elif "observation" in ev:
                    cause = ev.get("cause")
                    if cause is not None and (not isinstance(cause, int) or isinstance(cause, bool)):
                        # The cause links the observation to its action: unread, the agent's observation would be
                        # filed as a message to the agent and its step would observe nothing.
                        raise ImportFormatError(path, f"{where}.cause", "expected the id of the action it answers "
                                                f"(a whole number) or null, found {shown(cause)}")
                    turn = by_action.get(cause)
                    if turn is not None:
                        turn["obs"].setdefault(ev.get("cause"), []).append(ev)
                    elif ev.get("observation") == "agent_state_changed":
                        state = (ev.get("extras") or {}).get("agent_state") if isinstance(ev.get("extras"), dict) else None
                        if state == "error" and pending is not None:
                            pending["error"] = ev.get("message") or "agent entered the error state"
                        elif state == "error" and held is not None and held.failure is None:
                            held.failure = {"kind": "exception", "message": ev.get("message") or "agent error"}
                    else:
                        user_before.append(ev)
                else:
                    raise ImportFormatError(path, where, "an event needs 'action' or 'observation'")
            if pending is not None:
                if held is not None:
                    yield held
                held = self._step(path, pending)
            if held is not None:
                if user_before:
                    assert held.note is not None
                    held.note["user_after"] = user_before
                yield held

        tools = seen.schemas()
        if tools:
            f.mapped("events[action].tool_call_metadata.function_name", "reset.info.tools (declared from the calls)")
        yield ImportedEpisode(task=task, agent=agent, reset_observation=text, steps=steps(),
                              reset_info={"tools": tools} if tools else {},
                              reset_time=parse_time(first_user.get("timestamp"), path=path, field_name="timestamp")
                              if first_user else None, where="events", name=str(task["id"]))

    def _events(self, path: Path) -> Iterator[tuple[str, Any]]:
        if path.is_dir():
            files = sorted((p for p in path.glob("*.json") if p.stem.isdigit()), key=lambda p: int(p.stem))
            if not files:
                raise ImportFormatError(path, None, "no numbered event files (<id>.json) in this folder")
            for p in files:
                text = read_text(p, "an OpenHands event file (JSON)")
                try:
                    yield p.name, json.loads(text)
                except ValueError as exc:
                    raise ImportFormatError(p, "$", f"invalid JSON: {exc}") from None
            return
        with open_text(path, self.description) as fh:
            s = JsonStream(fh, path)
            if s.kind() == "object":  # {"events": [...]}
                found = False
                for key in s.keys():
                    if key in ("events", "history", "trajectory") and not found:
                        found = True
                        for i, ev in s.items():
                            yield f"$.{key}[{i}]", ev
                    else:
                        s.skip()
                if not found:  # ({} or another tool's log: no events, not an episode of 0 steps)
                    raise ImportFormatError(path, "$", "not an OpenHands event list: expected a JSON array of "
                                            "events (or an object with an 'events' array)")
                return
            for i, ev in s.items():
                yield f"$[{i}]", ev

    def _step(self, path: Path, turn: dict[str, Any]) -> ImportedStep:
        f = self.fields
        actions, observations, errors = [], [], []
        oh: list[dict[str, Any]] = []
        thought_parts: list[str] = []
        t0 = t1 = None
        for ev in turn["actions"]:
            field = f"event {ev.get('id')}"
            meta = ev.get("tool_call_metadata") if isinstance(ev.get("tool_call_metadata"), dict) else {}
            args = dict(ev.get("args")) if isinstance(ev.get("args"), dict) else {}
            thought = args.pop("thought", None)
            if thought:
                thought_parts.append(thought)
            t = parse_time(ev.get("timestamp"), path=path, field_name=f"{field}.timestamp")
            t0 = t if t0 is None else min(t0, t)
            if ev.get("action") == "message" and not meta:
                actions.append({"message": args.get("content", ev.get("message"))})
            else:
                tool, call_args, sent = _call(ev, meta)
                actions.append({"tool": tool, "args": call_args, "id": meta.get("tool_call_id")})
                # OpenHands' own action and its arguments (defaults such as blocking/is_input added to what the
                # model sent) are kept in the note, not in the call the model made.
                oh.append({"action": ev.get("action"), **({"args": args} if sent else {})})
                if sent:
                    f.mapped("tool_call_metadata.model_response.choices[0].message.tool_calls[id].function",
                             "step.action (the model's call: name and arguments as sent)")
            for ob in turn["obs"].get(ev.get("id"), ()):
                observations.append(ob.get("content"))
                tt = parse_time(ob.get("timestamp"), path=path, field_name=f"event {ob.get('id')}.timestamp")
                t1 = tt if t1 is None or (tt is not None and tt > t1) else t1
                extras = ob.get("extras") if isinstance(ob.get("extras"), dict) else {}
                meta_x = extras.get("metadata") if isinstance(extras.get("metadata"), dict) else {}
                # OpenHands since its command metadata change: extras.metadata.exit_code; before it (and
                # OpenDevin): extras.exit_code. When both are there, metadata wins: it is what OpenHands' own
                # CmdOutputObservation.exit_code reads.
                code = meta_x.get("exit_code") if meta_x.get("exit_code") is not None else extras.get("exit_code")
                if isinstance(code, bool):
                    code = None
                if code is not None:
                    f.mapped("events[observation].extras.metadata.exit_code (else extras.exit_code)",
                             "step.info.error when non-zero")
                if ob.get("observation") == "error":
                    errors.append(str(ob.get("content") or ob.get("message"))[:500])
                elif isinstance(code, int) and code not in (0, -1):
                    errors.append(f"exit code {code}")
                elif ob.get("success") is False:
                    errors.append(ob.get("message") or "the action did not succeed")
        f.mapped("events[action].args/tool_call_metadata", "step.action (actions of one model response together)")
        f.mapped("events[observation].content (by cause)", "step.observation")
        f.mapped("events[].timestamp", "step.time/duration")
        response = turn["response"]
        note: dict[str, Any] = {"thought": "\n".join(thought_parts) or None,
                                "call_ids": [a.get("id") for a in actions if "id" in a] or None,
                                "event_ids": [ev.get("id") for ev in turn["actions"]]}
        if response:
            note["model"] = response.get("model")
            if response.get("usage"):
                note["usage"] = response["usage"]
                f.mapped("tool_call_metadata.model_response.usage", "step.note.usage")
            try:
                content = response["choices"][0]["message"]["content"]
            except (KeyError, IndexError, TypeError):
                content = None
            if content and not note["thought"]:
                note["thought"] = content
        for ev in turn["actions"]:
            if ev.get("llm_metrics"):
                note["llm_metrics"] = ev["llm_metrics"]
                f.mapped("events[].llm_metrics", "step.note.llm_metrics")
            for k in ev:
                if k not in _EVENT_KNOWN:
                    f.kept(f"events[].{k}")
                    note.setdefault("extra", {})[k] = ev[k]
        if oh:
            note["openhands_actions"] = oh
        if turn["before"]:
            note["user_before"] = turn["before"]
        info: dict[str, Any] = {}
        if errors:
            info["error"] = "; ".join(errors)
        failure = {"kind": "exception", "message": turn["error"]} if turn.get("error") else None
        action: Any = actions[0] if len(actions) == 1 else actions
        observation: Any = observations[0] if len(observations) == 1 else (observations or None)
        terminated = any(ev.get("action") == "finish" for ev in turn["actions"])
        return ImportedStep(action=action, observation=observation, info=info, time=t0,
                            duration=(t1 - t0) if t0 is not None and t1 is not None and t1 >= t0 else None,
                            note=note, failure=failure, terminated=terminated)


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_event(path: Path, where: str, ev: dict[str, Any]) -> None:
    """Refuse an event whose fields that decide the steps have another type (docs/IMPORT.md: a source field of
    the wrong type is never read as absent), naming the JSON path: an action's ``source`` (read as absent, the
    agent's action would be filed as a message to it) and ``id`` (its observations join it by it); an
    observation's ``extras``, ``extras.metadata`` and their ``exit_code`` (read as absent, a failed command would
    import as a success).

    Raises:
        ImportFormatError: naming ``where`` and the field.
    """
    if "action" in ev:
        if ev.get("source") is not None and not isinstance(ev["source"], str):
            raise ImportFormatError(path, f"{where}.source", "expected who acted (agent, user, environment) or "
                                    f"null, found {shown(ev['source'])}")
        if ev.get("id") is not None and not _whole(ev["id"]):
            raise ImportFormatError(path, f"{where}.id", "expected the event's id (a whole number: its "
                                    f"observations name it as their cause) or null, found {shown(ev['id'])}")
        return
    extras = ev.get("extras")
    if extras is None:
        return
    if not isinstance(extras, dict):
        raise ImportFormatError(path, f"{where}.extras", f"expected an object (exit_code, metadata...) or null, "
                                f"found {shown(extras)}")
    metadata = extras.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise ImportFormatError(path, f"{where}.extras.metadata", f"expected an object (exit_code...) or null, "
                                f"found {shown(metadata)}")
    for field, obj in (("extras.exit_code", extras), ("extras.metadata.exit_code", metadata or {})):
        code = obj.get("exit_code")
        if code is not None and not _whole(code):
            raise ImportFormatError(path, f"{where}.{field}", "expected the command's exit code (a whole number) "
                                    f"or null, found {shown(code)}")


def _call(ev: dict[str, Any], meta: dict[str, Any]) -> tuple[Any, dict[str, Any], bool]:
    """``(tool, arguments, sent)`` of an OpenHands action event: the call the model made, from the raw model
    response's ``tool_calls`` entry with the event's ``tool_call_id`` (its name, and its arguments parsed from their
    JSON text; ``sent`` True), or, when the response does not hold it, ``function_name`` (else the action's name)
    and OpenHands' ``args`` without ``thought`` (``sent`` False)."""
    args = {k: v for k, v in ev["args"].items() if k != "thought"} if isinstance(ev.get("args"), dict) else {}
    response = meta.get("model_response") if isinstance(meta.get("model_response"), dict) else {}
    try:
        calls = response["choices"][0]["message"]["tool_calls"]
    except (KeyError, IndexError, TypeError):
        calls = None
    for c in calls if isinstance(calls, list) else ():
        if isinstance(c, dict) and c.get("id") == meta.get("tool_call_id") and isinstance(c.get("function"), dict):
            read = call_of(c, missing_args=False)
            if read is not None:
                return read[0], read[1], True
            break
    return meta.get("function_name") or ev.get("action"), args, False
