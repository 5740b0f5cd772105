"""JSON for exports: fast on the common case, exact about the odd values, and the text forms of actions.

:func:`dumps` runs ``json.dumps`` (C-accelerated) with a ``default`` hook for numpy values, bytes and the codec's
markers; only a row holding NaN/infinity or non-text dict keys takes a slow second pass that turns NaN and
infinities into ``null`` and keys into text. That keeps the ≥ 50,000 steps/s JSONL target without orjson.

>>> import numpy as np
>>> dumps({"obs": np.arange(3), "x": np.float32(0.5), "raw": b"\\x01", "bad": float("nan")})
'{"obs":[0,1,2],"x":0.5,"raw":{"$bytes":"01"},"bad":null}'
>>> tool_call('{"tool": "cat", "args": {"path": "a.txt"}}')
ToolCall(name='cat', arguments={'path': 'a.txt'}, synthetic=False)
>>> tool_call("ls -la /tmp")
ToolCall(name='shell', arguments={'command': 'ls -la /tmp'}, synthetic=True)
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple

import numpy as np

from trajrec.recorder import Unencodable, UnknownExt
from trajrec.recorder.classify import parse_tool_call

__all__ = ["ACT_TOOL", "SHELL_TOOL", "ToolCall", "dumps", "jsonable", "text_of", "tool_call", "tool_call_json"]


class ToolCall(NamedTuple):
    """A function call read from an action; ``synthetic`` when trajrec made it up (``shell``/``act``)."""

    name: str
    arguments: Any
    synthetic: bool

#: The function schema used in chat exports for actions that are command lines, not JSON tool calls.
SHELL_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "shell",
        "description": "Run one command line in the environment.",
        "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
    },
}

#: The function schema for actions that are neither text nor tool calls (numbers, arrays).
ACT_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "act",
        "description": "Take an action in the environment.",
        "parameters": {"type": "object", "properties": {"action": {}}, "required": ["action"]},
    },
}


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"$bytes": bytes(obj).hex()}
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    if isinstance(obj, Unencodable):
        return {"$unencodable": obj.type, "repr": obj.repr}
    if isinstance(obj, UnknownExt):
        return {"$ext": obj.code, "hex": obj.data.hex()}
    if hasattr(obj, "_asdict"):
        return obj._asdict()
    return repr(obj)


def jsonable(value: Any) -> Any:
    """``value`` as strict JSON data: NaN and infinities become None, dict keys text, odd values via the
    default hook."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, dict):
        return {k if isinstance(k, str) else _key(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return jsonable(_default(value))


def _key(k: Any) -> str:
    if isinstance(k, (int, float, bool)) or k is None:
        return json.dumps(k)
    return str(k)


# No circular check: rows are built from decoded msgpack and plain label data, which cannot hold cycles.
_fast = json.JSONEncoder(ensure_ascii=False, allow_nan=False, check_circular=False, default=_default,
                         separators=(",", ":")).encode


def dumps(value: Any) -> str:
    """One compact JSON document; NaN/infinity become ``null`` (strict JSON, which Arrow readers require)."""
    try:
        return _fast(value)
    except (ValueError, TypeError):
        # NaN/inf (ValueError) or non-text dict keys such as tuples (TypeError): the rare slow path.
        return _fast(jsonable(value))


def text_of(value: Any) -> str:
    """A recorded value as text: text as it is, None as "", anything else as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return dumps(value)


_CALLS: dict[str, ToolCall] = {}
_CALLS_MAX = 4096


def tool_call(action: Any) -> ToolCall:
    """``(function name, arguments)`` of an action: a JSON tool call ``{"tool"|"name": ..., "args"|"arguments":
    {...}}`` keeps its name and arguments; other text is a ``shell`` command line; anything else is ``act``.

    Results for text actions are cached (agents repeat actions; parsing JSON is the cost): treat them as
    read-only."""
    if isinstance(action, str):
        hit = _CALLS.get(action)
        if hit is not None:
            return hit
        if len(_CALLS) >= _CALLS_MAX:
            _CALLS.clear()
        call = _CALLS[action] = _text_call(action)
        return call
    if isinstance(action, dict):
        named = _named_call(action)
        if named is not None:
            return named
    return ToolCall("act", {"action": action}, True)


_ARGS_JSON: dict[str, tuple[str, str, bool]] = {}


def tool_call_json(action: Any) -> tuple[str, str, bool]:
    """``(name, arguments as JSON text, synthetic)`` of an action, as chat exports write it (cached for text)."""
    if isinstance(action, str):
        hit = _ARGS_JSON.get(action)
        if hit is None:
            if len(_ARGS_JSON) >= _CALLS_MAX:
                _ARGS_JSON.clear()
            name, args, synthetic = tool_call(action)
            hit = _ARGS_JSON[action] = (name, dumps(args), synthetic)
        return hit
    name, args, synthetic = tool_call(action)
    return name, dumps(args), synthetic


def _text_call(action: str) -> ToolCall:
    named = _named_call(action)
    return named if named is not None else ToolCall("shell", {"command": action}, True)


def _named_call(call: Any) -> ToolCall | None:
    parsed = parse_tool_call(call)
    return ToolCall(parsed[0], parsed[1], False) if parsed is not None else None
