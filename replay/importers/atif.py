"""Harbor ATIF ``trajectory.json`` files (Agent Trajectory Interchange Format, schema versions ATIF-v1.0 to v1.x).

Layout (Harbor's ``docs/rfcs/0001-trajectory-format.md`` and ``harbor.models.trajectories``): ``schema_version``,
``session_id``, ``trajectory_id``, ``agent`` (name, version, model_name, tool_definitions, extra), ``steps``
(``step_id``, ``timestamp``, ``source``: system/user/agent, ``message``, ``reasoning_content``, ``tool_calls``
``[{tool_call_id, function_name, arguments}]``, ``observation.results`` ``[{source_call_id, content}]``,
``metrics``, ``extra``), ``notes``, ``final_metrics``, ``extra``, ``continued_trajectory_ref``,
``subagent_trajectories``.

Mapping: the user steps before the first agent step are the task prompt (the reset observation; the first user
message is the task text), the system steps there the system prompt (``reset.info["system"]``); all of them are
kept whole in ``reset.info["atif_lead"]`` for the ATIF export. The reset info's ``tools`` are
``agent.tool_definitions`` plus a schema made from the calls for each tool the steps call that they lack
(``base.SeenTools``); the file's own definitions stay in ``provenance.atif.tool_definitions``. One trajrec step per
agent step: its tool calls stay together (action =
``{"tool", "args", "id"}`` or a list of them; observation = the result, or ``[{tool_call_id, content}]``); a step
with no tool call has action ``{"message": text}``. thought = ``message``, ``reasoning_content``, model,
``metrics`` (tokens, cost) and the step's ``extra`` go in the note. User or system steps between agent steps are
kept, in order, in the next agent step's ``note.atif_before`` (the ones after the last agent step in its
``note.atif_after``), so ``trajrec export --format atif`` writes them back. A result whose ``extra`` says
``is_error``/``error`` sets ``info["error"]`` (the classifier's tool-error rule). Rewards in ``final_metrics.extra``
or the root ``extra`` (``reward``, ``rewards``) become episode checks (judge ``atif:reward``; a reward 1/1.0 is a
pass, 0/0.0 a fail, as Harbor's verifiers write them; other values as they are, the number as the ``score``);
``final_metrics`` itself is kept in provenance. A file trajrec exported gives back its recorded checks and the
run's labels (root ``extra.trajrec.labels``) as checks, each with its ``label_id``, which the summary never takes
for the terminal check (a label does not decide the outcome in its run either: the outcome and the training labels
stay those of the labeled run, FINDINGS32 #7); the gaps of a partial episode it exported with ``--keep-partial`` (root ``extra.trajrec.lost``) come back
as the recorder writes a lost write (``recorder_errors`` ``lost_steps`` on the step after each gap, the summary's
``lost_steps`` for those after the last), so the imported episode is not whole either (:func:`_lost`). The ``steps`` array is streamed (read twice: the first reading also notes the tools called).

End state: ATIF has no field for how a run ended, and a trajectory file is a finished run, so the last agent step
is ``terminated`` (the episode's outcome: ``terminated``, or ``passed``/``failed`` from a reward check's verdict),
or ``truncated`` when an exit status under ``extra``/``final_metrics.extra`` (``exit_status``, ``stop_reason``,
...) names a limit. Never ``stopped``: that outcome means a recording cut short (Ctrl-C).
"""

from __future__ import annotations

import io
import json
import math
import os
import re
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from ..exports.encode import INT_MARKER, tool_names
from .base import ImportedEpisode, ImportedStep, Importer, SeenTools, SourceFile, open_text, parse_time
from .jsonstream import ImportFormatError, JsonStream, shown

_STEP_KNOWN = ("step_id", "timestamp", "source", "model_name", "reasoning_effort", "message", "reasoning_content",
               "tool_calls", "observation", "metrics", "is_copied_context", "llm_call_count", "extra")
_SOURCES = ("system", "user", "agent")
_LINE_PROBE = 1 << 20  # a first line up to this long that is a whole JSON object makes a lines file


def _whole_object(line: str) -> bool:
    """True when ``line`` holds one whole JSON object (the first line of a lines file; a pretty-printed
    trajectory's first line is ``{``)."""
    if not line.lstrip().startswith("{") or len(line) > _LINE_PROBE:
        return False
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


class AtifImporter(Importer):
    name = "atif"
    description = "Harbor ATIF trajectory.json files (ATIF-v1.x)"
    suffixes = (".json",)
    folder_files = ("*.json", "*.json.gz", "*.jsonl", "*.jsonl.gz")

    @classmethod
    def detect(cls, path: Path, head: bytes) -> str | None:
        m = re.search(r'"schema_version"\s*:\s*"(ATIF-v[0-9.]+)"', head.decode("utf-8", "replace"))
        return f"schema_version {m.group(1)!r} (Harbor ATIF)" if m else None

    def read(self, source: SourceFile) -> Iterator[ImportedEpisode]:
        path = source.path
        with open_text(path, self.description) as fh:
            first = fh.readline(_LINE_PROBE + 1)
            while first and not first.strip():  # blank lines before the first trajectory
                first = fh.readline(_LINE_PROBE + 1)
        if path.name.endswith((".jsonl", ".jsonl.gz")) or _whole_object(first):
            # One trajectory per line (``trajrec export --format atif --out x.jsonl``): each line an episode, read
            # one line at a time (memory: the longest line).
            with open_text(path, self.description) as fh:
                for n, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    text = line
                    yield self._read_doc(path, f"{path} line {n}", lambda text=text: io.StringIO(text), f"line {n}")
            return
        yield self._read_doc(path, os.fspath(path), lambda: open_text(path, self.description), "steps")

    def _read_doc(self, path: Path, label: str, opener: Callable[[], IO[str]], where: str) -> ImportedEpisode:
        """One trajectory document: ``opener`` opens its text (read twice: the small members, then the steps
        streamed); ``label`` names it in errors (the file, and its line in a lines file)."""
        top: dict[str, Any] = {}
        lead: list[dict[str, Any]] = []  # user/system steps before the first agent step
        seen = SeenTools("the ATIF trajectory's agent")
        with opener() as fh:
            s = JsonStream(fh, label)
            if s.kind() != "object":
                raise ImportFormatError(label, "$", "not an ATIF trajectory: expected a JSON object with "
                                        "schema_version 'ATIF-v1.x', agent and steps")
            for key in s.keys():
                if key == "steps":
                    top["steps"] = True
                    in_lead = True
                    for i, step in s.items():
                        if not isinstance(step, dict):
                            raise ImportFormatError(label, f"$.steps[{i}]", "expected a step object")
                        _check_message(label, f"$.steps[{i}]", step)
                        if step.get("source") == "agent":
                            # The agent's steps are streamed by the second reading; this one only notes the tools
                            # their calls name (declared in the reset info, read before the steps).
                            in_lead = False
                            for c in step.get("tool_calls") or () if isinstance(step.get("tool_calls"), list) else ():
                                if isinstance(c, dict):
                                    seen.add(c.get("function_name"), c.get("arguments"))
                        elif in_lead:
                            lead.append(step)
                    # (no agent step: an episode of the prompt alone)
                elif key == "subagent_trajectories":
                    s.skip()
                    self.fields.kept("subagent_trajectories")
                    top["subagent_trajectories"] = "not imported (embedded subagent trajectories)"
                else:
                    top[key] = s.value()
            if s.kind() != "end":
                raise ImportFormatError(label, None, "more than one JSON value: a file of one trajectory per line "
                                        "must be named .jsonl (its first line is longer than 1 MiB)")
        version = top.get("schema_version")
        if not isinstance(version, str) or not version.startswith("ATIF-v"):
            raise ImportFormatError(label, "$.schema_version", f"not an ATIF trajectory: schema_version is {version!r}, "
                                    "expected 'ATIF-v1.x'")
        if "steps" not in top:
            raise ImportFormatError(label, "$.steps", "an ATIF trajectory needs a 'steps' array")
        agent_obj = top.get("agent")
        if not isinstance(agent_obj, dict) or not isinstance(agent_obj.get("name"), str):
            raise ImportFormatError(label, "$.agent.name", "an ATIF trajectory needs agent.name (text)")
        f = self.fields
        texts = [_text(st.get("message")) for st in lead if st.get("source") == "user"]
        task_text = texts[0] if texts else None
        # The user steps are the prompt; the system steps the system prompt, in the reset info's "system" as the
        # other importers keep it (the chat exports write it as the system message), not folded into the prompt.
        prompt = "\n\n".join(t for t in (_text(st.get("message")) for st in lead
                                          if st.get("source") == "user") if t) or None
        system = "\n\n".join(t for t in (_text(st.get("message")) for st in lead
                                          if st.get("source") == "system") if t) or None
        task = {"id": top.get("trajectory_id") or top.get("session_id") or path.parent.name or path.stem,
                "text": task_text, "verification": []}
        name = str(task["id"])
        own = _own(top.get("extra"))
        if own is not None:
            # Exported by trajrec: its task, checks (terminal verdict) and per-step failures are in extra.trajrec.
            mine = own.get("task") if isinstance(own.get("task"), dict) else {}
            task.update({k: mine[k] for k in ("id", "text", "split") if mine.get(k) is not None})
            self.fields.mapped("extra.trajrec.task (id, text, split)", "task")
        f.mapped("steps[source=user][0].message", "task.text")
        f.mapped("steps[source=user before the first agent step]", "reset.observation (+ reset.info.atif_lead)")
        if system:
            f.mapped("steps[source=system before the first agent step]", "reset.info.system")
        agent = {"name": agent_obj["name"], "version": agent_obj.get("version"), "model": agent_obj.get("model_name"),
                 "extra": agent_obj.get("extra")}
        f.mapped("agent.name/version/model_name", "provenance.agent")
        declared = agent_obj.get("tool_definitions")
        # Calls of tools the file does not define are declared from the calls (as every importer does), so the
        # exports read them as calls; the file's own definitions are kept apart for the ATIF export.
        tools = [*(declared if isinstance(declared, list) else ()),
                 *seen.schemas(tool_names(declared if isinstance(declared, list) else ()))] or declared
        if isinstance(declared, list) and len(tools) > len(declared) or declared is None and tools:
            f.mapped("steps[agent].tool_calls[].function_name (not in tool_definitions)",
                     "reset.info.tools (declared from the calls)")
        final_metrics = top.get("final_metrics")
        if final_metrics is not None and not isinstance(final_metrics, dict):
            raise ImportFormatError(label, "$.final_metrics",
                                    f"expected an object of totals, found {shown(final_metrics)}")
        check_numbers(label, "$.final_metrics", final_metrics or {}, _FINAL_NUMBERS)
        extra = {k: top[k] for k in ("notes", "extra", "continued_trajectory_ref", "subagent_trajectories")
                 if top.get(k) not in (None, {}, "")}
        for k in extra:
            f.kept(k)
        atif = {"schema_version": version, "session_id": top.get("session_id"),
                "trajectory_id": top.get("trajectory_id"), "final_metrics": final_metrics,
                "tool_definitions": declared}
        f.mapped("schema_version/session_id/trajectory_id/final_metrics", "provenance.atif")

        gaps = _lost(label, own)  # (place in the recording's step numbers, count, why), in step order
        pending = list(gaps)
        if gaps:
            f.mapped("extra.trajrec.lost", "step.recorder_errors / summary.lost_steps (the episode is not whole)")
        end_status = _end_status(top, final_metrics)
        if end_status is not None:
            f.mapped("extra/final_metrics.extra exit status", "last step terminated or truncated (a limit)")

        def steps() -> Iterator[ImportedStep]:
            with opener() as fh:
                s = JsonStream(fh, label)
                for key in s.keys():
                    if key != "steps":
                        continue
                    before: list[dict[str, Any]] = []
                    seen_agent = False
                    held: ImportedStep | None = None  # one step of lookahead: trailing user steps join the last
                    for i, st in s.items():
                        field = f"$.steps[{i}]"
                        if not isinstance(st, dict):
                            raise ImportFormatError(label, field, "expected a step object")
                        src = st.get("source")
                        if src not in _SOURCES:
                            raise ImportFormatError(label, f"{field}.source",
                                                    f"expected one of {', '.join(_SOURCES)}, found {shown(src)}")
                        if src != "agent":
                            if seen_agent:
                                before.append(st)
                            continue
                        seen_agent = True
                        if held is not None:
                            yield held
                        held = self._step(label, field, st, before, (own or {}).get("labels"))
                        mine = _own(st.get("extra"))
                        at = (mine or {}).get("step")
                        if pending and type(at) is int:  # the gaps the recording had right before this step
                            while pending and pending[0][0] is not None and pending[0][0] <= at:
                                _place, n, why = pending.pop(0)
                                held.lost_before += n
                                held.lost_why = "; ".join(w for w in (held.lost_why, why) if w)
                        before = []
                    if held is not None:
                        if before:
                            assert held.note is not None
                            held.note["atif_after"] = before
                            f.mapped("steps[user/system after the last agent step]", "last step.note.atif_after")
                        if own is None:  # trajrec's own export carries each step's end flags as recorded
                            _end(held, end_status)
                        yield held

        def checks() -> list[dict[str, Any]]:
            out = []
            for where, obj in (("final_metrics.extra", (final_metrics or {}).get("extra")
                                if isinstance(final_metrics, dict) else None), ("extra", top.get("extra"))):
                if not isinstance(obj, dict) or own is not None:
                    # (trajrec's own export: its recorded checks, the reward checks of an ATIF import among
                    # them, are in extra.trajrec.checks; read here too they would be there twice)
                    continue
                rewards = obj.get("rewards") if isinstance(obj.get("rewards"), dict) else {}
                if "reward" in obj:
                    rewards = {"reward": obj["reward"], **rewards}
                for name, value in rewards.items():
                    f.mapped(f"{where}.reward(s)", "checks[judge=atif:reward]")
                    number = isinstance(value, (int, float)) and not isinstance(value, bool)
                    out.append({"target": "episode", "kind": "environment", "judge": f"atif:{name}",
                                "value": _reward_verdict(value), "score": value if number else None,
                                "rationale": f"ATIF {where}.{name}"
                                + (f" = {value!r} (1 = pass, 0 = fail)" if number and value in (0, 1) else "")})
            # The run's labels first (each keeps its label_id: the summary never takes such a check for the
            # terminal one, so the recorded verdict, or none, stays the outcome, as in the labeled run).
            for c in _own_labels(own):
                f.mapped("extra.trajrec.labels", "checks (the run's labels: come back as checks, not label records)")
                out.append(c)
            for c in (own or {}).get("checks") or ():
                if isinstance(c, dict) and c.get("kind") is not None and c.get("judge") is not None:
                    f.mapped("extra.trajrec.checks", "checks (as recorded: step and episode checks)")
                    out.append({k: c[k] for k in ("target", "kind", "judge", "value", "score", "rationale") if k in c})
            return out

        return ImportedEpisode(task=task, agent=agent, reset_observation=prompt,
                              reset_info={k: v for k, v in (("tools", tools), ("system", system), ("atif_lead", lead))
                                          if v},
                              reset_time=parse_time(lead[0].get("timestamp"), path=label,
                                                    field_name="$.steps[0].timestamp") if lead else None,
                              steps=steps(), checks=checks, where=where, name=name, extra=extra,
                              provenance={"atif": atif},
                              # (read after the steps: what no step took is lost after the last one)
                              lost_after=lambda: sum(n for _place, n, _why in pending))

    def _step(self, path: str, field: str, st: dict[str, Any], before: list[dict[str, Any]],
              labels_at_root: Any = None) -> ImportedStep:
        f = self.fields
        calls = st.get("tool_calls") or []
        if not isinstance(calls, list):
            raise ImportFormatError(path, f"{field}.tool_calls", "expected a list of tool calls")
        actions = []
        for k, c in enumerate(calls):
            if not isinstance(c, dict) or not isinstance(c.get("function_name"), str):
                raise ImportFormatError(path, f"{field}.tool_calls[{k}].function_name", "expected the tool name (text)")
            cid = c.get("tool_call_id")
            if cid is not None and (not isinstance(cid, (str, int)) or isinstance(cid, bool)):
                raise ImportFormatError(path, f"{field}.tool_calls[{k}].tool_call_id",
                                        f"expected the call's id (text), found {shown(cid)}")
            actions.append({"tool": c["function_name"], "args": c.get("arguments") if c.get("arguments") is not None
                            else {}, "id": _id(cid)})
            if c.get("extra"):
                actions[-1]["extra"] = c["extra"]
        f.mapped("steps[agent].tool_calls", "step.action (calls of one step together)")
        obs = st.get("observation")
        results = obs.get("results") if isinstance(obs, dict) else None
        if obs is not None and not isinstance(results, list):
            raise ImportFormatError(path, f"{field}.observation.results", "expected a list of results")
        results = results or []
        # ATIF's types (Harbor's models): a wrong one is refused naming the field, never read as nothing (the
        # message's own type: checked for every step by the first reading)
        for key, types, what in (("reasoning_content", str, "text"), ("model_name", str, "text"),
                                 ("extra", dict, "an object")):
            if st.get(key) is not None and not isinstance(st[key], types):
                raise ImportFormatError(path, f"{field}.{key}", f"expected {what} or null, found {shown(st[key])}")
        for k, r in enumerate(results):
            where = f"{field}.observation.results[{k}]"
            if not isinstance(r, dict):
                raise ImportFormatError(path, where, f"expected a result object, found {shown(r)}")
            if r.get("content") is not None and not isinstance(r["content"], (str, list)):
                raise ImportFormatError(path, f"{where}.content", f"expected text or a list of content parts, "
                                        f"found {shown(r['content'])}")
            sid = r.get("source_call_id")
            if sid is not None and (not isinstance(sid, (str, int)) or isinstance(sid, bool)):
                raise ImportFormatError(path, f"{where}.source_call_id", f"expected the call's id (text), "
                                        f"found {shown(sid)}")
        info: dict[str, Any] = {}
        errors = []
        for r in results:
            rx = r.get("extra") if isinstance(r, dict) and isinstance(r.get("extra"), dict) else {}
            if rx.get("is_error") or rx.get("error"):
                errors.append(str(rx.get("error") or _text(r.get("content")) or "error")[:500])
        if errors:
            info["error"] = "; ".join(errors)
        message = _text(st.get("message"))
        if not actions:
            action: Any = {"message": message}
        else:
            action = actions[0] if len(actions) == 1 else actions
        if not results:
            observation: Any = None
        elif len(results) == 1 and (len(actions) <= 1):
            observation = _text(results[0].get("content")) if isinstance(results[0], dict) else None
        else:
            observation = [{"tool_call_id": _id(r.get("source_call_id")), "content": _text(r.get("content"))}
                           for r in results]
        f.mapped("steps[agent].observation.results", "step.observation")
        note: dict[str, Any] = {"thought": message, "step_id": st.get("step_id")}
        if not isinstance(st.get("message"), str) and st.get("message") is not None:
            note["content_parts"] = st["message"]
        metrics = st.get("metrics")
        if metrics is not None and not isinstance(metrics, dict):
            raise ImportFormatError(path, f"{field}.metrics", f"expected an object of token counts and cost, "
                                    f"found {shown(metrics)}")
        if isinstance(metrics, dict):  # kept whole for the ATIF export; tokens and cost also as the model call
            check_numbers(path, f"{field}.metrics", metrics, _STEP_NUMBERS)
            note["usage"] = {k: int(metrics[k]) for k in ("prompt_tokens", "completion_tokens", "cached_tokens")
                             if metrics.get(k) is not None}
            if isinstance(metrics.get("cost_usd"), (int, float)):
                note["cost"] = metrics["cost_usd"]
            f.mapped("steps[agent].metrics", "step.note.model_call (usage, cost) + note.metrics")
        for k, target in (("reasoning_content", "reasoning"), ("model_name", "model"),
                          ("reasoning_effort", "reasoning_effort"), ("metrics", "metrics"), ("extra", "extra"),
                          ("is_copied_context", "is_copied_context"), ("llm_call_count", "llm_call_count")):
            if st.get(k) is not None:
                note[target] = st[k]
                f.mapped(f"steps[agent].{k}", f"step.note.{target}")
        if actions:
            note["call_ids"] = [a["id"] for a in actions]
        if len(results) == 1 and isinstance(results[0], dict) and len(actions) <= 1:
            # The result's other fields, exactly (even none: a result without source_call_id stays without).
            note["result"] = {k: v for k, v in results[0].items() if k != "content"}
        if before:
            note["atif_before"] = before
            f.mapped("steps[user/system between agent steps]", "next step.note.atif_before")
        for k in st:
            if k not in _STEP_KNOWN:
                f.kept(f"steps[].{k}")
                note.setdefault("extra_fields", {})[k] = st[k]
        t = parse_time(st.get("timestamp"), path=path, field_name=f"{field}.timestamp")
        step = ImportedStep(action=action, observation=observation, info=info, time=t, note=note)
        own = _own(st.get("extra"))
        if own is not None:
            # Exported by trajrec: the step's own verdict (failure or none), reward and end flags, as recorded.
            # retry_of/recovers follow from the failures through the same classifier.
            step.failure = own["failure"] if isinstance(own.get("failure"), dict) else False  # type: ignore[assignment]
            step.reward = _reward(own.get("reward"))
            step.terminated = bool(own.get("terminated"))
            step.truncated = bool(own.get("truncated"))
            made = own.get("made_call_ids")
            if isinstance(made, list) and actions:
                # Ids the export made up (the recorded action had none): the action gets none back either, so a
                # re-export writes the same text for it; the export makes the same ids again.
                gone = set()
                for k in made:
                    if isinstance(k, int) and not isinstance(k, bool) and 0 <= k < len(actions):
                        gone.add(actions[k].pop("id", None))
                        note["call_ids"][k] = None
                gone.discard(None)
                if isinstance(observation, list) and gone:
                    # The results named those calls by the made-up ids: they lose them too (the recording's
                    # results had none), so chat pairs them by position again, as it did the recording.
                    for o in observation:
                        if o["tool_call_id"] in gone:
                            o["tool_call_id"] = None
                    step.observation = observation
                if not any(note["call_ids"]):
                    del note["call_ids"]
            retry_of, recovers = own.get("retry_of"), own.get("recovers")
            step.links = (retry_of if isinstance(retry_of, int) and not isinstance(retry_of, bool) else None,
                          [r for r in recovers if isinstance(r, int)] or None if isinstance(recovers, list) else None)
            label = own.get("label")
            if (isinstance(label, dict) and label.get("origin") == "label" and isinstance(label.get("judge"), str)
                    and not isinstance(labels_at_root, list)):
                # A file written before the root's `labels`: the step's chosen label is all there is of the
                # run's labels; it comes back as a check of this step (a recorded check is in the root's checks).
                step.checks.append({"kind": label.get("kind") or "judge", "judge": label["judge"],
                                    "value": label.get("value"), "rationale": label.get("rationale")})
                f.mapped("steps[agent].extra.trajrec.label", "step.checks (the chosen label, as a check)")
            rest = {k: v for k, v in st["extra"].items() if k != "trajrec"}
            if rest:
                note["extra"] = rest
            else:
                note.pop("extra", None)
            f.mapped("steps[agent].extra.trajrec (failure, reward, terminated, truncated, retry_of, recovers)", "step")
        return step


#: The numeric fields of a step's ``metrics`` and of ``final_metrics`` (Harbor's ``Metrics``/``FinalMetrics``
#: models): name -> True for a token or step count (a whole number), False for US dollars.
_STEP_NUMBERS = {"prompt_tokens": True, "completion_tokens": True, "cached_tokens": True, "cost_usd": False}
_FINAL_NUMBERS = {"total_prompt_tokens": True, "total_completion_tokens": True, "total_cached_tokens": True,
                  "total_steps": True, "total_cost_usd": False}


def check_numbers(label: str, where: str, obj: dict[str, Any], fields: dict[str, bool]) -> None:
    """Refuse a count or cost that is not a number (a list, text, a bool, NaN, a negative or fractional count).

    They are summed (the summary, ``ls``, the ATIF export's ``final_metrics``), so a value of another type would
    only fail later, far from its file; null means unknown and is allowed.

    Raises:
        ImportFormatError: naming the file and the field, e.g. ``$.steps[2].metrics.completion_tokens``.
    """
    for key, whole in fields.items():
        v = obj.get(key)
        if v is None:
            continue
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 \
            and (not whole or float(v).is_integer())
        if not ok:
            raise ImportFormatError(label, f"{where}.{key}",
                                    f"expected {'a whole number' if whole else 'a number of US dollars'} >= 0 "
                                    f"or null, found {shown(v)}")


#: Keys under the root ``extra`` or ``final_metrics.extra`` that some ATIF writers use for how the run ended.
_END_KEYS = ("exit_status", "stop_reason", "termination_reason", "finish_reason")
#: Words in such a status that mean a limit cut the run short (a step, cost, time or context budget).
_LIMIT_WORDS = ("limit", "exceeded", "timeout", "time_out", "timed_out", "max_", "budget", "exit_cost",
                "exit_context", "truncat")


def _end_status(top: dict[str, Any], final_metrics: Any) -> str | None:
    """How the source says the run ended, when it says (ATIF itself has no field for it)."""
    fm_extra = final_metrics.get("extra") if isinstance(final_metrics, dict) else None
    for obj in (top.get("extra"), fm_extra):
        if isinstance(obj, dict):
            for key in _END_KEYS:
                if isinstance(obj.get(key), str) and obj[key].strip():
                    return obj[key]
    return None


def _end(step: ImportedStep, status: str | None) -> None:
    """Mark the last agent step as the end of the episode.

    A trajectory file is a finished run: ATIF records no end state, so its last agent step ends the episode
    (``terminated``; outcome ``terminated`` unless a reward check gives a verdict), never ``stopped``, which
    means a recording cut short by Ctrl-C. An exit status naming a limit (``LimitsExceeded``, ``max_steps``,
    ``exit_cost``, ...) truncates it instead.
    """
    if step.terminated or step.truncated:
        return
    low = (status or "").lower()
    if any(w in low for w in _LIMIT_WORDS):
        step.truncated = True
        step.info = {**step.info, "exit_status": status}
    else:
        step.terminated = True
        if status is not None:
            step.info = {**step.info, "exit_status": status}


def _reward_verdict(value: Any) -> Any:
    """A reward as a check value: ``1``/``1.0`` is a pass (True), ``0``/``0.0`` a fail (False), as Harbor's
    verifiers write a task's result (``{"reward": 1.0}``); anything else is kept as it is: booleans and words, a
    fraction such as 0.5 (a score: no verdict), a whole number such as -1 or 2 (read as trajrec's rating, a fail
    or a pass: ``recorder.model.verdict``). The number as written stays the check's ``score`` (and the source's
    ``extra`` is kept whole in the provenance).

    >>> [_reward_verdict(v) for v in (1.0, 0, 0.0, True, 0.5, -1, "pass")]
    [True, False, False, True, 0.5, -1, 'pass']
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value in (0, 1):
        return value == 1
    return value


def _reward(v: Any) -> Any:
    """A reward as ``trajrec export`` wrote it, read back: its ``{"$int": "<digits>"}`` marker (an int beyond 64
    bits, ``replay/exports/encode.py``) becomes the int again; anything else is kept as it is."""
    if type(v) is dict and len(v) == 1 and isinstance(v.get(INT_MARKER), str):
        digits = v[INT_MARKER]
        if digits.lstrip("-").isdigit() and digits.isascii():
            try:
                return int(digits)
            except ValueError:  # beyond Python's int-from-text digit limit: kept as written
                return v
    return v


_LABEL_KEYS = ("kind", "judge", "value", "score", "rationale", "tags", "author", "time", "label_id")


def _own_labels(own: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The run's live labels an ATIF file written by ``trajrec export`` carries (root ``extra.trajrec.labels``), as
    checks: the same target (``step``: a step index, null for the episode), kind, judge, value (``value_json``: its
    JSON text), time (the newest
    of one judge wins), author; the label's id as ``label_id``. Entries without a judge or a ``step`` member are
    passed over (not a label this writer makes)."""
    out = []
    labels = (own or {}).get("labels")
    for c in labels if isinstance(labels, list) else ():
        if isinstance(c, dict) and isinstance(c.get("judge"), str) and "step" in c:
            step = c["step"]
            target = step if isinstance(step, int) and not isinstance(step, bool) and step >= 0 else "episode"
            label = {"target": target, **{k: c[k] for k in _LABEL_KEYS if k in c}}
            if isinstance(c.get("value_json"), str):  # the value as its JSON text (one type for every row)
                try:
                    label["value"] = json.loads(c["value_json"])
                except ValueError:
                    label["value"] = c["value_json"]
            out.append(label)
    return out


def _lost(label: str, own: dict[str, Any] | None) -> list[tuple[int | None, int, str]]:
    """The gaps of a partial episode ``trajrec export --keep-partial`` wrote (root ``extra.trajrec.lost``, the
    exports' ``lost`` field: ``[first, count]`` for steps lost to damage, count null: to the end, or ``{"before": k,
    "n": count}`` for env steps a failed write kept out), as ``(place, count, why)``: the count lost right before
    the recording's step ``place`` (None: after the last). A count null (damage to the end, how much unknown)
    counts 1: at least one step may be lost.

    Raises:
        ImportFormatError: ``lost`` is not a list of such entries (the mark that the episode is not whole would be
            read as absent), naming its JSON path.
    """
    if own is None or own.get("lost") is None:
        return []
    lost = own["lost"]
    where = "$.extra.trajrec.lost"
    if not isinstance(lost, list):
        raise ImportFormatError(label, where, f"expected a list of lost-step entries, found {shown(lost)}")
    out: list[tuple[int | None, int, str]] = []
    for k, g in enumerate(lost):
        def count(v: Any) -> bool:
            return type(v) is int and v >= 0
        if isinstance(g, list) and len(g) == 2 and count(g[0]) and (g[1] is None or count(g[1])):
            first, n = g
            span = f"steps {first}.." + ("the end" if n is None else f"{first + n - 1}")
            # the next step written is the first one past the damage: it comes before it
            out.append((first, 1 if n is None else n, f"{span} of the exported recording lost to damage"))
        elif isinstance(g, dict) and count(g.get("n")) and (g.get("before") is None or count(g.get("before"))):
            out.append((g.get("before"), g["n"], f"{g['n']} env steps of the exported recording not written"))
        else:
            raise ImportFormatError(label, f"{where}[{k}]", "expected [first step, count] or {\"before\": step, "
                                    f"\"n\": count}} (trajrec's lost field), found {shown(g)}")
    out = [g for g in out if g[1] > 0]
    out.sort(key=lambda g: (g[0] is None, g[0] or 0, g[2].startswith("steps ")))  # unwritten before k first
    return out


def _own(extra: Any) -> dict[str, Any] | None:
    """trajrec's own fields in an ``extra`` written by ``trajrec export --format atif``, else None."""
    own = extra.get("trajrec") if isinstance(extra, dict) else None
    return own if isinstance(own, dict) else None


def _check_message(path: str, field: str, st: dict[str, Any]) -> None:
    """A step's ``message`` is text, a list of content parts or null (ATIF's type): anything else is refused,
    naming the field, never read as no message."""
    message = st.get("message")
    if message is not None and not isinstance(message, (str, list)):
        raise ImportFormatError(path, f"{field}.message", f"expected text or a list of content parts, "
                                f"found {shown(message)}")


def _id(cid: Any) -> Any:
    """A call id as text (ATIF's type; an older trajrec export wrote an int ``source_call_id`` for the text
    ``tool_call_id`` of the same call), None for none."""
    return str(cid) if isinstance(cid, int) and not isinstance(cid, bool) else cid


def _text(message: Any) -> str | None:
    if isinstance(message, str):
        return message
    if isinstance(message, list):  # ATIF-v1.6 content parts
        return "\n".join(p.get("text", "") for p in message if isinstance(p, dict) and p.get("type") == "text")
    return None
