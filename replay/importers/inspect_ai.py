"""Inspect AI logs: ``.eval`` (a zip archive) and ``.json`` (one JSON document), one episode per sample and epoch.

Layout (``inspect_ai/log/_log.py``, ``EvalLog``/``EvalSample``): the eval spec (``eval``: task, model, dataset,
sandbox, packages, ``model_generate_config``), ``plan``, ``results``, ``stats``, and ``samples`` (id, epoch,
input, target, messages, output, scores, metadata, store, events, model_usage, error, limit, total_time,
working_time). A ``.eval`` file keeps the spec in ``header.json`` and each sample in
``samples/<id>_epoch_<n>.json``; it is read one member at a time. A ``.json`` log is streamed one sample at a time.

Mapping: one step per assistant message. Its tool calls stay together in that step (action = the call, or a
list of calls, each ``{"tool", "args", "id"}``; observation = the tool result, or the list of results), original
call ids kept; a turn with no tool call has action ``{"message": text}``. Times and durations come from the
``model`` and ``tool`` events (ISO timestamps, ``working_time``); model, tokens and the message id go in the
note. A tool message with ``error`` sets ``info["error"]`` (the classifier's own tool-error rule); the sample's
``error`` fails the last step (kind ``exception``); a ``limit`` truncates it. ``store`` and ``state`` events
(JSON Patch) are applied to a state ``{"store": ..., "task_state": ...}`` (the task state without its messages,
which are the steps) and stored as diff rows. Each scorer's score is an episode check (judge
``inspect:<scorer>@<inspect version>``; ``C``/``I`` read as pass/fail, the answer and explanation kept). The reset
observation is the user messages before the first assistant turn; the ``system`` messages there are the system
prompt (``reset.info["system"]``). The reset info's ``tools`` are the first model event's tool list, or, in a log
without model events, schemas made from the calls (``base.SeenTools``).
"""

from __future__ import annotations

import copy
import json
import re
import zipfile
from pathlib import Path
from typing import Any, Iterator

from .base import ImportedEpisode, ImportedStep, Importer, SeenTools, SourceFile, open_text, parse_time
from .jsonstream import ImportFormatError, JsonStream, shown

_SAMPLE = re.compile(r"\Asamples/(.+)_epoch_(\d+)\.json\Z")  # \Z: "$" would match before a final newline
# Inspect's score value constants (inspect_ai.scorer._metric): CORRECT, INCORRECT, PARTIAL, NOANSWER.
_VALUES = {"C": True, "I": False, "P": 0.5, "N": None}


class InspectImporter(Importer):
    name = "inspect"
    description = "Inspect AI logs (.eval archives and .json logs)"
    suffixes = (".eval", ".json")

    @classmethod
    def detect(cls, path: Path, head: bytes) -> str | None:
        if head.startswith(b"PK\x03\x04"):
            try:
                with zipfile.ZipFile(path) as z:
                    names = set(z.namelist())
            except zipfile.BadZipFile:
                return None
            if "header.json" in names or "_journal/start.json" in names:
                return "a zip archive with header.json / samples/ (Inspect .eval log)"
            return None
        text = head.decode("utf-8", "replace")
        if re.match(r'\s*\{\s*"version"\s*:\s*\d+\s*,\s*"status"\s*:', text) or (
                '"eval"' in text and '"task"' in text and '"model"' in text and '"samples"' in text):
            return "a JSON log with version/status/eval members (Inspect .json log)"
        return None

    def read(self, source: SourceFile) -> Iterator[ImportedEpisode]:
        path = source.path
        with path.open("rb") as fh:
            is_zip = fh.read(4) == b"PK\x03\x04"
        if is_zip:
            yield from self._read_eval(path)
        else:
            yield from self._read_json(path)

    # -- containers ---------------------------------------------------------------------------------------------

    def _read_eval(self, path: Path) -> Iterator[ImportedEpisode]:
        try:
            z = zipfile.ZipFile(path)
        except zipfile.BadZipFile as exc:
            raise ImportFormatError(path, None, f"not a readable .eval archive: {exc}") from exc
        with z:
            names = z.namelist()
            if "header.json" in names:
                header = _json_member(z, path, "header.json")
            elif "_journal/start.json" in names:  # a log still being written: the journal has the spec
                header = _json_member(z, path, "_journal/start.json")
            else:
                raise ImportFormatError(path, "header.json", "not an Inspect .eval log: no header.json member")
            if not isinstance(header, dict) or not isinstance(header.get("eval"), dict):
                raise ImportFormatError(path, "header.json:$.eval", "expected the eval spec object")
            for name in names:
                if _SAMPLE.match(name):
                    sample = _json_member(z, path, name)
                    yield self._episode(path, header, sample, name)

    def _read_json(self, path: Path) -> Iterator[ImportedEpisode]:
        header: dict[str, Any] = {}
        with open_text(path, self.description) as fh:
            s = JsonStream(fh, path)
            for key in s.keys():
                if key == "samples":
                    s.skip()
                else:
                    header[key] = s.value()
        if not isinstance(header.get("eval"), dict):
            raise ImportFormatError(path, "$.eval", "not an Inspect log: expected the eval spec object")
        with open_text(path, self.description) as fh:
            s = JsonStream(fh, path)
            for key in s.keys():
                if key != "samples":
                    s.skip()
                    continue
                if s.kind() == "other":  # null: a log written without its samples; a number or bool: refused
                    value = s.value()
                    if value is None:
                        continue
                    raise ImportFormatError(path, "$.samples", f"expected an array, found {shown(value)}")
                # (anything else but an array is refused by items(), naming $.samples: read as no samples, a
                # broken log would import as an empty one, exit 0)
                for i, sample in s.items():
                    yield self._episode(path, header, sample, f"$.samples[{i}]")

    # -- one sample ---------------------------------------------------------------------------------------------

    def _episode(self, path: Path, header: dict[str, Any], sample: Any, where: str) -> ImportedEpisode:
        if not isinstance(sample, dict):
            raise ImportFormatError(path, where, f"expected a sample object, found {shown(sample)}")
        f = self.fields
        spec = header["eval"]
        messages = sample.get("messages")
        if not isinstance(messages, list):
            raise ImportFormatError(path, f"{where}.messages", f"expected a list of messages, found {shown(messages)}")
        _check_messages(path, where, messages)
        scores = sample.get("scores")
        if scores is not None and not isinstance(scores, dict):
            # The scorers' verdicts (the outcome, pass@k): read as none, a judged sample would import unjudged.
            raise ImportFormatError(path, f"{where}.scores", "expected an object of scores by scorer name, found "
                                    f"{shown(scores)}")
        version = (spec.get("packages") or {}).get("inspect_ai") if isinstance(spec.get("packages"), dict) else None
        sid, epoch = sample.get("id"), sample.get("epoch", 1)
        task_name = spec.get("task") or "task"
        dataset = spec.get("dataset") if isinstance(spec.get("dataset"), dict) else {}
        attachments = sample.get("attachments") if isinstance(sample.get("attachments"), dict) else {}
        text = _input_text(sample.get("input"), attachments)
        task = {"id": f"{task_name}/{sid}", "text": text, "split": dataset.get("name"),
                "sample_id": sid, "epoch": epoch, "target": sample.get("target"),
                "sandbox": sample.get("sandbox") or spec.get("sandbox"), "metadata": sample.get("metadata"),
                "task": {k: spec.get(k) for k in ("task", "task_id", "task_version", "task_file", "task_args")
                         if k in spec},
                "verification": ["rule"] if sample.get("scores") else []}
        for k, target in (("id", "task.sample_id"), ("epoch", "task.epoch"), ("input", "task.text"),
                          ("target", "task.target"), ("metadata", "task.metadata")):
            f.mapped(f"samples[].{k}", target)
        f.mapped("eval.task/dataset/sandbox", "task")
        gen = spec.get("model_generate_config")
        agent = {"name": "inspect_ai", "version": version, "model": spec.get("model"),
                 "sampling": gen or None, "solver": _solver(header.get("plan")),
                 "model_usage": sample.get("model_usage")}
        f.mapped("eval.model/model_generate_config/packages", "provenance.agent")
        f.mapped("samples[].model_usage", "provenance.agent.model_usage")
        events = sample.get("events") if isinstance(sample.get("events"), list) else []
        timing = _event_index(events)
        _, patches = _state_patches(events, timing["turns"])
        first_time = parse_time(events[0].get("timestamp"), path=path, field_name=f"{where}.events[0].timestamp") \
            if events and isinstance(events[0], dict) else None
        prompt = _prompt(messages, attachments) or text
        system = _prompt(messages, attachments, "system")
        if system:
            f.mapped("samples[].messages[system]", "reset.info.system")
        tools = timing["tools"] or _called_tools(messages)
        if tools and not timing["tools"]:
            f.mapped("samples[].messages[assistant].tool_calls[].function",
                     "reset.info.tools (declared from the calls)")
        extra = {f"samples[].{k}": v for k, v in f.keep_rest(
            "samples[].", sample, ("id", "epoch", "input", "target", "messages", "output", "scores", "metadata",
                                  "store", "events", "model_usage", "attachments", "error", "limit", "sandbox",
                                  "message_pool", "uuid", "total_time", "working_time")).items()}
        for k in ("uuid", "total_time", "working_time"):
            if k in sample:
                task.setdefault("timing", {})[k] = sample[k]
        f.mapped("samples[].total_time/working_time/uuid", "task.timing")
        if where == "$.samples[0]" or where.endswith("epoch_1.json"):
            for k, v in f.keep_rest("", header, ("version", "status", "eval", "plan", "results", "stats",
                                                 "samples", "reductions", "error")).items():
                extra[k] = v
        extra["eval.run_id"] = spec.get("run_id")
        extra["eval.status"] = header.get("status")
        steps = self._steps(path, where, messages, attachments, sample, timing, patches, version)
        checks = self._checks(sample, version, spec)
        return ImportedEpisode(task=task, agent=agent, reset_observation=prompt, steps=steps,
                               reset_info={k: v for k, v in (("tools", tools), ("system", system)) if v},
                               reset_time=first_time, reset_state=timing["state0"], checks=checks, where=where,
                               name=f"{task_name}-{sid}-epoch{epoch}", extra=extra,
                               provenance={"inspect": {"eval_id": spec.get("eval_id"), "run_id": spec.get("run_id"),
                                                       "created": spec.get("created"),
                                                       "revision": spec.get("revision")}})

    def _steps(self, path: Path, where: str, messages: list[Any], attachments: dict[str, Any], sample: dict[str, Any],
               timing: dict[str, Any], patches: dict[int, list[tuple[str, list[dict[str, Any]]]]],
               version: str | None) -> Iterator[ImportedStep]:
        f = self.fields
        answers, orphans = _pair_results(messages)
        # Steps: each assistant turn, and each tool result no assistant turn asked for (kept, not dropped: a step
        # whose action is no call, `{"message": ""}`, the result its observation, note.orphan_result its id).
        turns = [(j, m) for j, m in enumerate(messages) if isinstance(m, dict) and (
            m.get("role") == "assistant" or j in orphans)]
        state: dict[str, Any] = copy.deepcopy(timing["state0"])
        n_model = -1
        for n, (j, m) in enumerate(turns):
            field = f"{where}.messages[{j}]"
            if m.get("role") == "tool":
                f.mapped("messages[tool] without an assistant call", "step (action {message: ''}, note.orphan)")
                orphan = m
                m = {"role": "assistant", "content": "", "orphan": True, "tool_calls": []}
            else:
                orphan = None
                n_model += 1
            calls = m.get("tool_calls") or []
            if not isinstance(calls, list):
                raise ImportFormatError(path, f"{field}.tool_calls", f"expected a list of tool calls, found {shown(calls)}")
            actions, info = [], {}
            errors: list[str] = []
            tool_time = 0.0
            by_id, got = answers.get(j, (True, []))
            if orphan is not None:
                got = [orphan]
            for k, call in enumerate(calls):
                if not isinstance(call, dict) or not isinstance(call.get("function"), str):
                    raise ImportFormatError(path, f"{field}.tool_calls[{k}].function", "expected the tool name")
                actions.append({"tool": call["function"], "args": call.get("arguments") or {}, "id": call.get("id")})
                ev = timing["tool"].get(call.get("id"))
                if ev and isinstance(ev.get("working_time"), (int, float)):
                    tool_time += ev["working_time"]
                # The tool event's error, unless the call's own result holds one (said below, from the result).
                res = got[k] if k < len(got) else None
                if ev and ev.get("error") and not isinstance(res.get("error") if isinstance(res, dict) else None,
                                                              dict):
                    e = ev["error"]
                    errors.append(f"{e.get('type')}: {e.get('message')}" if isinstance(e, dict) else str(e))
            for res in got:
                err = res.get("error") if isinstance(res, dict) else None
                if isinstance(err, dict):
                    errors.append(f"{err.get('type')}: {err.get('message')}")
                    info.setdefault("error_types", []).append(err.get("type"))
            results = [_resolve(_content_text(r.get("content")), attachments) if isinstance(r, dict) else None
                       for r in got]
            f.mapped("messages[assistant].tool_calls", "step.action (calls of one turn together)")
            f.mapped("messages[tool].content", "step.observation")
            if errors:
                info["error"] = "; ".join(errors)
                f.mapped("messages[tool].error", "step.info.error -> failure(tool_error)")
            content = _content_text(m.get("content"), attachments)
            if orphan is not None:
                action: Any = {"message": ""}
                observation: Any = results[0]
            elif not calls:
                action = {"message": content}
                observation = None
            else:
                action = actions[0] if len(actions) == 1 else actions
                if by_id:  # one result per call at most, each naming its call: in the calls' order
                    observation = results[0] if len(actions) == 1 else [
                        {"tool_call_id": a["id"], "content": o} for a, o in zip(actions, results)]
                else:  # ids missing or repeated: every result of the turn, in order, with the id it gave
                    observation = None if not got else results[0] if len(actions) == 1 and len(got) == 1 else [
                        {"tool_call_id": r.get("tool_call_id"), "content": o} for r, o in zip(got, results)]
            mev = timing["model"].get(m.get("id"))
            note: dict[str, Any] = {"thought": content, "message_id": m.get("id"),
                                    "call_ids": [a["id"] for a in actions] or None, "model": m.get("model")}
            reasoning = _reasoning(m.get("content"))
            if reasoning:
                note["reasoning"] = reasoning
                f.mapped("messages[assistant].content[type=reasoning]", "step.note.reasoning")
            t = None
            duration = None
            if mev:
                t = parse_time(mev.get("timestamp"), path=path, field_name=f"{field} (model event timestamp)")
                out = mev.get("output") if isinstance(mev.get("output"), dict) else {}
                if out.get("usage"):
                    note["usage"] = out["usage"]
                note["model"] = mev.get("model") or note["model"]
                if isinstance(mev.get("working_time"), (int, float)):
                    duration = mev["working_time"] + tool_time
                    note["latency"] = mev["working_time"]
                f.mapped("events[model].timestamp/working_time/usage", "step.time/duration/note.usage")
            if orphan is not None:
                note["orphan"] = True
                note["orphan_result"] = {"tool_call_id": orphan.get("tool_call_id"), "function": orphan.get("function")}
            step = ImportedStep(action=action, observation=observation, info=info, time=t, duration=duration,
                                note=note, state=None, has_state=False)
            for kind, ops in (patches.get(n_model, ()) if not m.get("orphan") else ()):
                target = state.setdefault(kind, {})
                state[kind] = _apply_patch(target, ops, path, field)
            step.state = state
            step.has_state = True
            if n == len(turns) - 1:
                err = sample.get("error")
                if err:
                    msg = err.get("message") if isinstance(err, dict) else str(err)
                    step.failure = {"kind": "exception", "message": msg,
                                    "traceback": err.get("traceback") if isinstance(err, dict) else None}
                    f.mapped("samples[].error", "last step failure(exception)")
                limit = sample.get("limit")
                if limit:
                    step.truncated = True
                    step.info = {**info, "limit": limit}
                    f.mapped("samples[].limit", "last step truncated, info.limit")
                if not step.truncated and not err:
                    step.terminated = True
            yield step

    def _checks(self, sample: dict[str, Any], version: str | None, spec: dict[str, Any]) -> list[dict[str, Any]]:
        scores = sample.get("scores")
        if not isinstance(scores, dict):
            return []
        self.fields.mapped("samples[].scores", "checks[judge=inspect:<scorer>]")
        out = []
        for name, score in scores.items():
            if not isinstance(score, dict):
                score = {"value": score}
            raw = score.get("value")
            value = _VALUES.get(raw, raw) if isinstance(raw, str) else raw
            kind = "judge" if "model_graded" in name or "judge" in name else "rule"
            out.append({"target": "episode", "kind": kind, "judge": f"inspect:{name}@{version or 'unknown'}",
                        "value": value, "score": float(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool)
                        else (0.5 if raw == "P" else None),
                        "rationale": score.get("explanation"), "inspect_value": raw, "answer": score.get("answer"),
                        "metadata": score.get("metadata"), "target_text": sample.get("target")})
        return out


# -- helpers -------------------------------------------------------------------------------------------------------


_ROLES = frozenset(("system", "user", "assistant", "tool"))


def _check_messages(path: Path, where: str, messages: list[Any]) -> None:
    """Refuse a message the steps cannot be read from: one that is no object, a ``role`` that is none of Inspect's
    four (the role says whether it is an agent turn, a tool result or the prompt: a wrong or misspelt one would
    drop the turn and its calls), a ``content`` that is neither text nor a list of parts (it is the turn's text or the tool's result), a
    tool result's ``tool_call_id`` or a call's ``id`` that is not text (they join a result to its call: read as
    none, the result would become a step of its own and the call would observe nothing).

    Raises:
        ImportFormatError: naming the field, e.g. ``$.samples[0].messages[2].role``.
    """
    for j, m in enumerate(messages):
        field = f"{where}.messages[{j}]"
        if not isinstance(m, dict):
            raise ImportFormatError(path, field, f"expected a message object, found {shown(m)}")
        if m.get("role") not in _ROLES:  # inspect_ai's ChatMessage roles (inspect_ai.model._chat_message)
            raise ImportFormatError(path, f"{field}.role", "expected the role (system, user, assistant or tool), "
                                    f"found {shown(m.get('role'))}")
        content = m.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise ImportFormatError(path, f"{field}.content", "expected text or a list of content parts, found "
                                    f"{shown(content)}")
        if m["role"] == "tool" and m.get("tool_call_id") is not None and not isinstance(m["tool_call_id"], str):
            raise ImportFormatError(path, f"{field}.tool_call_id", "expected the id of the call it answers (text) "
                                    f"or null, found {shown(m['tool_call_id'])}")
        calls = m.get("tool_calls")
        for k, call in enumerate(calls if isinstance(calls, list) else ()):
            if isinstance(call, dict) and call.get("id") is not None and not isinstance(call["id"], str):
                raise ImportFormatError(path, f"{field}.tool_calls[{k}].id", "expected the call's id (text) or "
                                        f"null, found {shown(call['id'])}")


def _json_member(z: zipfile.ZipFile, path: Path, name: str) -> Any:
    try:
        return json.loads(z.read(name))
    except ValueError as exc:
        raise ImportFormatError(path, name, f"invalid JSON in archive member: {exc}") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ImportFormatError(path, name, f"cannot read archive member: {exc}") from None


def _resolve(text: str | None, attachments: dict[str, Any]) -> str | None:
    # Inspect stores long strings once, as "attachment://<hash>" references into the sample's attachments.
    if isinstance(text, str) and text.startswith("attachment://"):
        return attachments.get(text[len("attachment://"):], text)
    return text


def _content_text(content: Any, attachments: dict[str, Any] | None = None) -> str | None:
    if isinstance(content, str):
        return _resolve(content, attachments or {})
    if isinstance(content, list):
        parts = [_resolve(p.get("text"), attachments or {}) for p in content
                 if isinstance(p, dict) and p.get("type") == "text"]
        return "\n".join(p for p in parts if p)
    return None


def _reasoning(content: Any) -> str | None:
    if isinstance(content, list):
        parts = [p.get("reasoning") for p in content if isinstance(p, dict) and p.get("type") == "reasoning"]
        return "\n".join(p for p in parts if isinstance(p, str)) or None
    return None


def _input_text(inp: Any, attachments: dict[str, Any]) -> str | None:
    if isinstance(inp, str):
        return _resolve(inp, attachments)
    if isinstance(inp, list):
        return "\n\n".join(t for t in (_content_text(m.get("content"), attachments) for m in inp
                                       if isinstance(m, dict) and m.get("role") == "user") if t)
    return None


def _prompt(messages: list[Any], attachments: dict[str, Any], role: str = "user") -> str | None:
    """The text of the messages of ``role`` before the first assistant turn: the prompt (``user``; a message of
    another role but ``system`` is included, marked ``[role]``) or the system prompt (``system``)."""
    out = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") == "assistant":
            break
        if (m.get("role") == "system") != (role == "system"):
            continue
        text = _content_text(m.get("content"), attachments)
        if text:
            out.append(text if m.get("role") in ("user", "system") else f"[{m.get('role')}] {text}")
    return "\n\n".join(out) or None


def _called_tools(messages: list[Any]) -> list[dict[str, Any]]:
    """Schemas of the tools the assistant messages call (for a log without model events, whose tool lists are
    not there), from the calls' function names and argument names."""
    seen = SeenTools("the Inspect solver")
    for m in messages:
        if isinstance(m, dict) and m.get("role") == "assistant" and isinstance(m.get("tool_calls"), list):
            for c in m["tool_calls"]:
                if isinstance(c, dict):
                    seen.add(c.get("function"), c.get("arguments"))
    return seen.schemas()


def _pair_results(messages: list[Any]) -> tuple[dict[int, tuple[bool, list[Any]]], set[int]]:
    """Which tool messages answer which assistant turn: ``({turn's message index: (by id, [tool messages])},
    {indexes of the tool messages no turn asked for})``.

    By id (each call's result looked up by its ``tool_call_id``, anywhere in the sample; a call with none gets
    None) when every call of the turn has an id, no two share one and no two tool messages answer one id;
    otherwise (ids missing or repeated) the turn's results are the tool messages after it, up to the next
    assistant turn, that name none of other turns' calls, every one of them in order (positional). A tool message
    neither way takes is no turn's: it is kept as its own step (``_steps``)."""
    ids_of: dict[int, list[Any]] = {}
    count: dict[Any, int] = {}
    for j, m in enumerate(messages):
        if isinstance(m, dict) and m.get("role") == "assistant" and isinstance(m.get("tool_calls"), list):
            ids_of[j] = [c.get("id") if isinstance(c, dict) else None for c in m["tool_calls"]]
        elif isinstance(m, dict) and m.get("role") == "tool" and _hashable(m.get("tool_call_id")):
            count[m.get("tool_call_id")] = count.get(m.get("tool_call_id"), 0) + 1
    called = {cid for ids in ids_of.values() for cid in ids if _hashable(cid)}
    where = {m.get("tool_call_id"): j for j, m in enumerate(messages)
             if isinstance(m, dict) and m.get("role") == "tool" and _hashable(m.get("tool_call_id"))}
    answers: dict[int, tuple[bool, list[Any]]] = {}
    taken: set[int] = set()
    for j, ids in ids_of.items():
        if not ids:
            continue
        if (all(isinstance(c, str) and c for c in ids) and len(set(ids)) == len(ids)
                and all(count.get(c, 0) <= 1 for c in ids)):
            answers[j] = (True, [messages[where[c]] if c in where else None for c in ids])
            taken.update(where[c] for c in ids if c in where)
    for j, ids in ids_of.items():
        if not ids or j in answers:
            continue
        got = []
        for k in range(j + 1, len(messages)):
            m = messages[k]
            if isinstance(m, dict) and m.get("role") == "assistant":
                break
            if (isinstance(m, dict) and m.get("role") == "tool" and k not in taken
                    and (not _hashable(m.get("tool_call_id")) or m.get("tool_call_id") in ids
                         or m.get("tool_call_id") not in called)):
                got.append(m)
                taken.add(k)
        answers[j] = (False, got)
    orphans = {j for j, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "tool" and j not in taken}
    return answers, orphans


def _hashable(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def _solver(plan: Any) -> list[str] | None:
    if isinstance(plan, dict) and isinstance(plan.get("steps"), list):
        return [s.get("solver") for s in plan["steps"] if isinstance(s, dict)]
    return None


def _event_index(events: list[Any]) -> dict[str, Any]:
    """Model events by the id of the message they produced, tool events by call id, the first tool list, and
    the initial state from ``sample_init``."""
    model: dict[str, Any] = {}
    tool: dict[str, Any] = {}
    tools: list[Any] = []
    state0: dict[str, Any] = {"store": {}, "task_state": {}}
    turns: list[int] = []  # event index of each model event that produced a message
    for k, ev in enumerate(events):
        if not isinstance(ev, dict):
            continue
        kind = ev.get("event")
        if kind == "model":
            out = ev.get("output") if isinstance(ev.get("output"), dict) else {}
            choices = out.get("choices") or []
            msg = choices[0].get("message") if choices and isinstance(choices[0], dict) else None
            if isinstance(msg, dict) and msg.get("id"):
                model[msg["id"]] = ev
                turns.append(k)
            if not tools and isinstance(ev.get("tools"), list):
                tools = ev["tools"]
        elif kind == "tool" and ev.get("id"):
            tool[ev["id"]] = ev
        elif kind == "sample_init" and isinstance(ev.get("state"), dict):
            st = ev["state"]
            state0 = {"store": copy.deepcopy(st.get("store") or {}),
                      "task_state": {k2: copy.deepcopy(v) for k2, v in st.items() if k2 not in ("messages", "store")}}
    return {"model": model, "tool": tool, "tools": tools, "state0": state0, "turns": turns}


def _state_patches(events: list[Any], turns: list[int]) -> tuple[dict[str, Any], dict[int, list[tuple[str, Any]]]]:
    """The state before the first turn, and the patches of ``store``/``state`` events by the turn they follow."""
    import bisect

    by_turn: dict[int, list[tuple[str, Any]]] = {}
    for k, ev in enumerate(events):
        if not isinstance(ev, dict) or ev.get("event") not in ("store", "state"):
            continue
        ops = ev.get("changes")
        if not isinstance(ops, list):
            continue
        kind = "store" if ev["event"] == "store" else "task_state"
        if kind == "task_state":
            ops = [op for op in ops if isinstance(op, dict) and not str(op.get("path", "")).startswith("/messages")
                   and not str(op.get("path", "")).startswith("/store")]
            if not ops:
                continue
        # Changes before the first model turn belong to the first step's state.
        n = max(bisect.bisect_right(turns, k) - 1, 0)
        by_turn.setdefault(n, []).append((kind, ops))
    return {"store": {}, "task_state": {}}, by_turn


def _apply_patch(doc: Any, ops: list[dict[str, Any]], path: Path, field: str) -> Any:
    """Apply RFC 6902 JSON Patch operations (add, remove, replace, move, copy; test is skipped) to ``doc``."""
    for op in ops:
        try:
            kind = op["op"]
            parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
            if kind in ("move", "copy"):
                src = [p.replace("~1", "/").replace("~0", "~") for p in op["from"].split("/")[1:]]
                value = copy.deepcopy(_get(doc, src))
                if kind == "move":
                    doc = _remove(doc, src)
                doc = _add(doc, parts, value)
            elif kind == "add":
                doc = _add(doc, parts, copy.deepcopy(op.get("value")))
            elif kind == "replace":
                doc = _remove(doc, parts)
                doc = _add(doc, parts, copy.deepcopy(op.get("value")))
            elif kind == "remove":
                doc = _remove(doc, parts)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ImportFormatError(path, f"{field} (state patch {shown(op, 80)})", f"cannot apply JSON Patch: {exc!r}") from None
    return doc


def _get(doc: Any, parts: list[str]) -> Any:
    for p in parts:
        doc = doc[int(p)] if isinstance(doc, list) else doc[p]
    return doc


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _get(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            parent.insert(int(last), value)
    else:
        parent[last] = value
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return None
    parent = _get(doc, parts[:-1])
    if isinstance(parent, list):
        del parent[int(parts[-1])]
    else:
        parent.pop(parts[-1], None)
    return doc
