"""``chat``: the HF/TRL conversational format with tools, one row per episode (``docs/EXPORT.md``).

Columns: ``messages``, ``tools`` (exactly the env's declared tools) and ``trajrec`` (trajrec's own metadata in one
nested column that no trainer reads). There is no top-level ``labels`` column: trainers own that name.

``messages``: the system message when there is one (``--system``, else the episode's own system prompt:
:meth:`~.base.EpisodeView.system`), the task as the user message, then per step:

* an action that is a call of one of the env's tools: an assistant message (``content`` = the agent's thought or
  ``""``, ``tool_calls`` = one call ``call_<step>`` whose ``arguments`` is an object, or JSON text with
  ``--tool-arguments string``) and the tool's answer ``{"role": "tool", "tool_call_id", "name", "content"}``;
* an action that is a list of calls (several calls of one turn, ``[{"tool", "args", "id"}, ...]``), each a call
  of one of the env's tools, whose results pair with them (a list of ``{"tool_call_id", "content"}``, by id):
  one assistant message with one ``tool_calls`` entry per call (``call_<step>_<k>``) and one tool message per
  call answering it by ``tool_call_id``, in the calls' order;
* any other action (malformed JSON, an unknown tool, plain text with no declared text tool): an assistant message
  whose content is the thought and the action as text (never a call of an invented tool; a message action
  ``{"message": text}`` is its text, and text the thought already says is not said twice), and the env's answer
  as the next user message.

The conversation ends with the agent's last message; the env's answer to it is ``trajrec.final_observation``.

Each assistant message carries ``weight`` 0/1 (the OpenAI fine-tuning convention) under ``--weights``.
"""

from __future__ import annotations

from typing import Any, Iterable

from .base import EpisodeView, JsonlFormat, NO_STEP, Skip, fenced_in
from ..labels import rating
from .choice import map_label, origin
from .encode import _encode_str as _S
from .encode import _fast, dumps, exact, message_of, text_of, tool_call, tool_calls, tool_names


def weight_of(policy: str, failed: bool, r: int | None) -> int:
    """The ``weight`` of an assistant message: ``policy`` (see :data:`~.base.WEIGHT_POLICIES`), whether its step
    failed and the rating of its preferred label (None: unlabeled or a category).

    >>> [weight_of(p, False, -1) for p in ("label", "positive", "failures", "all")]
    [0, 0, 1, 1]
    >>> [weight_of(p, True, None) for p in ("label", "positive", "failures", "all")]
    [0, 0, 0, 1]
    """
    if policy == "all":
        return 1
    if policy == "failures":
        return 0 if failed else 1
    if policy == "positive":
        return 1 if r == 1 else 0
    return 0 if failed or r == -1 else 1


def observation_text(rec: dict[str, Any]) -> str:
    """What the env answered a step, as text; a step whose env raised says so."""
    failure = rec.get("failure")
    obs = rec.get("observation")
    content = text_of(obs)
    if failure and not content:
        content = f"error: {failure.get('kind')}: {failure.get('message')}"
    return content


def episode_meta(view: EpisodeView) -> dict[str, Any]:
    """The episode-level fields of the ``trajrec`` column (shared by chat, dpo and kto)."""
    task, summary, prov = view.task, view.ep.summary, view.ep.provenance
    agent = prov.get("agent") if isinstance(prov.get("agent"), dict) else {}
    ret = summary.get("return")
    return {
        "episode_id": view.episode_id,
        "env_id": _str(task.get("env_id")),
        "task_id": _str(task.get("id")),
        "split": _str(task.get("split")),
        "agent": _str(agent.get("name")),
        "model": _str(agent.get("model")),
        "run_id": _str(prov.get("run_id")),
        "outcome": _str(summary.get("outcome")),
        "return": float(ret) if isinstance(ret, (int, float)) and not isinstance(ret, bool) else None,
        # False for a file whose writer did not finish or that lost steps (kept by --keep-partial); ``lost``:
        # where (episode_lost).
        "complete": episode_complete(view.ep),
        "lost": episode_lost(view.ep),
    }


def episode_complete(ep: Any) -> bool:
    """Whether ``ep`` holds its whole recording: its writer finished, no step is lost (no :attr:`gaps`: none lost
    to damage, none kept out of the file by a failed write) and its header record was not lost to damage."""
    return bool(ep.complete) and not getattr(ep, "gaps", None) and getattr(ep, "header_lost", None) is None


def episode_lost(ep: Any) -> list[Any]:
    """The exports' ``lost`` field: per gap of ``ep``, ``[first step, count]`` for steps lost to damage (count
    null: to the end) or ``{"before": k, "n": count}`` for env steps a failed write kept out of the file, right
    before step ``k`` (docs/EXPORT.md)."""
    return [g.to_json() for g in getattr(ep, "gaps", ())]


def unverified_of(ep: Any) -> set[int]:
    """The steps of ``ep`` that ``fsck --repair`` salvaged from damaged frames (readable, no checksum vouches
    for them)."""
    from trajrec.recorder.reader import unverified_steps

    return {i for first, n, _why in unverified_steps(ep.index) for i in range(first, first + n)}


def _str(v: Any) -> str | None:
    return v if v is None or isinstance(v, str) else text_of(v)


def _label_fields(chosen: Any, label_map: str) -> tuple[Any, ...]:
    """``(judge, kind, origin, value, rating, label, rationale, tags)`` of a step's chosen label, as its
    ``trajrec.steps`` item holds them."""
    return (_str(chosen.judge), _str(chosen.kind), origin(chosen), dumps(chosen.value), rating(chosen.value),
            map_label(chosen.value, label_map), _str(chosen.rationale), [_str(t) for t in chosen.tags])


def said(thought: str, text: str, sep: str = "\n\n") -> str:
    """An assistant turn of an action that is no tool call: the thought, then (after ``sep``) the action as text,
    unless the thought already holds it (it is the same text, as when an importer or a model agent keeps the reply
    as both, or :func:`fenced_in`)."""
    if not thought:
        return text
    return thought if thought == text or fenced_in(thought, text) else f"{thought}{sep}{text}"


def turn_text(thought: str, action: Any, sep: str = "\n\n") -> str:
    """The assistant content of a step whose action is no call: :func:`said` of the action's text, a message
    action ``{"message": text}`` being its text (the thought alone when that text is empty)."""
    message = message_of(action)
    if message is None:
        return said(thought, text_of(action), sep)
    return said(thought, message, sep) if message else thought


def system_of(view: EpisodeView, options: Any) -> str | None:
    """The system message of an episode's conversation: ``--system`` when given (``""``: none, leaving out the
    episode's own), else the episode's own system prompt (:meth:`EpisodeView.system`), else None."""
    return options.system if options.system is not None else view.system()


def several_calls(action: Any, rec: dict[str, Any], names: frozenset[str] | None,
                  text_tool: tuple[str, str] | None, thought: str) -> list[tuple[str, Any, str]] | None:
    """``[(tool name, arguments, the tool's answer as text)]`` of a step whose action is a list of calls
    (:func:`~.encode.tool_calls`) whose results pair with them, else None (the step is then written as text, never
    with an answer given to the wrong call).

    The results pair when the observation is a list of ``{"tool_call_id", "content"}`` (as the importers write
    several results): by id when every call has one (its own ``id``, else the note's ``call_ids``), a call no
    result answers getting ``""``; by position when neither side has ids and there is one result per call. Any
    other list with one item per call pairs by position (mini-swe-agent's outputs). A list of one call takes the
    observation as a single call does. Command lines the ``thought`` already shows in a fenced block are its text,
    as for a single command (:func:`fenced_in`). The pairing itself is :func:`paired_calls` (the ATIF export's)."""
    paired = paired_calls(action, rec, names, text_tool, thought)
    if paired is None:
        return None
    return [(call.name, call.arguments, answer if answer is not None else "") for call, _cid, answer in paired]


def paired_calls(action: Any, rec: dict[str, Any], names: frozenset[str] | None,
                 text_tool: tuple[str, str] | None, thought: str) -> list[tuple[Any, Any, str | None]] | None:
    """:func:`several_calls` with each call's id (its own ``id``, else the note's ``call_ids`` item, else None)
    and None as the answer of a call no result answers: ``[(ToolCall, id, answer text or None)]``. The one
    pairing rule of the exports: ``chat`` (and so ``kto``/``dpo``) and ``atif`` state the same answers."""
    calls = tool_calls(action, names, text_tool)
    if calls is None:
        return None
    if thought and any(type(a) is str and fenced_in(thought, a) for a in action):
        return None
    note = rec.get("note")
    kept = note.get("call_ids") if isinstance(note, dict) else None
    ids = [cid if cid is not None else (kept[k] if isinstance(kept, list) and k < len(kept) else None)
           for k, (_call, cid) in enumerate(calls)]
    if len(calls) == 1:
        return [(calls[0][0], ids[0], observation_text(rec))]
    obs = rec.get("observation")
    if type(obs) is not list:
        return None
    if not all(type(o) is dict and "content" in o for o in obs):
        if len(obs) != len(calls) or any(type(o) is dict and "content" in o for o in obs):
            return None
        return [(call, cid, text_of(o)) for (call, _c), cid, o in zip(calls, ids, obs)]
    got = [o.get("tool_call_id") for o in obs]
    if None not in ids and len(set(map(repr, ids))) == len(ids):
        by_id = {repr(cid): o for cid, o in zip(got, obs)}
        if len(by_id) != len(obs) or not set(by_id) <= set(map(repr, ids)):
            return None  # a result answering no call, or two answering one: no honest pairing
        answers = [by_id.get(repr(cid)) for cid in ids]
    elif all(cid is None for cid in ids) and all(g is None for g in got) and len(obs) == len(calls):
        answers = list(obs)
    else:
        return None
    return [(call, cid, text_of(a["content"]) if a is not None else None)
            for (call, _c), cid, a in zip(calls, ids, answers)]


def conversation(view: EpisodeView, options: Any, *, upto: int | None = None
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
    """``(messages, per-step metadata, the env's last answer)`` of an episode (its first ``upto`` steps when
    given). The conversation ends with the agent's last message: the env's answer to it is nothing a model should
    learn to say, so it goes to the metadata (``final_observation``) instead."""
    label_map = options.label_map
    names = tool_names(view.tools())
    text_tool = view.text_tool()
    as_string = options.tool_arguments == "string"
    messages: list[dict[str, Any]] = []
    system = system_of(view, options)
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": view.prompt()})
    steps: list[dict[str, Any]] = []
    tail = 1  # the messages answering the last step (one per call of a turn with several)
    last: dict[str, Any] = {}
    # The label fields of a step depend only on its chosen label's judge, kind, value, rationale, tags and origin,
    # which repeat from step to step (a rule's labels): made once for each set of them.
    made: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for rec in view.steps():
        i = rec["i"]
        if upto is not None and i >= upto:
            break
        last = rec
        action = rec.get("action")
        call = tool_call(action, names, text_tool)
        chosen = view.choose(i, mapped=False)
        if chosen is None:
            judge = kind = source = value = r = label = rationale = None
            tags: list[Any] = []
        else:
            v = chosen.value
            # The repr tells 1, 1.0 and True (and 0.0 and -0.0) apart, equal as keys but not as JSON.
            key = (chosen.judge, chosen.kind, repr(v), v, chosen.rationale, chosen.tags, type(chosen))
            try:
                fields = made.get(key)
            except TypeError:  # an unhashable value or tag list (a recorded check's): made for this step
                key, fields = None, None
            if fields is None:
                fields = _label_fields(chosen, label_map)
                if key is not None:
                    made[key] = fields
            judge, kind, source, value, r, label, rationale, tags = fields
            tags = list(tags)
        failed = bool(rec.get("failure"))
        weight = weight_of(options.weights, failed, r)
        thought = view.thought(rec) or ""
        if call is not None and thought and type(action) is str and fenced_in(thought, action):
            call = None  # the agent wrote the command in its text: that text is its turn
        several = several_calls(action, rec, names, text_tool, thought) \
            if call is None and type(action) is list else None
        steps.append({
            "step": i, "message": len(messages), "weight": weight, "failed": failed,
            "tool": call.name if call is not None else several[0][0] if several else None,
            "judge": judge, "kind": kind, "origin": source, "value": value, "rating": r, "label": label,
            "rationale": rationale, "tags": tags,
        })
        if call is not None:
            call_id = f"call_{i}"
            args = dumps(call.arguments) if as_string else exact(call.arguments)
            messages.append({"role": "assistant", "content": thought,
                             "tool_calls": [{"id": call_id, "type": "function",
                                             "function": {"name": call.name, "arguments": args}}],
                             "weight": weight})
            messages.append({"role": "tool", "tool_call_id": call_id, "name": call.name,
                             "content": observation_text(rec)})
            tail = 1
        elif several:
            messages.extend(_several_messages(i, thought, several, as_string, weight))
            tail = len(several)
        else:
            messages.append({"role": "assistant", "content": turn_text(thought, action), "weight": weight})
            messages.append({"role": "user", "content": observation_text(rec)})
            tail = 1
    final = None
    if steps and messages[-1]["role"] != "assistant":
        final = messages.pop()["content"]
        if tail > 1:  # a turn with several calls: its answers, all of them, are the env's last answer
            del messages[-(tail - 1):]
            final = observation_text(last)
    return messages, steps, final


def _several_messages(i: int, thought: str, several: list[tuple[str, Any, str]], as_string: bool,
                      weight: int | None) -> list[dict[str, Any]]:
    """The assistant message of a turn with several calls (:func:`several_calls`) and the tool messages answering
    them; ``weight`` None: the assistant message carries none (``kto``)."""
    ids = [f"call_{i}_{k}" for k in range(len(several))] if len(several) > 1 else [f"call_{i}"]
    assistant: dict[str, Any] = {"role": "assistant", "content": thought, "tool_calls": [
        {"id": cid, "type": "function",
         "function": {"name": name, "arguments": dumps(args) if as_string else exact(args)}}
        for cid, (name, args, _answer) in zip(ids, several)]}
    if weight is not None:
        assistant["weight"] = weight
    return [assistant, *({"role": "tool", "tool_call_id": cid, "name": name, "content": answer}
                         for cid, (name, _args, answer) in zip(ids, several))]


#: The row's pieces as text, in the order and spelling encoding the row's dicts gives (``conversation``).
_ASSISTANT_CALL = ('{"role":"assistant","content":%s,"tool_calls":[{"id":"call_%s","type":"function",'
                   '"function":{"name":%s,"arguments":%s}}],"weight":%s}')
_TOOL = '{"role":"tool","tool_call_id":"call_%s","name":%s,"content":%s}'
_ASSISTANT = '{"role":"assistant","content":%s,"weight":%s}'
#: ``kto`` messages carry no weight (its place in the template filled with nothing, so both take the same values).
_ASSISTANT_CALL_NW = _ASSISTANT_CALL.replace(',"weight":%s}', "}%s")
_ASSISTANT_NW = _ASSISTANT.replace(',"weight":%s}', "}%s")
_USER = '{"role":"user","content":%s}'
_STEP = '{"step":%s,"message":%s,"weight":%s,"failed":%s,"tool":%s,%s}'
_UNLABELED = '"judge":null,"kind":null,"origin":null,"value":null,"rating":null,"label":null,"rationale":null,"tags":[]'
_TRUTH = ("false", "true")
_int_repr = int.__repr__


class _Unusual(Exception):
    """A value the text path leaves to the dict path (an index that is not an int, a value the strict encoder
    refuses)."""


def _strict(value: Any) -> str:
    """``value``'s text as the strict encoder writes it inside the row; :class:`_Unusual` where it refuses it
    (the row then takes the dict path, whose fallback makes the whole row exact)."""
    try:
        return _fast(value)
    except (ValueError, TypeError) as exc:
        raise _Unusual from exc


def conversation_text(view: EpisodeView, options: Any, *, weights: bool = True
                      ) -> tuple[list[str], list[str], str | None]:
    """:func:`conversation` as text: ``(the JSON text of each message, of each step's metadata, the env's last
    answer)``, what encoding :func:`conversation`'s dicts gives, made piece by piece without the dicts. Without
    ``weights``, the messages leave out their ``weight`` (as ``kto`` writes them).

    Raises:
        _Unusual: a piece the strict encoder refuses (NaN in tool arguments...) or a step index that is not an
            int: the caller encodes the dicts instead, the one place the general rules live.
    """
    label_map = options.label_map
    names = tool_names(view.tools())
    text_tool = view.text_tool()
    as_string = options.tool_arguments == "string"
    policy = options.weights
    assistant_call, assistant = (_ASSISTANT_CALL, _ASSISTANT) if weights else (_ASSISTANT_CALL_NW, _ASSISTANT_NW)
    messages: list[str] = []
    system = system_of(view, options)
    if system:
        messages.append(_strict({"role": "system", "content": system}))
    messages.append(_USER % _S(view.prompt()))
    tail = 1  # the messages answering the last step (one per call of a turn with several)
    steps: list[str] = []
    made: dict[tuple[Any, ...], tuple[str, int | None]] = {}
    args_text: dict[int, tuple[Any, str]] = {}  # id(arguments) -> (arguments, text): tool_call caches its calls
    last_obs = None  # the env's last answer
    thought_of = view.thought
    candidates = view.candidates.get
    for rec in view.steps():
        i = rec["i"]
        if type(i) is not int:
            raise _Unusual
        action = rec.get("action")
        call = tool_call(action, names, text_tool)
        cands = candidates(i)
        if not cands:
            r: int | None = None
            label_text = _UNLABELED
        else:
            # A step's label text (or none, when its one candidate is not preferred) depends only on the fields in
            # the key (the type and the repr tell 1, 1.0 and True, 0.0 and -0.0 apart): made once for each set.
            c = cands[0]
            v = c.value
            key = (c.judge, c.kind, type(v), repr(v), v, c.rationale, c.tags, type(c)) if len(cands) == 1 else None
            try:
                got = made.get(key) if key is not None else None
            except TypeError:  # an unhashable value or tag list: made for this step
                key, got = None, None
            if got is None:
                chosen = view.choose(i, mapped=False)
                if chosen is None:
                    got = (_UNLABELED, None)
                else:
                    judge, kind, source, value, r, label, rationale, tags = _label_fields(chosen, label_map)
                    text = _strict({"judge": judge, "kind": kind, "origin": source, "value": value, "rating": r,
                                    "label": label, "rationale": rationale, "tags": list(tags)})
                    got = (text[1:-1], r)
                if key is not None:
                    made[key] = got
            label_text, r = got
        failed = bool(rec.get("failure"))
        weight = weight_of(policy, failed, r)
        thought = thought_of(rec) or ""
        if call is not None and thought and type(action) is str and fenced_in(thought, action):
            call = None  # the agent wrote the command in its text: that text is its turn
        several = several_calls(action, rec, names, text_tool, thought) \
            if call is None and type(action) is list else None
        n = _int_repr(i)
        w = _int_repr(weight) if weights else ""
        if call is not None:
            name = _S(call.name) if type(call.name) is str else _strict(call.name)
            steps.append(_STEP % (n, len(messages), _int_repr(weight), _TRUTH[failed], name, label_text))
            args = call.arguments
            known = args_text.get(id(args))
            if known is None or known[0] is not args:
                known = args_text[id(args)] = (args, _S(dumps(args)) if as_string else _strict(exact(args)))
            last_obs = observation_text(rec)
            messages.append(assistant_call % (_S(thought), n, name, known[1], w))
            messages.append(_TOOL % (n, name, _S(last_obs)))
            tail = 1
        elif several:  # (rare: made as the dict path makes them)
            steps.append(_STEP % (n, len(messages), _int_repr(weight), _TRUTH[failed], _strict(several[0][0]),
                                  label_text))
            messages.extend(map(_strict, _several_messages(i, thought, several, as_string,
                                                           weight if weights else None)))
            last_obs = observation_text(rec)
            tail = len(several)
        else:
            steps.append(_STEP % (n, len(messages), _int_repr(weight), _TRUTH[failed], "null", label_text))
            messages.append(assistant % (_S(turn_text(thought, action)), w))
            last_obs = observation_text(rec)
            messages.append(_USER % _S(last_obs))
            tail = 1
    final = None
    if steps:  # the env's answer to the agent's last message goes to the metadata, as in ``conversation``
        del messages[-tail:]
        final = last_obs
    return messages, steps, final


def meta_text(view: EpisodeView, final: str | None, steps: list[str]) -> str:
    """The ``trajrec`` column's text: :func:`episode_meta`, the final observation and the steps' metadata."""
    meta = episode_meta(view)
    meta["final_observation"] = final
    return f'{_strict(meta)[:-1]},"steps":[{",".join(steps)}]}}'


class ChatFormat(JsonlFormat):
    name = "chat"
    built_rows = True

    def lines(self, view: EpisodeView) -> tuple[list[str], int]:
        try:
            messages, steps, final = conversation_text(view, self.options)
            if not steps:  # as :meth:`rows`: a row with no assistant turn is left out
                raise Skip(NO_STEP)
            line = (f'{{"messages":[{",".join(messages)}],"tools":{_strict(exact(view.tools()))},'
                    f'"trajrec":{meta_text(view, final, steps)}}}')
        except _Unusual:
            return super().lines(view)
        return [line], len(steps)

    def rows(self, view: EpisodeView) -> tuple[Iterable[dict[str, Any]], int]:
        messages, steps, final = conversation(view, self.options)
        if not steps:  # a row with no assistant turn teaches nothing (all its tokens masked): left out, as kto does
            raise Skip(NO_STEP)
        meta = episode_meta(view)
        meta["final_observation"] = final
        meta["steps"] = steps
        row = {"messages": messages, "tools": exact(view.tools()), "trajrec": meta}
        return [row], len(steps)
