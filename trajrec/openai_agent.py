"""An LLM tool-calling agent for the built-in envs, talking to any OpenAI-compatible server (vLLM, Ollama, llama.cpp's
server, OpenAI) through the official ``openai`` client; ``trajrec record ENV --agent openai`` drives it.

Each step is one model call; its record (:class:`~trajrec.recorder.model_call.ModelCall`) goes into the step's
note under ``model_call``: the messages sent since the previous call, the raw completion, the parsed tool calls,
reasoning, model id, sampling settings, token usage, latency, cost, and the failed attempts before it (HTTP
errors and timeouts, retried with backoff; replies with no tool call, answered with a reminder and asked again).
A 200 reply that is not a chat completion (not JSON, cut off, no message) is a ``malformed`` attempt, retried.
A tool call whose arguments are not valid JSON is passed to the env as it is, so the env's error, the model's
retry and its recovery are recorded as steps. The env's answer goes back as the tool's result, or as a user
message when the action was the reply's text. When every attempt fails, :meth:`OpenAIToolAgent.act` raises
:class:`ModelUnavailableError` (the caller ends the episode with ``end_episode_with_error``); a stop (Ctrl-C)
while waiting carries the call in flight as the ``KeyboardInterrupt``'s ``trajrec_note`` (``{"model_call":
...}``, its last attempt ``interrupted``), which ``Recorder.__exit__`` and ``trajrec record`` keep in the
summary's ``agent_error`` (outcome ``stopped``). The conventions are in ``docs/RECORDING.md``.

The env must speak the built-in envs' protocol: tool schemas in the reset info's ``tools`` (OpenAI's function
format), actions as JSON tool calls ``{"name": ..., "arguments": ...}``, text observations.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from trajrec.recorder.errors import AgentError, TrajrecUsageError, require
from trajrec.recorder.model_call import ModelCall, cost_of, failed_attempt

SYSTEM_PROMPT = ("You are an agent solving a task with tools. Call exactly one tool per turn; read each tool result "
                 "before the next call. When you know the answer, call the tool that submits it.")
NUDGE = "Your reply had no tool call. Call exactly one of the tools now."


class ModelUnavailableError(AgentError):
    """Raised by :meth:`OpenAIToolAgent.act` when a model call failed after all its retries (HTTP errors,
    timeouts, no connection): the agent has no action, so the env is not stepped. ``note`` holds the failed
    ``model_call`` (its ``error`` and failed ``attempts``) for ``Recorder.end_episode_with_error``."""


@dataclass
class OpenAIAgentConfig:
    """How to reach the model and how to sample.

    Attributes:
        model: the model id the server knows.
        base_url: the server's OpenAI-compatible API root, e.g. ``http://127.0.0.1:8000/v1``.
        api_key: the key; default ``$OPENAI_API_KEY``, else ``"none"`` (local servers ignore it).
        sampling: sent with every request (temperature, top_p, max_tokens, seed...).
        timeout: seconds per request.
        retries: how many times a failed request (HTTP error, timeout, no connection) is tried again.
        parse_retries: how many times a reply without a tool call is answered with a reminder and asked again.
        backoff: seconds before the first retry; doubles each time.
        prices: USD per million tokens, ``{"input": ..., "output": ...}``, for the cost; None when unknown.
    """

    model: str
    base_url: str | None = None
    api_key: str | None = None
    sampling: dict[str, Any] = field(default_factory=dict)
    timeout: float = 60.0
    retries: int = 3
    parse_retries: int = 2
    backoff: float = 0.5
    prices: dict[str, float] | None = None


class OpenAIToolAgent:
    """Chooses each action with one chat-completion call (``reset``/``act`` as the scripted agents).

    Args:
        config: model, server and sampling.
        client: an ``openai.OpenAI`` client to use instead of building one from ``config`` (its own retries are
            turned off so that every attempt is recorded).

    Raises:
        MissingDependencyError: the ``openai`` package is not installed (``pip install 'trajrec[openai]'``).
    """

    name = "openai-tools"
    version = "1"

    def __init__(self, config: OpenAIAgentConfig, client: Any = None) -> None:
        openai = require("openai", "pip install 'trajrec[openai]'", "the openai agent")
        self.config = config
        self._openai = openai
        if client is None:
            client = openai.OpenAI(base_url=config.base_url,
                                   api_key=config.api_key or os.environ.get("OPENAI_API_KEY") or "none",
                                   timeout=config.timeout, max_retries=0)
        else:
            client = client.with_options(max_retries=0)
        self.client = client
        self.messages: list[dict[str, Any]] = []
        self.tools: list[dict[str, Any]] | None = None
        self._sent = 0  # messages already sent in an earlier call: each record keeps only the new ones
        self._tools_sent = False
        self._pending: list[dict[str, Any]] = []  # tool calls of the last reply still owed a tool message
        self._said = False  # the last action was the reply's text (no tool call): the env's answer is owed

    def describe(self) -> dict[str, Any]:
        """Provenance fields: agent name and version, model, server, sampling settings, and the prices the cost
        of a call is computed with when the server gives none (USD per million tokens; None: not given)."""
        prices = self.config.prices
        return {"name": self.name, "version": self.version, "model": self.config.model,
                "base_url": self.config.base_url, "sampling": dict(self.config.sampling),
                "prices": dict(prices) if prices else None,
                "client": f"openai@{getattr(self._openai, '__version__', '?')}"}

    def reset(self, observation: Any, info: dict[str, Any]) -> None:
        tools = info.get("tools") if isinstance(info, dict) else None
        if not (isinstance(tools, list) and tools):
            raise TrajrecUsageError("the openai agent needs the env's tool schemas in the reset info's 'tools' "
                                    "(OpenAI function format), as the built-in trajrec/* envs give")
        self.tools = tools
        self.messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": str(observation)}]
        self._sent = 0
        self._tools_sent = False
        self._pending = []
        self._said = False

    def act(self, observation: Any, info: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Send the conversation (with ``observation``, the env's answer to the previous action), read one tool
        call; return the action and the note ``{"model_call": ...}``.

        Raises:
            ModelUnavailableError: every attempt of the call failed (``note`` holds the failed call).
            KeyboardInterrupt: stopped while waiting; ``trajrec_note`` holds the call so far.
        """
        if self._pending:  # the observation answers the first pending tool call; the others were not run
            first, *rest = self._pending
            self.messages.append({"role": "tool", "tool_call_id": first.get("id"), "content": str(observation)})
            for other in rest:
                self.messages.append({"role": "tool", "tool_call_id": other.get("id"),
                                      "content": "not run: one tool call per turn"})
            self._pending = []
        elif self._said:  # the env answered the reply's text: the model reads that answer as a user message
            self.messages.append({"role": "user", "content": str(observation)})
        self._said = False
        call = self._complete()
        note = {"model_call": call.to_dict()}
        if call.error is not None:
            # Every attempt failed: there is no action. Stepping the env with a made-up one would record the
            # outage as the agent's mistake in the env; the caller ends the episode as an error instead.
            error = call.error
            kind = " ".join(str(x) for x in (error.get("error"), error.get("status")) if x is not None)
            attempts = self.config.retries + 1
            raise ModelUnavailableError(
                f"the model server at {self.config.base_url or 'the default URL'} failed {attempts} attempt"
                f"{'s' if attempts != 1 else ''} of a call ({kind}: {str(error.get('message', ''))[:200]})", note)
        tool_calls = call.tool_calls or []
        if not tool_calls:
            self._said = True
            return call.content or "", note
        first = tool_calls[0]
        arguments = first["arguments"] if first["error"] is None else first["raw_arguments"]
        return json.dumps({"name": first["name"], "arguments": arguments}), note

    # -- the model call, with its failed attempts ------------------------------------------------------------------

    def _complete(self) -> ModelCall:
        start = time.time()
        attempts: list[dict[str, Any]] = []
        waiting: list[float] = []  # when the request in flight was sent
        try:
            return self._attempt_until_done(start, attempts, waiting)
        except KeyboardInterrupt as exc:
            # Stopped (Ctrl-C, SIGTERM) during the call: its failed attempts and the wait so far go with the stop,
            # for the caller to keep (see trajrec.recording.record_one); the last attempt is "interrupted".
            latency = perf_counter() - waiting[0] if waiting else None
            error = failed_attempt("interrupted", "stopped while waiting on the model", latency=latency)
            call = self._finish(ModelCall(model=self.config.model, error=error, time=start), attempts, None)
            exc.trajrec_note = {"model_call": call.to_dict()}  # type: ignore[attr-defined]
            raise

    def _attempt_until_done(self, start: float, attempts: list[dict[str, Any]], waiting: list[float]) -> ModelCall:
        openai = self._openai
        failures = parse_failures = 0
        while True:
            request = {"model": self.config.model, "messages": self.messages, "tools": self.tools,
                       **self.config.sampling}
            p0 = perf_counter()
            waiting[:] = [p0]
            try:
                response = self.client.chat.completions.create(**request)
            except openai.APIStatusError as exc:
                attempts.append(failed_attempt("http_error", _message(exc), status=exc.status_code,
                                               latency=perf_counter() - p0))
            except openai.APITimeoutError as exc:
                attempts.append(failed_attempt("timeout", _message(exc), latency=perf_counter() - p0))
            except openai.APIConnectionError as exc:
                attempts.append(failed_attempt("connection", _message(exc), latency=perf_counter() - p0))
            except ValueError as exc:
                # A 200 reply whose body is not JSON (cut off, a proxy's page): the client's JSON decoding raises.
                attempts.append(_malformed(exc, perf_counter() - p0))
            else:
                latency = perf_counter() - p0
                waiting.clear()
                try:
                    call = ModelCall.from_openai(response, latency=latency, time=start)
                    reply = _assistant_message(response)
                except Exception as exc:  # noqa: BLE001  (a 200 reply that is no chat completion: retried like an HTTP error)
                    attempts.append(_malformed(exc, latency))
                else:
                    call.cost = call.cost if call.cost is not None else cost_of(call.usage, self.config.prices)
                    if call.tool_calls or parse_failures >= self.config.parse_retries:
                        return self._finish(call, attempts, reply)
                    # No tool call: keep the reply in the conversation, remind, ask again (an "unparseable" attempt).
                    parse_failures += 1
                    attempts.append(failed_attempt(
                        "unparseable", "the reply had no tool call", latency=latency, usage=call.usage,
                        cost=call.cost, content=call.content, completion=call.completion))
                    self.messages.append(reply)
                    self.messages.append({"role": "user", "content": NUDGE})
                    continue
            waiting.clear()
            failures += 1
            if failures > self.config.retries:
                last = attempts.pop()
                return self._finish(ModelCall(model=self.config.model, error=last, time=start), attempts, None)
            time.sleep(self.config.backoff * 2 ** (failures - 1))

    def _finish(self, call: ModelCall, attempts: list[dict[str, Any]], reply: dict[str, Any] | None) -> ModelCall:
        call.attempts = attempts
        call.messages = self.messages[self._sent:]
        call.messages_before = self._sent
        call.sampling = dict(self.config.sampling)
        call.provider = {"base_url": self.config.base_url}
        if not self._tools_sent:
            call.tools = self.tools
            self._tools_sent = True
        self._sent = len(self.messages)
        if reply is not None:
            self.messages.append(reply)
            self._pending = list(reply.get("tool_calls") or [])
        return call


def _assistant_message(response: Any) -> dict[str, Any]:
    """The first choice's message as a request message (what the conversation sends back next time)."""
    message = response.choices[0].message
    out: dict[str, Any] = {"role": "assistant", "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [{"id": tc.id, "type": "function",
                              "function": {"name": tc.function.name, "arguments": tc.function.arguments}}
                             for tc in message.tool_calls]
    return out


def _malformed(exc: Exception, latency: float) -> dict[str, Any]:
    return failed_attempt("malformed", f"the reply is not a chat completion with a message ({_message(exc)})",
                          latency=latency)


def _message(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]
