"""The model side of a step: what an LLM agent sent, what came back, and what it cost.

A step taken by an LLM agent carries one model call in its note, under ``note["model_call"]`` (several calls for
one step go in a list under ``note["model_calls"]``). :class:`ModelCall` builds that record; ``docs/RECORDING.md``
describes the fields. The recorder sums tokens, latency, cost and failed attempts per episode into the summary
(:func:`model_usage_totals`), which ``trajrec ls``, the viewer's header and the records export show.

>>> call = ModelCall(model="m", usage={"prompt_tokens": 10, "completion_tokens": 5}, latency=0.5,
...                  attempts=[{"error": "http_error", "status": 500, "latency": 0.1}])
>>> note = call.to_dict()
>>> note["usage"]["total_tokens"], note["attempts"][0]["status"]
(15, 500)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

#: Keys of ``usage`` summed per episode (OpenAI's names; other servers' names are mapped onto them).
USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")
#: Kinds of failed attempt: the request failed with an HTTP status, timed out, could not connect, or the
#: completion could not be turned into an action.
ATTEMPT_ERRORS = ("http_error", "timeout", "connection", "unparseable")


@dataclass
class ModelCall:
    """One model call made to choose a step's action, with the failed attempts before it.

    Attributes:
        model: the model id the server reported (or the one requested).
        messages: the messages sent that the previous call of this episode did not send (the conversation so far
            is the concatenation over the steps; see :func:`conversation`). Each is a chat message dict.
        messages_before: how many messages preceded ``messages`` in the request.
        tools: the tool schemas sent, when they changed since the previous call (usually only on the first).
        completion: the raw completion: the response as the server sent it (a dict), or its text.
        content: the assistant's text.
        tool_calls: the parsed tool calls, ``[{"id", "name", "arguments": dict | None, "raw_arguments": str,
            "error": str | None}]`` (``error`` says why ``raw_arguments`` did not parse).
        reasoning: the reasoning text, when the server returns it separately.
        sampling: the sampling settings sent (temperature, top_p, max_tokens, seed...).
        usage: token counts: ``prompt_tokens``, ``completion_tokens``, ``total_tokens`` (plus any detail fields).
        latency: seconds from request to response of the call that succeeded.
        cost: USD for this call (the successful attempt), when known.
        attempts: the failed attempts before it, in order: ``{"error": one of ATTEMPT_ERRORS, "message",
            "status" (HTTP), "latency", "time", "usage", "cost"}``.
        error: set when every attempt failed: ``{"error", "message", ...}`` like an attempt.
        provider: free-form: base URL, server name, request id.
        time: wall-clock start of the call (seconds since the epoch).
    """

    model: str | None = None
    messages: list[dict[str, Any]] | None = None
    messages_before: int | None = None
    tools: list[dict[str, Any]] | None = None
    completion: Any = None
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    reasoning: str | None = None
    sampling: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    latency: float | None = None
    cost: float | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    provider: dict[str, Any] | None = None
    time: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record for ``env.note(model_call=...)``: the fields that are set, usage totals filled in."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if value is None or (name == "attempts" and not value):
                continue
            out[name] = value
        if self.usage is not None:
            out["usage"] = normalize_usage(self.usage)
        return out

    @classmethod
    def from_openai(cls, response: Any, **fields: Any) -> ModelCall:
        """A :class:`ModelCall` from an OpenAI-style chat completion (the ``openai`` client's object or its dict).

        Reads the model id, the first choice's text, tool calls (arguments parsed as JSON, with the parse error
        kept), reasoning (``reasoning_content`` or ``reasoning``, as vLLM, llama.cpp and Ollama return it) and
        usage (a server-reported ``usage.cost`` too). ``fields`` set the rest (messages, sampling, latency...).
        """
        # exclude_unset: the fields the server sent, not the client model's defaults for the ones it did not.
        raw = response.model_dump(exclude_unset=True) if hasattr(response, "model_dump") else dict(response)
        choices = raw.get("choices") or [{}]
        message = (choices[0] or {}).get("message") or {}
        usage = raw.get("usage") or None
        cost = usage.get("cost") if isinstance(usage, dict) and isinstance(usage.get("cost"), (int, float)) else None
        call = cls(model=raw.get("model"), completion=raw, content=message.get("content"),
                   tool_calls=parse_tool_calls(message.get("tool_calls") or ()),
                   reasoning=message.get("reasoning_content") or message.get("reasoning"),
                   usage=usage, cost=cost)
        for name, value in fields.items():
            setattr(call, name, value)
        return call


def parse_tool_calls(calls: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI-style tool calls as ``{"id", "name", "arguments", "raw_arguments", "error"}`` dicts.

    >>> parse_tool_calls([{"id": "c1", "function": {"name": "calc", "arguments": '{"expr": "1+'}}])[0]["error"]
    'arguments are not valid JSON: Unterminated string starting at: line 1 column 10 (char 9)'
    """
    out = []
    for call in calls:
        fn = call.get("function") or {}
        raw = fn.get("arguments")
        args: Any = None
        error = None
        if isinstance(raw, Mapping):
            args, raw = dict(raw), json.dumps(raw)
        elif isinstance(raw, str):
            try:
                args = json.loads(raw) if raw.strip() else {}
            except ValueError as exc:
                error = f"arguments are not valid JSON: {exc}"
            else:
                if not isinstance(args, dict):
                    error, args = f"arguments are not a JSON object: {raw[:60]!r}", None
        else:
            error = f"arguments missing (found {type(raw).__name__})"
        out.append({"id": call.get("id"), "name": fn.get("name"), "arguments": args, "raw_arguments": raw,
                    "error": error})
    return out


def normalize_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """``usage`` with OpenAI's key names (``input_tokens``/``output_tokens`` mapped) and ``total_tokens`` filled in.

    >>> normalize_usage({"input_tokens": 3, "output_tokens": 4})
    {'input_tokens': 3, 'output_tokens': 4, 'prompt_tokens': 3, 'completion_tokens': 4, 'total_tokens': 7}
    """
    out = dict(usage)
    for theirs, ours in (("input_tokens", "prompt_tokens"), ("output_tokens", "completion_tokens")):
        if ours not in out and isinstance(out.get(theirs), (int, float)):
            out[ours] = out[theirs]
    if "total_tokens" not in out or out["total_tokens"] is None:
        p, c = out.get("prompt_tokens"), out.get("completion_tokens")
        if isinstance(p, (int, float)) or isinstance(c, (int, float)):
            out["total_tokens"] = _num(p) + _num(c)  # a note is data from anyone: a list as a count adds 0
    return out


def failed_attempt(kind: str, message: str, *, latency: float | None = None, status: int | None = None,
                   **extra: Any) -> dict[str, Any]:
    """One failed attempt for :attr:`ModelCall.attempts` (``kind`` from :data:`ATTEMPT_ERRORS` or your own)."""
    rec: dict[str, Any] = {"error": kind, "message": message, "time": time.time()}
    if status is not None:
        rec["status"] = status
    if latency is not None:
        rec["latency"] = latency
    rec.update(extra)
    return rec


def cost_of(usage: Mapping[str, Any] | None, prices: Mapping[str, float] | None) -> float | None:
    """USD for ``usage`` at ``prices`` = ``{"input": USD per 1M prompt tokens, "output": USD per 1M completion}``.

    >>> cost_of({"prompt_tokens": 1000, "completion_tokens": 500}, {"input": 0.5, "output": 1.5})
    0.00125
    """
    if not usage or not prices:
        return None
    u = normalize_usage(usage)
    return ((u.get("prompt_tokens") or 0) * prices.get("input", 0.0)
            + (u.get("completion_tokens") or 0) * prices.get("output", 0.0)) / 1e6


def model_calls_of(note: Any) -> list[Mapping[str, Any]]:
    """The model calls a step's note holds (``model_call`` and ``model_calls``); empty for other notes."""
    if not isinstance(note, Mapping):
        return []
    calls: list[Mapping[str, Any]] = []
    one = note.get("model_call")
    if isinstance(one, Mapping):
        calls.append(one)
    many = note.get("model_calls")
    if isinstance(many, (list, tuple)):
        calls.extend(c for c in many if isinstance(c, Mapping))
    return calls


class ModelUsage:
    """Running totals of the model calls of an episode; :meth:`to_dict` is the summary's ``model`` field."""

    __slots__ = ("calls", "failed_attempts", "failed_calls", "prompt_tokens", "completion_tokens", "total_tokens",
                 "latency", "cost", "models")

    def __init__(self) -> None:
        self.calls = 0
        self.failed_attempts = 0
        self.failed_calls = 0
        self.prompt_tokens: float = 0
        self.completion_tokens: float = 0
        self.total_tokens: float = 0
        self.latency = 0.0
        self.cost: float | None = None
        self.models: dict[str, int] = {}

    def add_note(self, note: Any) -> None:
        for call in model_calls_of(note):
            self.add_call(call)

    def add_call(self, call: Mapping[str, Any]) -> None:
        self.calls += 1
        if call.get("error"):
            # ``error`` is the last attempt, which failed too (``attempts`` are the failed ones before it): a call
            # whose 4 attempts all failed counts 4, as the agent's message says ("failed 4 attempts").
            self.failed_calls += 1
            self.failed_attempts += 1
        model = call.get("model")
        if isinstance(model, str):
            self.models[model] = self.models.get(model, 0) + 1
        attempts = call.get("attempts")
        parts = [call]
        if isinstance(attempts, (list, tuple)):
            self.failed_attempts += len(attempts)
            parts.extend(a for a in attempts if isinstance(a, Mapping))
        for part in parts:  # failed attempts cost time, and tokens when the output was unusable
            usage = part.get("usage")
            if isinstance(usage, Mapping):
                u = normalize_usage(usage)
                self.prompt_tokens += _num(u.get("prompt_tokens"))
                self.completion_tokens += _num(u.get("completion_tokens"))
                self.total_tokens += _num(u.get("total_tokens"))
            self.latency += float(_num(part.get("latency")))
            cost = part.get("cost")
            if isinstance(cost, (int, float)) and not isinstance(cost, bool):
                self.cost = (self.cost or 0.0) + float(cost)

    def to_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "failed_attempts": self.failed_attempts, "failed_calls": self.failed_calls,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.total_tokens, "latency": self.latency, "cost": self.cost,
                "models": dict(self.models)}


#: The summary's ``model`` field for episodes without model calls (and files written before it existed).
EMPTY_USAGE: dict[str, Any] = ModelUsage().to_dict()


def model_usage_totals(summary: Mapping[str, Any] | None) -> dict[str, Any]:
    """The summary's ``model`` totals, with the defaults for episodes that have none."""
    found = (summary or {}).get("model")
    return {**EMPTY_USAGE, **found} if isinstance(found, Mapping) else dict(EMPTY_USAGE)


def conversation(notes: Iterable[Any]) -> list[dict[str, Any]]:
    """The messages sent over an episode, rebuilt from its steps' notes in order (each call stores only new ones).

    >>> conversation([{"model_call": {"messages": [{"role": "user", "content": "hi"}], "messages_before": 0}},
    ...               {"model_call": {"messages": [{"role": "assistant", "content": "8?"},
    ...                                            {"role": "user", "content": "yes"}], "messages_before": 1}}])
    [{'role': 'user', 'content': 'hi'}, {'role': 'assistant', 'content': '8?'}, {'role': 'user', 'content': 'yes'}]
    """
    out: list[dict[str, Any]] = []
    for note in notes:
        for call in model_calls_of(note):
            before = call.get("messages_before")
            if isinstance(before, int) and before < len(out):
                del out[before:]  # the agent dropped or rewrote context: start from where it says
            out.extend(dict(m) for m in call.get("messages") or () if isinstance(m, Mapping))
    return out


def _num(value: Any) -> float:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0
