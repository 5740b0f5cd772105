"""``atif``: Harbor's Agent Trajectory Interchange Format, one trajectory per episode.

``--out DIR`` (an existing folder, or a name ending in ``/``) writes ``DIR/<episode_id>.trajectory.json`` per
episode, the one-document-per-file layout Harbor's tools read (a second file with the same episode id:
``<episode_id>-2.trajectory.json``); any other ``--out`` writes JSONL, one ATIF
trajectory per line. Field meanings follow Harbor's ``docs/rfcs/0001-trajectory-format.md`` and the
``harbor.models.trajectories`` models (``extra="forbid"``: only their fields are written).

Mapping: ``agent`` from provenance (name, version, model; the env's tool schemas from the reset info as
``tool_definitions``, an ATIF import's own definitions as it had them); a ``system`` step with the episode's system
prompt (``EpisodeView.system``: an import's, or the one a model agent's first call sent), a ``user`` step with the task prompt; then per trajrec step one ``agent`` step
(``message`` = the thought, ``reasoning_content``, ``model_name``, ``metrics`` from the note's usage and cost, failed
attempts included as the summary counts them, ``tool_calls`` with the original call ids (an imported step's, or
the model's ``note.model_call.tool_calls[].id``; else ``call_<step>_<k>``), ``observation.results`` answering
them). What is a call, which result answers which call and a text turn's message are decided by chat's own
functions (``encode.tool_call``/``tool_calls`` with the env's declared tools, ``chat.paired_calls``,
``chat.turn_text``), so the two formats state the same thing on every step and ``export atif`` → ``import atif`` →
``export chat`` gives the recording's chat rows: a list of calls chat does not pair is a text step (an ATIF import's
keeps its calls, its results naming none); anything else that is no call (a call of an undeclared tool, a
malformed call, ``{"message": text}``) is written in the message as chat writes it. Call ids are text on the call
and on the result naming it.
trajrec's own fields (reward, failure, retry_of, recovers, terminated, truncated, the chosen label, the positions
of call ids it made up) go in each step's ``extra.trajrec``; the episode's task, outcome, checks and every live
label (``labels``: ``import atif`` gives them back as checks) in the root ``extra.trajrec``, with the marks of a
partial episode the other formats carry (``chat.episode_complete``/``episode_lost``): ``complete`` and ``lost``
(``import atif`` reads them back, so the imported episode is not whole either); a step salvaged from a damaged frame
has ``unverified: true`` in its ``extra.trajrec``.
Episodes imported from ATIF get back their original user/system steps, step ids and schema version.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from trajrec.recorder.errors import TrajrecError, TrajrecIOError
from trajrec.recorder.model_call import amount, token_count

from ..labels import rating
from .base import SURROGATES, EpisodeView, Format, JsonlFormat, Skip, check_output_folder, new_temp_folder
from .choice import origin
from .base import fenced_in
from .chat import episode_complete, episode_lost, observation_text, paired_calls, turn_text, unverified_of
from .encode import dumps_built, jsonable, text_of, tool_call, tool_calls, tool_names

#: The schema version written for episodes that did not come from ATIF.
ATIF_VERSION = "ATIF-v1.6"
_METRIC_KEYS = {"prompt_tokens": ("prompt_tokens", "input_tokens"),
                "completion_tokens": ("completion_tokens", "output_tokens"),
                "cached_tokens": ("cached_tokens", "input_tokens_cache_read")}


def iso(t: Any) -> str | None:
    """Unix seconds as ISO 8601 UTC text; 0/None (unknown) as None."""
    if not isinstance(t, (int, float)) or not t:
        return None
    try:
        return datetime.fromtimestamp(float(t), tz=timezone.utc).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):  # NaN, or beyond any date (a step salvaged from damaged bytes)
        return None


def trajectory(view: EpisodeView) -> dict[str, Any]:
    """One episode as an ATIF trajectory (a dict of JSON data)."""
    ep = view.ep
    prov = ep.provenance or {}
    atif_src = prov.get("atif") if isinstance(prov.get("atif"), dict) else {}
    agent_p = prov.get("agent") if isinstance(prov.get("agent"), dict) else {}
    agent: dict[str, Any] = {"name": str(agent_p.get("name") or "unknown"),
                             "version": str(agent_p.get("version") or "unknown")}
    if agent_p.get("model"):
        agent["model_name"] = str(agent_p["model"])
    tools = view.tools()
    if "tool_definitions" in atif_src:  # imported from ATIF: its own definitions, as they were (or none)
        if atif_src["tool_definitions"] is not None:
            agent["tool_definitions"] = atif_src["tool_definitions"]
    elif tools:
        agent["tool_definitions"] = [t if isinstance(t, dict) else {"value": t} for t in tools]
    if isinstance(agent_p.get("extra"), dict) and agent_p["extra"]:
        agent["extra"] = agent_p["extra"]
    # A call is a call of a declared tool, as in the chat exports; an episode imported from ATIF by an older
    # trajrec (which declared no tools its file did not define) keeps its calls as the file had them.
    names = None if atif_src and "tool_definitions" not in atif_src else tool_names(tools)
    steps: list[dict[str, Any]] = []
    reset = ep.reset
    lead = reset.info.get("atif_lead") if isinstance(reset.info, dict) else None
    if isinstance(lead, list) and lead:
        for st in lead:
            steps.append(_copy_step(st, len(steps) + 1))
    else:
        # The agent's system prompt (an import's reset info `system`, or what a recorded model agent's first call
        # sent: EpisodeView.system, as chat uses it), ATIF's system step.
        system = view.system()
        if isinstance(system, str) and system:
            steps.append({"step_id": 1, "source": "system", "message": system})
        prompt = view.prompt()
        first: dict[str, Any] = {"step_id": len(steps) + 1, "source": "user", "message": prompt or ""}
        if iso(reset.time):
            first["timestamp"] = iso(reset.time)
            if steps:
                steps[0]["timestamp"] = first["timestamp"]
        steps.append(first)
    prompt_total = completion_total = cached_total = 0
    cost_total = 0.0
    have_tokens = have_cost = False
    doubt = unverified_of(ep)
    for rec in view.steps():
        note = rec.get("note") if isinstance(rec.get("note"), dict) else {}
        for st in note.get("atif_before") or note.get("user_before") or ():
            if isinstance(st, dict) and st.get("source") in ("user", "system"):
                steps.append(_copy_step(st, len(steps) + 1))
        step = _agent_step(view, rec, note, len(steps) + 1, names)
        if rec["i"] in doubt:  # salvaged by fsck --repair: readable, but no checksum vouches for it
            step["extra"]["trajrec"]["unverified"] = True
        metrics = step.get("metrics") or {}
        if metrics.get("prompt_tokens") is not None or metrics.get("completion_tokens") is not None:
            have_tokens = True
            prompt_total += metrics.get("prompt_tokens") or 0
            completion_total += metrics.get("completion_tokens") or 0
            cached_total += metrics.get("cached_tokens") or 0
        if metrics.get("cost_usd") is not None:
            have_cost = True
            cost_total += metrics["cost_usd"]
        steps.append(step)
        for st in note.get("atif_after") or note.get("user_after") or ():
            if isinstance(st, dict) and st.get("source") in ("user", "system"):
                steps.append(_copy_step(st, len(steps) + 1))
    final: dict[str, Any] = {"total_steps": len(steps)}
    src_final = atif_src.get("final_metrics") if isinstance(atif_src.get("final_metrics"), dict) else None
    if src_final:
        final = {**src_final, "total_steps": src_final.get("total_steps", len(steps))}
    else:
        if have_tokens:
            final.update(total_prompt_tokens=prompt_total, total_completion_tokens=completion_total,
                         total_cached_tokens=cached_total)
        if have_cost:
            final["total_cost_usd"] = cost_total
    task = view.task
    out: dict[str, Any] = {
        "schema_version": atif_src.get("schema_version") or ATIF_VERSION,
        "session_id": atif_src.get("session_id") or str(prov.get("run_id") or view.episode_id),
        "trajectory_id": atif_src.get("trajectory_id") or view.episode_id,
        "agent": agent,
        "steps": steps,
        "final_metrics": final,
        "extra": {"trajrec": {
            "episode_id": view.episode_id, "file": view.ref.rel_path,
            "task": {k: task.get(k) for k in ("env_id", "id", "text", "split") if task.get(k) is not None},
            "outcome": ep.summary.get("outcome"),
            # False for an episode that lost steps (exported with --keep-partial), as in every format's rows.
            "complete": episode_complete(ep),
            "lost": episode_lost(ep),
            "checks": [_check(c.to_record()) for c in ep.checks],
            # Every live label (people's, rules', judges'; step and episode), so `import atif` gives them back as
            # checks and a re-export chooses the same label per step (the step's `label` is only the chosen one).
            "labels": [_label(row) for row in view.label_rows],
            "imported_from": (prov.get("lineage") or {}).get("imported_from")
            if isinstance(prov.get("lineage"), dict) else None,
        }},
    }
    extra = prov.get("extra") if isinstance(prov.get("extra"), dict) else {}
    if isinstance(extra.get("notes"), str):
        out["notes"] = extra["notes"]
    if isinstance(extra.get("extra"), dict):
        out["extra"] = {**extra["extra"], **out["extra"]}
    return jsonable(out)  # type: ignore[no-any-return]


def document(view: EpisodeView) -> dict[str, Any]:
    """:func:`trajectory`, or :class:`Skip` naming the episode when a value in its file has a shape this mapping
    cannot read (episode files are data from anyone: a note written by code may hold anything); the other
    episodes are still written. Damaged files (:class:`TrajrecError`) go on to the export's own handling."""
    try:
        return trajectory(view)
    except TrajrecError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        raise Skip(f"{view.ref.path}: a recorded value of an unexpected type cannot be written as ATIF "
                   f"({type(exc).__name__}: {str(exc)[:120]})") from exc


def _check(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: rec.get(k) for k in ("target", "kind", "judge", "value", "score", "rationale") if rec.get(k) is not None}


def _label(row: Any) -> dict[str, Any]:
    """A live label (a :class:`~trajrec.replay.label_model.LabelRow` or :class:`Label`) as the check ``import atif``
    writes back: its target, kind, judge, value and the rest that decide the chosen label (time: newest wins)."""
    # One type per field, as JSON readers that infer a column's type (pyarrow's, `datasets`') need (they refuse a
    # field that is text in one row, a number in another): the target as "step", the step index or null for the
    # episode; the value, which may be a rating, a bool, a score or a category, as its JSON text.
    out = {"step": row.target if isinstance(row.target, int) else None, "kind": row.kind, "judge": row.judge,
           "value_json": json.dumps(row.value, default=str), "score": row.score,
           "rationale": row.rationale, "tags": list(row.tags or ()), "author": row.author, "time": row.time,
           "label_id": row.id}
    return {k: v for k, v in out.items() if k == "step" or (v is not None and v != [])}


def _copy_step(st: dict[str, Any], step_id: int) -> dict[str, Any]:
    """A kept user/system step (from ATIF, or an OpenHands user event) as an ATIF step."""
    if "step_id" in st:  # an ATIF step kept whole
        return {**{k: v for k, v in st.items() if k != "step_id"}, "step_id": step_id}
    out: dict[str, Any] = {"step_id": step_id, "source": "user" if st.get("source") == "user" else "system",
                           "message": text_of(st.get("message") or (st.get("args") or {}).get("content"))}
    if isinstance(st.get("timestamp"), str):
        out["timestamp"] = st["timestamp"]
    return out


def _model_call(note: dict[str, Any]) -> dict[str, Any]:
    call = note.get("model_call")
    if isinstance(call, dict):
        return call
    calls = note.get("model_calls")
    return calls[-1] if isinstance(calls, list) and calls and isinstance(calls[-1], dict) else {}


def _count(v: Any) -> int | None:
    """A token count as a whole number >= 0; None for anything else (a list, text, a bool, NaN, negative, an int
    too big for a count: ``recorder.model_call.token_count``, as the summary counts)."""
    return token_count(v)


def _usd(v: Any) -> float | None:
    """A cost as a finite number >= 0; None for anything else (``recorder.model_call.amount``)."""
    return amount(v)


def _metrics(note: dict[str, Any], left_out: list[str]) -> dict[str, Any] | None:
    """The step's ATIF ``metrics``. A note is data from anyone: a count or cost that is not a number is left out of
    the metrics (and so of ``final_metrics``) and named in ``left_out`` as ``"<where in the note>: <value>"``."""
    if isinstance(note.get("metrics"), dict):  # imported from ATIF: the step's metrics as they were
        out = dict(note["metrics"])
        for key, ok in (("prompt_tokens", _count), ("completion_tokens", _count), ("cached_tokens", _count),
                        ("cost_usd", _usd)):
            if out.get(key) is not None and ok(out[key]) is None:
                left_out.append(f"note.metrics.{key}: {_shown(out.pop(key))}")
        return out
    # Every model call of the step and every failed attempt before it (an unparseable reply's tokens were paid
    # for), as the summary counts them (ModelUsage.add_call): final_metrics then equals `trajrec ls`'s totals.
    out: dict[str, Any] = {}
    parts: list[tuple[str, Any]] = []
    for where, call in [("note.model_call", note.get("model_call"))] + [
            (f"note.model_calls[{k}]", c) for k, c in enumerate(note.get("model_calls") or ())
            if isinstance(note.get("model_calls"), list)]:
        if isinstance(call, dict):
            parts.append((where, call))
            attempts = call.get("attempts")
            parts.extend((f"{where}.attempts[{k}]", a) for k, a in enumerate(attempts if isinstance(attempts, list)
                                                                             else ()) if isinstance(a, dict))
    for where, part in parts:
        usage = part.get("usage")
        if isinstance(usage, dict):
            for key, names in _METRIC_KEYS.items():
                for n in names:
                    if usage.get(n) is not None:
                        value = _count(usage[n])
                        if value is None:
                            left_out.append(f"{where}.usage.{n}: {_shown(usage[n])}")
                        else:
                            out[key] = out.get(key, 0) + value
                        break
        if part.get("cost") is not None:
            cost = _usd(part["cost"])
            if cost is None:
                left_out.append(f"{where}.cost: {_shown(part['cost'])}")
            else:
                out["cost_usd"] = out.get("cost_usd", 0.0) + cost
    usage = _model_call(note).get("usage")
    if isinstance(usage, dict):  # the detail fields of the call that chose the action
        rest = {k: v for k, v in usage.items()
                if k not in {n for ns in _METRIC_KEYS.values() for n in ns} and k != "total_tokens"}
        if rest:
            out["extra"] = rest
    failed = sum(len(p.get("attempts")) for _w, p in parts if isinstance(p.get("attempts"), list))
    if failed and out:  # said where the numbers are read: they include the failed attempts
        out.setdefault("extra", {})["failed_attempts_included"] = failed
    return out or None


def _shown(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _call_id(cid: Any) -> str | None:
    """A recorded call id as ATIF's text (``tool_call_id`` and ``source_call_id`` alike: Harbor's models want
    text for both, and a result must name its call as the call is named); None for none."""
    return None if cid is None or cid == "" else cid if isinstance(cid, str) else text_of(cid)


def _atif_call(i: int, k: int, call: Any, cid: Any, item: Any, made: list[int]) -> dict[str, Any]:
    """One ATIF tool call: ``call`` (a ToolCall) with the recorded id ``cid``, else ``call_<step>_<k>`` (its
    position noted in ``made``); ``item``: the action (or list item) it was read from, for its ``extra``."""
    text = _call_id(cid)
    if text is None:
        made.append(k)
        text = f"call_{i}_{k}"
    out: dict[str, Any] = {"tool_call_id": text, "function_name": call.name, "arguments": call.arguments}
    if isinstance(item, dict) and isinstance(item.get("extra"), dict):
        out["extra"] = item["extra"]
    return out


def _turn(view: EpisodeView, rec: dict[str, Any], note: dict[str, Any], i: int, names: frozenset[str] | None,
          made: list[int]) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None, str]:
    """``(tool calls, results or None, message)`` of a step, decided as ``chat`` decides them: what is a call
    (``encode.tool_call``/``encode.tool_calls``, a command the thought fences being its text), which result
    answers which call (``chat.paired_calls``: a pairing chat refuses is no pairing here either, the step being
    text as in chat) and the text of a turn that calls nothing (``chat.turn_text``). None as the results: the
    step's observation as one result (the caller writes it)."""
    action = rec.get("action")
    text_tool = view.text_tool()
    thought = view.thought(rec) or ""
    ids = note.get("call_ids")
    if not isinstance(ids, list):  # recorded by a model agent: the ids the model gave its calls
        model_calls = _model_call(note).get("tool_calls")
        ids = [c.get("id") if isinstance(c, dict) else None for c in model_calls] \
            if isinstance(model_calls, list) else None
    call = tool_call(action, names, text_tool)
    if call is not None and thought and type(action) is str and fenced_in(thought, action):
        call = None  # the agent wrote the command in its text: that text is its turn (as in chat)
    if call is not None:
        cid = action.get("id") if isinstance(action, dict) else None
        if cid is None and ids:
            cid = ids[0]
        calls = [_atif_call(i, 0, call, cid, action, made)]
        obs = rec.get("observation")
        own = calls[0]["tool_call_id"]
        if (type(obs) is list and len(obs) > 1 and not made and all(
                type(o) is dict and set(o) == {"tool_call_id", "content"} and o["tool_call_id"] == own
                and type(o["content"]) is str for o in obs)):
            # Several results of the one call, each naming it (an ATIF import's): written back as they were.
            return calls, [{"source_call_id": own, "content": o["content"]} for o in obs], thought
        return calls, None, thought
    paired = paired_calls(action, rec, names, text_tool, thought) if type(action) is list else None
    if paired:
        calls = [_atif_call(i, k, c, cid, item, made) for k, ((c, cid, _a), item) in enumerate(zip(paired, action))]
        results = [{"source_call_id": atif_call["tool_call_id"], "content": answer}
                   for atif_call, (_c, _cid, answer) in zip(calls, paired) if answer is not None]
        return calls, results, thought
    listed = tool_calls(action, names, text_tool) if type(action) is list and "step_id" in note else None
    if listed and not (thought and any(type(a) is str and fenced_in(thought, a) for a in action)):
        # An ATIF import's calls whose results chat does not pair (results without `source_call_id`, as ATIF
        # allows): the calls as the file had them, the results naming none (no pairing the file did not state).
        calls = [_atif_call(i, k, c, cid if cid is not None else (ids[k] if ids and k < len(ids) else None),
                            item, made) for k, ((c, cid), item) in enumerate(zip(listed, action))]
        obs = rec.get("observation")
        if type(obs) is list and all(type(o) is dict and "content" in o for o in obs):
            return calls, [{"content": text_of(o["content"])} for o in obs], thought
        return calls, None, thought
    return [], None, turn_text(thought, action)


def _agent_step(view: EpisodeView, rec: dict[str, Any], note: dict[str, Any], step_id: int,
                names: frozenset[str] | None) -> dict[str, Any]:
    i = rec["i"]
    made: list[int] = []
    calls, results, message = _turn(view, rec, note, i, names, made)
    step: dict[str, Any] = {"step_id": step_id, "source": "agent", "message": note.get("content_parts") or message}
    if iso(rec.get("time")):
        step["timestamp"] = iso(rec.get("time"))
    model = _model_call(note).get("model") or note.get("model")
    if isinstance(model, str):
        step["model_name"] = model
    if isinstance(note.get("reasoning_effort"), (str, int, float)):
        step["reasoning_effort"] = note["reasoning_effort"]
    if isinstance(note.get("reasoning"), str):
        step["reasoning_content"] = note["reasoning"]
    if calls:
        step["tool_calls"] = calls
    if results is None:
        results = []
        if rec.get("observation") is not None or rec.get("failure"):
            result: dict[str, Any] = {"content": observation_text(rec)}
            kept = note.get("result")
            if isinstance(kept, dict):  # imported from ATIF: its result's fields, as they were
                result = {**kept, **result}
                if not calls:  # (a call this export writes as text: the result names no call of the step)
                    result.pop("source_call_id", None)
            elif len(calls) == 1:
                result["source_call_id"] = calls[0]["tool_call_id"]
            results.append(result)
    if results:
        step["observation"] = {"results": results}
    left_out: list[str] = []
    metrics = _metrics(note, left_out)
    if metrics:
        step["metrics"] = metrics
    for k in ("is_copied_context", "llm_call_count"):
        if note.get(k) is not None:
            step[k] = note[k]
    own: dict[str, Any] = {"step": i}
    for k in ("reward", "failure", "retry_of", "recovers", "terminated", "truncated"):
        v = rec.get(k)
        # retry_of 0 == False; a reward of 0 (or -0.0) is a reward: the import gives back what was recorded
        if not _nothing(v) or (k in ("retry_of", "reward") and v is not None):
            own[k] = v
    chosen = view.choose(i, mapped=False)
    if chosen is not None:
        own["label"] = {"judge": chosen.judge, "kind": chosen.kind, "origin": origin(chosen), "value": chosen.value,
                        "rating": rating(chosen.value), "rationale": chosen.rationale}
    if made:  # ids this export made up: `import atif` leaves them out of the action (the agent gave none)
        own["made_call_ids"] = made
    if left_out:  # said where it is read: the step's metrics and final_metrics do not count these
        own["metrics_left_out"] = left_out
    extra = dict(note["extra"]) if isinstance(note.get("extra"), dict) and "step_id" in note else {}
    extra["trajrec"] = own
    step["extra"] = extra
    return step


class AtifFormat(Format):
    name = "atif"

    def __init__(self, out: str | os.PathLike[str], options: Any) -> None:
        super().__init__(out, options)
        text = "" if out is None else os.fspath(out)
        self._dir: Path | None = None  # an export to a folder: the temporary folder the documents go to
        self._out_text = text.rstrip("/" + os.sep) or text  # the folder as named, for messages and `placed`
        self._jsonl: JsonlFormat | None = None
        self._written: list[Path] = []
        #: Episode file -> the document written for it: two files with one episode id (a copy, an import done
        #: twice) get two names, ``<episode_id>.trajectory.json`` then ``<episode_id>-2.trajectory.json`` in the
        #: export's order, and the export's warning about the shared id says where each went.
        self.placed: dict[str, str] = {}
        self._taken: set[str] = set()
        if out is None:  # encode only (a worker of a parallel export to one JSONL file)
            self._jsonl = _AtifLines(None, options)
            return
        if text != "-" and (text.endswith(("/", os.sep)) or Path(text).is_dir()):
            self._final = Path(os.path.abspath(text))
            check_output_folder(Path(text), "one <episode_id>.trajectory.json per episode")
            # Documents go to a new temporary folder renamed at close (as parquet's shards do): an interrupted
            # export leaves no folder of some documents that reads as a whole dataset.
            self._dir = new_temp_folder(self._final)
        else:
            self._jsonl = _AtifLines(out, options)

    @property
    def lines_format(self) -> JsonlFormat | None:
        """The JSONL writer of an export to one file (None for a folder of documents): what ``--workers`` runs."""
        return self._jsonl

    def write(self, view: EpisodeView) -> tuple[int, int]:
        if self._jsonl is not None:
            return self._jsonl.write(view)
        assert self._dir is not None
        doc = document(view)
        name, n = f"{view.episode_id}.trajectory.json", 1
        while name in self._taken:  # the id again (or an id that is another's "-2" name): never over a document
            n += 1
            name = f"{view.episode_id}-{n}.trajectory.json"
        self._taken.add(name)
        path = self._dir / name
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            with io.open(tmp, "w", encoding="utf-8", errors=SURROGATES) as fh:  # (see base.open_new_text)
                fh.write(dumps_built(doc))  # document() is encoded already: a second pass would escape its markers
                fh.write("\n")
            os.replace(tmp, path)
        except OSError as exc:
            raise TrajrecIOError(f"cannot write {path}: {exc.strerror}") from exc
        self._written.append(path)
        self.placed[os.fspath(view.ref.path)] = os.path.join(self._out_text, name)
        return 1, agent_steps(doc)

    def close(self) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
        elif self._dir is not None:
            try:
                if self._final.exists():
                    self._final.rmdir()  # empty (checked at the start)
                os.replace(self._dir, self._final)
            except OSError as exc:
                raise TrajrecIOError(f"cannot finish {self._out_text}: {exc.strerror}") from exc

    def abort(self) -> None:
        if self._jsonl is not None:
            self._jsonl.abort()
        elif self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)


class _AtifLines(JsonlFormat):
    name = "atif"
    built_rows = True  # document() is encoded already: a second pass would escape its "$" keys and markers again

    def rows(self, view: EpisodeView) -> tuple[Iterable[dict[str, Any]], int]:
        if len(view.ep) == 0 and view.ep.reset.observation is None:
            raise Skip("no steps and no prompt")
        doc = document(view)
        return [doc], agent_steps(doc)


def agent_steps(doc: dict[str, Any]) -> int:
    """The number of trajrec steps written in ``doc`` (its agent steps): what the export's message counts, as the
    other formats count the steps they wrote (a repaired file's readable steps, not the steps its index declares)."""
    return sum(1 for st in doc["steps"] if st.get("source") == "agent")


__all__ = ["ATIF_VERSION", "AtifFormat", "iso", "trajectory"]


def _nothing(v: Any) -> bool:
    """Whether a step field holds nothing worth writing (None, False, [], a zero): exact for any recorded value,
    a numpy scalar or array included (``v in (...)`` compares with ``==``, which an array answers element-wise)."""
    if v is None or v is False or (type(v) is list and not v):
        return True
    if type(v) in (int, float):
        return v == 0
    shape = getattr(v, "shape", None)
    if shape == () and getattr(v, "dtype", None) is not None and v.dtype.kind in "biuf":  # a numpy number
        return bool(v == 0)
    return False
