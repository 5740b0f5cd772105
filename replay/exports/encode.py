"""JSON for exports: fast on the common case, lossless or explicit about the odd values, and tool calls.

:func:`dumps` runs ``json.dumps`` (C-accelerated) with a ``default`` hook for numpy values, bytes and the codec's
markers. A cheap scan first looks for the values plain JSON would change or that Arrow readers refuse; only a row
holding one takes the slow exact pass (:func:`jsonable`). The encoding, documented in ``docs/EXPORT.md``:

* NaN and infinities become ``null`` (strict JSON, which Arrow readers require);
* an int outside the signed 64-bit range becomes ``{"$int": "<decimal digits>"}`` (Arrow, DuckDB and Polars refuse
  such a number, and a float would change it);
* a dict with any key that is not text has every key encoded so that no two can collide: a non-text key becomes
  ``"$"`` + its JSON text (``1`` -> ``"$1"``, ``None`` -> ``"$null"``, ``(1, 2)`` -> ``"$[1,2]"``), and a text key
  that starts with ``$`` gets a second ``$`` (``"$1"`` -> ``"$$1"``); plain JSON would turn ``1`` and ``"1"`` into
  the same key ``"1"``. Dicts whose keys are all text are written as they are.

>>> import numpy as np
>>> dumps({"obs": np.arange(3), "x": np.float32(0.5), "raw": b"\\x01", "bad": float("nan")})
'{"obs":[0,1,2],"x":0.5,"raw":{"$bytes":"01"},"bad":null}'
>>> dumps({1: "a", "1": "b", None: "c", "null": "d", "$1": "e"})
'{"$1":"a","1":"b","$null":"c","null":"d","$$1":"e"}'
>>> dumps([2**64, -2**63])
'[{"$int":"18446744073709551616"},-9223372036854775808]'
>>> tool_call('{"tool": "cat", "args": {"path": "a.txt"}}')
ToolCall(name='cat', arguments={'path': 'a.txt'})
>>> tool_call("ls -la /tmp") is None
True
>>> tool_call("ls -la /tmp", text_tool=("shell", "command"))
ToolCall(name='shell', arguments={'command': 'ls -la /tmp'})
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable, NamedTuple

import numpy as np

from trajrec.recorder import Unencodable, UnknownExt
from trajrec.recorder.classify import parse_tool_call

__all__ = ["INT_MARKER", "ToolCall", "dumps", "jsonable", "text_of", "tool_call", "tool_names"]

#: The key of the marker object an int outside the signed 64-bit range is written as.
INT_MARKER = "$int"
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


class ToolCall(NamedTuple):
    """A function call read from an action: the tool's name and its arguments (a dict)."""

    name: str
    arguments: Any


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
    """``value`` as strict JSON data under the export encoding (module docstring): NaN and infinities None, big
    ints marked, dict keys that could collide encoded, odd values through the default hook."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if _I64_MIN <= value <= _I64_MAX else {INT_MARKER: str(value)}
    if isinstance(value, dict):
        if all(type(k) is str for k in value):
            return {k: jsonable(v) for k, v in value.items()}
        return {_key(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return jsonable(_default(value))


def _key(k: Any) -> str:
    if isinstance(k, str):
        return "$" + k if k.startswith("$") else k
    return "$" + _fast(jsonable(k))


def _needs_slow(value: Any, depth: int = 0) -> bool:
    """Whether plain ``json.dumps`` would change ``value``: a non-text dict key, an int beyond 64 bits, a NaN
    (the C encoder raises on NaN anyway; checked here too so one pass decides). Costs a walk over containers only:
    text, the common observation, is one type check."""
    t = type(value)
    if t is str or t is bool or value is None:
        return False
    if t is int:
        return not _I64_MIN <= value <= _I64_MAX
    if t is float:
        return not math.isfinite(value)
    if t is dict:
        for k, v in value.items():
            if type(k) is not str:
                return True
            if type(v) is not str and _needs_slow(v, depth + 1):
                return True
        return False
    if t is list or t is tuple:
        return any(type(v) is not str and _needs_slow(v, depth + 1) for v in value)
    if isinstance(value, np.ndarray):
        kind = value.dtype.kind
        return kind in "OV" or (kind == "u" and value.dtype.itemsize == 8 and value.size > 0
                                and int(value.max()) > _I64_MAX)
    if isinstance(value, np.generic):
        return isinstance(value, np.uint64) and int(value) > _I64_MAX
    if isinstance(value, (int, float, dict, list, tuple)):  # subclasses: let the exact pass decide
        return True
    return False


# No circular check: rows are built from decoded msgpack and plain label data, which cannot hold cycles.
_fast = json.JSONEncoder(ensure_ascii=False, allow_nan=False, check_circular=False, default=_default,
                         separators=(",", ":")).encode


def dumps(value: Any) -> str:
    """One compact JSON document under the export encoding (see the module docstring)."""
    if _needs_slow(value):
        return _fast(jsonable(value))
    try:
        return _fast(value)
    except (ValueError, TypeError):
        # Values only the default hook turns into JSON (numpy, sets...) may hold odd keys or numbers inside.
        return _fast(jsonable(value))


def text_of(value: Any) -> str:
    """A recorded value as text: text as it is, None as "", anything else as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return dumps(value)


def tool_names(tools: Iterable[Any] | None) -> frozenset[str]:
    """The function names of OpenAI-style tool schemas (``{"type": "function", "function": {"name": ...}}`` or
    the bare function object)."""
    names = set()
    for t in tools or ():
        if isinstance(t, dict):
            fn = t["function"] if isinstance(t.get("function"), dict) else t
            if isinstance(fn.get("name"), str):
                names.add(fn["name"])
    return frozenset(names)


_CALLS: dict[Any, ToolCall | None] = {}
_CALLS_MAX = 4096


def tool_call(action: Any, names: frozenset[str] | None = None,
              text_tool: tuple[str, str] | None = None) -> ToolCall | None:
    """The function call an action makes, or None when it makes none.

    A JSON tool call (``{"tool"|"name": ..., "args"|"arguments": {...}}``, as text or a dict) is a call when its
    arguments are an object and, given ``names``, its tool is one of them. Other text is a call of ``text_tool``
    (``(tool name, argument name)``: the env's declared tool that takes a plain-text action, e.g. a command line)
    when the env declares one; anything else is no call. Results for text actions are cached (agents repeat
    actions; parsing JSON is the cost): treat them as read-only.
    """
    if isinstance(action, str):
        key = (action, names, text_tool)
        try:
            return _CALLS[key]
        except KeyError:
            pass
        if len(_CALLS) >= _CALLS_MAX:
            _CALLS.clear()
        call = _CALLS[key] = _text_call(action, names, text_tool)
        return call
    if isinstance(action, dict):
        return _named_call(action, names)
    return None


def _text_call(action: str, names: frozenset[str] | None, text_tool: tuple[str, str] | None) -> ToolCall | None:
    if action.lstrip().startswith("{"):
        named = _named_call(action, names)
        if named is not None or parse_tool_call(action) is not None:
            return named  # a JSON call of a tool the env does not have is no call of the text tool either
    if text_tool is not None and (names is None or text_tool[0] in names):
        return ToolCall(text_tool[0], {text_tool[1]: action})
    return None


def _named_call(call: Any, names: frozenset[str] | None) -> ToolCall | None:
    parsed = parse_tool_call(call)
    if parsed is None:
        return None
    name, args = parsed
    if args is None:
        args = {}
    if not isinstance(args, dict) or (names is not None and name not in names):
        return None
    return ToolCall(name, args)
