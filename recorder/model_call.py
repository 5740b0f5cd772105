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
import math
import numbers
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

#: Keys of ``usage`` summed per episode (OpenAI's names; other servers' names are mapped onto them).
USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")
#: Kinds of failed attempt: the request failed with an HTTP status, timed out, could not connect, or the
#: completion could not be turned into an action.
ATTEMPT_ERRORS = ("http_error", "timeout", "connection", "malformed", "unparseable", "interrupted")
#: ``agent_error.message`` of an episode stopped (Ctrl-C) while its agent waited on the model: the call in flight
#: is kept (its ``error`` an ``interrupted`` attempt), the outcome stays ``stopped``.
INTERRUPTED_CALL = "stopped while the agent waited on its model"
#: ``agent_error.message`` of an episode stopped (Ctrl-C) while the env ran a step (followed by its number): that
#: step is not recorded, but its note (the model call that chose the action, a thought) and its action are kept in
#: ``agent_error`` (``interrupted_step``: ``{"i", "action"}``), and its calls count in the model totals.
INTERRUPTED_STEP = "stopped while the env ran step"
#: The largest token count summed: a count beyond it is no count (and a float reader still holds every sum of a
#: few such counts exactly). A note is data from anyone.
MAX_TOKENS = 2**53
#: How many values a summary's ``model.left_out`` names (``left_out_count`` counts them all).
LEFT_OUT_NAMED = 20


def token_count(value: Any) -> int | None:
    """``value`` as a token count: a whole number from 0 to :data:`MAX_TOKENS` (``10.0`` -> ``10``); None for
    anything else (a bool, NaN, an infinity, a negative, a fraction, a huge int, text, a list).

    >>> [token_count(v) for v in (3, 4.0, True, float("nan"), -1, 1.5, 10**400, "7")]
    [3, 4, None, None, None, None, None, None]
    """
    if type(value) is int:  # the usual case first
        return value if 0 <= value <= MAX_TOKENS else None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    if isinstance(value, numbers.Integral):  # numpy ints
        value = int(value)
        return value if 0 <= value <= MAX_TOKENS else None
    try:
        f = float(value)
    except (OverflowError, ValueError, TypeError):
        return None
    return int(f) if math.isfinite(f) and 0 <= f <= MAX_TOKENS and f.is_integer() else None


def amount(value: Any) -> float | None:
    """``value`` as seconds or USD: a finite number >= 0, as a float; None for anything else (a bool, NaN, an
    infinity, a negative, an int too big for a float, text).

    >>> [amount(v) for v in (0.5, 2, True, float("inf"), -1.0, 10**400, None)]
    [0.5, 2.0, None, None, None, None, None]
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        f = float(value)
    except (OverflowError, ValueError, TypeError):
        return None
    return f if math.isfinite(f) and f >= 0 else None


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

    Only counts (:func:`token_count`) are mapped or summed into ``total_tokens``; the values given are kept as
    they were (a note is data from anyone: ``ModelUsage`` leaves the others out of the totals and names them).

    >>> normalize_usage({"input_tokens": 3, "output_tokens": 4})
    {'input_tokens': 3, 'output_tokens': 4, 'prompt_tokens': 3, 'completion_tokens': 4, 'total_tokens': 7}
    >>> normalize_usage({"prompt_tokens": 10, "completion_tokens": float("nan")})["total_tokens"]
    10
    """
    out = dict(usage)
    for theirs, ours in (("input_tokens", "prompt_tokens"), ("output_tokens", "completion_tokens")):
        if ours not in out and token_count(out.get(theirs)) is not None:
            out[ours] = token_count(out[theirs])
    if "total_tokens" not in out or out["total_tokens"] is None:
        p, c = token_count(out.get("prompt_tokens")), token_count(out.get("completion_tokens"))
        if p is not None or c is not None:
            out["total_tokens"] = (p or 0) + (c or 0)
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
    return ((token_count(u.get("prompt_tokens")) or 0) * prices.get("input", 0.0)
            + (token_count(u.get("completion_tokens")) or 0) * prices.get("output", 0.0)) / 1e6


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
                 "latency", "cost", "models", "left_out", "left_out_count", "calls_without_usage")

    def __init__(self) -> None:
        self.calls = 0
        self.failed_attempts = 0
        self.failed_calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.total_tokens = 0
        self.latency = 0.0
        self.cost: float | None = None
        self.models: dict[str, int] = {}
        #: ``"<where>: <value>"`` of the first :data:`LEFT_OUT_NAMED` values not summed (not a count, seconds or
        #: USD: NaN, a negative, a bool, a fraction of a token...); ``left_out_count`` counts them all.
        self.left_out: list[str] = []
        self.left_out_count = 0
        #: calls that answered without a ``usage`` (some local servers): their tokens are unknown, not 0
        self.calls_without_usage = 0

    def add_note(self, note: Any, where: str = "note") -> None:
        """Add the model calls of a step's note; ``where`` names the note in :attr:`left_out` (``step 3 note``)."""
        if not isinstance(note, Mapping):
            return
        one = note.get("model_call")
        if isinstance(one, Mapping):
            self.add_call(one, f"{where}.model_call")
        many = note.get("model_calls")
        if isinstance(many, (list, tuple)):
            for k, call in enumerate(many):
                if isinstance(call, Mapping):
                    self.add_call(call, f"{where}.model_calls[{k}]")

    def _leave_out(self, where: str, value: Any) -> None:
        self.left_out_count += 1
        if len(self.left_out) < LEFT_OUT_NAMED:
            self.left_out.append(f"{where}: {_short(value)}")

    def add_call(self, call: Mapping[str, Any], where: str = "model_call") -> None:
        self.calls += 1
        if call.get("error"):
            # ``error`` is the last attempt, which failed too (``attempts`` are the failed ones before it): a call
            # whose 4 attempts all failed counts 4, as the agent's message says ("failed 4 attempts").
            self.failed_calls += 1
            self.failed_attempts += 1
        model = call.get("model")
        if isinstance(model, str):
            self.models[model] = self.models.get(model, 0) + 1
        if not call.get("error") and not isinstance(call.get("usage"), Mapping):
            self.calls_without_usage += 1
        attempts = call.get("attempts")
        parts = [call]
        if isinstance(attempts, (list, tuple)):
            self.failed_attempts += len(attempts)
            parts.extend(a for a in attempts if isinstance(a, Mapping))
        error = call.get("error")
        if isinstance(error, Mapping):  # the last failed attempt: its wait counts too
            parts.append(error)
        for k, part in enumerate(parts):  # failed attempts cost time, and tokens when the output was unusable
            at = (where if k == 0 else f"{where}.error" if part is error
                  else f"{where}.attempts[{k - 1}]")
            usage = part.get("usage")
            if isinstance(usage, Mapping):
                u = normalize_usage(usage)
                for key in USAGE_KEYS:
                    value = u.get(key)
                    if value is not None:
                        n = token_count(value)
                        if n is None:
                            self._leave_out(f"{at}.usage.{key}", value)
                        else:
                            setattr(self, key, getattr(self, key) + n)
            latency = part.get("latency")
            if latency is not None:
                secs = amount(latency)
                if secs is None:
                    self._leave_out(f"{at}.latency", latency)
                else:
                    self.latency += secs
            cost = part.get("cost")
            if cost is not None:
                usd = amount(cost)
                if usd is None:
                    self._leave_out(f"{at}.cost", cost)
                else:
                    self.cost = (self.cost or 0.0) + usd

    def to_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "failed_attempts": self.failed_attempts, "failed_calls": self.failed_calls,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.total_tokens, "latency": self.latency, "cost": self.cost,
                "models": dict(self.models),
                # only when some value was not summed: the summaries of other episodes stay as they were
                **({"left_out": list(self.left_out), "left_out_count": self.left_out_count} if self.left_out_count
                   else {}),
                **({"calls_without_usage": self.calls_without_usage} if self.calls_without_usage else {})}


#: The summary's ``model`` field for episodes without model calls (and files written before it existed).
EMPTY_USAGE: dict[str, Any] = ModelUsage().to_dict()


def model_usage_totals(summary: Mapping[str, Any] | None) -> dict[str, Any]:
    """The summary's ``model`` totals, with the defaults for episodes that have none, safe to show.

    A file may hold totals no display can take (written before the recorder left such values out, or by anyone):
    a token total that is not a count (:func:`token_count`), seconds or a cost that is not :func:`amount`, becomes
    None and is named in ``left_out`` (``"summary.model.total_tokens: nan"``); a count of calls that is not one
    becomes 0.

    >>> t = model_usage_totals({"model": {"calls": 1, "total_tokens": float("nan"), "latency": -1}})
    >>> t["total_tokens"], t["latency"], t["left_out"]
    (None, None, ['summary.model.total_tokens: nan', 'summary.model.latency: -1'])
    """
    found = (summary or {}).get("model")
    if not isinstance(found, Mapping):
        return dict(EMPTY_USAGE)
    out = {**EMPTY_USAGE, **found}
    bad: list[str] = []
    for key, ok in (("calls", token_count), ("failed_attempts", token_count), ("failed_calls", token_count),
                    ("prompt_tokens", token_count), ("completion_tokens", token_count),
                    ("total_tokens", token_count), ("latency", amount), ("cost", amount)):
        value = out[key]
        if value is None or type(value) is (int if ok is token_count else float) and ok(value) == value:
            continue  # the usual case: as recorded
        good = ok(value)
        if good is None:
            bad.append(f"summary.model.{key}: {_short(value)}")
            good = 0 if key in ("calls", "failed_attempts", "failed_calls") else None
        out[key] = good
    if not isinstance(out.get("models"), Mapping):
        out["models"] = {}
    unknown = token_count(out.get("calls_without_usage")) or 0
    if unknown and unknown >= out["calls"] - (out["failed_calls"] or 0):
        # No answered call said how many tokens it used: the totals are unknown, not 0 (free).
        out["prompt_tokens"] = out["completion_tokens"] = out["total_tokens"] = None
    left = out.get("left_out")
    left = [t for t in left if isinstance(t, str)] if isinstance(left, list) else []
    if bad:
        out["left_out"] = left + bad
    elif "left_out" in out:
        out["left_out"] = left
    return out


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


def _short(value: Any) -> str:
    """``repr(value)`` cut to 40 characters (an int too long for text is named by its size)."""
    try:
        text = repr(value)
    except ValueError:  # Python's limit on the digits of an int turned into text
        return f"an int of {value.bit_length()} bits"
    return text if len(text) <= 40 else text[:37] + "..."


def note_thought(note: Any) -> Any:
    """The agent's text before its action, as recorded: the note's ``thought``, else the reply text of the model
    call the step came from (``note["model_call"]["content"]``: what a model agent such as ``trajrec record
    --agent openai`` records; of several calls, ``note["model_calls"]``, the last), else None."""
    if not isinstance(note, dict):
        return None
    t = note.get("thought")
    if t is not None:
        return t
    call = note.get("model_call")
    if call is None and isinstance(note.get("model_calls"), list) and note["model_calls"]:
        call = note["model_calls"][-1]
    if isinstance(call, dict):
        content = call.get("content")
        if isinstance(content, str) and content:
            return content
    return None
