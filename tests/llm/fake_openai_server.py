"""A small OpenAI-compatible chat-completions server for the agent tests: real HTTP on 127.0.0.1, scripted replies.

Each POST to ``/v1/chat/completions`` takes the next scripted reply: a tool call, plain text, a tool call with
malformed arguments, an HTTP error, or any of them late (``_delay`` seconds). The requests are kept so tests can check what the agent sent.
(A module with a unique name, not conftest.py: test folders share one import namespace.)
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def tool_reply(name: str, arguments: str, *, prompt_tokens: int = 100, completion_tokens: int = 10,
               reasoning: str | None = None, content: str | None = None) -> dict[str, Any]:
    """A completion whose message calls ``name`` with ``arguments`` (a string, passed as given: may be bad JSON),
    with the reply text ``content`` beside the call."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "tool_calls": [
        {"id": f"call_{name}_{prompt_tokens}", "type": "function", "function": {"name": name, "arguments": arguments}}]}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    return _completion(message, prompt_tokens, completion_tokens, "tool_calls")


def text_reply(text: str, *, prompt_tokens: int = 100, completion_tokens: int = 10) -> dict[str, Any]:
    return _completion({"role": "assistant", "content": text}, prompt_tokens, completion_tokens, "stop")


def raw_reply(body: bytes, content_type: str = "application/json") -> dict[str, Any]:
    """A 200 reply whose body is ``body`` as given (an HTML page, a JSON document that is no chat completion)."""
    return {"_raw": body, "_type": content_type}


def error_reply(status: int, message: str = "upstream model crashed") -> dict[str, Any]:
    return {"_status": status, "error": {"message": message, "type": "server_error", "code": status}}


def _completion(message: dict[str, Any], prompt_tokens: int, completion_tokens: int, finish: str) -> dict[str, Any]:
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": 1_700_000_000, "model": "fake-model-1",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


class FakeOpenAIServer:
    """``with FakeOpenAIServer(replies) as server:`` serves ``replies`` in order at ``server.base_url``."""

    def __init__(self, replies: list[dict[str, Any]]) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                with outer._lock:
                    outer.requests.append({"path": self.path, "body": body,
                                           "authorization": self.headers.get("Authorization")})
                    reply = outer.replies.pop(0) if outer.replies else error_reply(503, "script exhausted")
                if self.path != "/v1/chat/completions":
                    reply = error_reply(404, f"no route {self.path}")
                if reply.get("_delay"):
                    time.sleep(reply["_delay"])  # longer than the client's timeout: the attempt times out
                status = reply.get("_status", 200)
                data = reply["_raw"] if "_raw" in reply else json.dumps(
                    {k: v for k, v in reply.items() if not k.startswith("_")}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", reply.get("_type", "application/json"))
                    for name, value in (reply.get("_headers") or {}).items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout under test): nobody is left to answer

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then closed): connecting is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
