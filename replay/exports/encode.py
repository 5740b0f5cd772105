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
import operator
from itertools import repeat
from typing import Any, Iterable, NamedTuple

from trajrec.recorder import Unencodable, UnknownExt
from trajrec.recorder.classify import parse_tool_call
from trajrec.recorder.codec import int_text, numpy, numpy_or_stub

__all__ = ["INT_MARKER", "ToolCall", "dumps", "dumps_built", "exact", "jsonable", "jsonable_marked", "message_of",
           "text_of", "tool_call", "tool_calls", "tool_names"]

#: The key of the marker object an int outside the signed 64-bit range is written as.
INT_MARKER = "$int"
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


class ToolCall(NamedTuple):
    """A function call read from an action: the tool's name and its arguments (a dict)."""

    name: str
    arguments: Any


def _default(obj: Any) -> Any:
    np = numpy_or_stub()  # a stand-in before numpy is imported: no value is a numpy value then
    if isinstance(obj, np.ndarray):
        kind = obj.dtype.kind
        if kind in "OV" or (kind == "u" and obj.dtype.itemsize == 8 and obj.size and int(obj.max()) > _I64_MAX):
            raise ValueError("needs the exact pass")  # objects or ints beyond 64 bits inside: dumps retries
        if kind in "Mmc" or (kind == "f" and obj.dtype.itemsize > 8):
            return _odd_array(obj)
        return obj.tolist()
    if isinstance(obj, np.generic):
        if isinstance(obj, np.uint64) and int(obj) > _I64_MAX:
            raise ValueError("needs the exact pass")
        if isinstance(obj, (np.datetime64, np.timedelta64, np.complexfloating)) or (
                isinstance(obj, np.floating) and obj.dtype.itemsize > 8):
            return _odd_array(np.asarray(obj))
        return obj.item()
    if isinstance(obj, complex):
        return {"$complex": [obj.real, obj.imag]}
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


def _odd_array(arr: Any, encode: Any = None) -> Any:
    """numpy values JSON has no form for, in the export encoding (docs/EXPORT.md, "JSON: exact or explicit"):
    datetime64 and timedelta64 as numpy's own text (``"2020-01-01"``, ``"5 seconds"``, ``"NaT"``); complex as
    ``{"$complex": [real, imag]}`` (arrays: real and imaginary parts as two nested lists); a long double as its
    float64 when that is exact, else ``{"$longdouble": text}``. A 0-d array gives a scalar. ``encode``: the
    :func:`jsonable` whose floats these are (:func:`jsonable_marked`'s keeps NaN marked)."""
    encode = encode or jsonable
    np = numpy()
    kind = arr.dtype.kind
    if kind in "Mm":
        return np.asarray(arr, dtype=str).tolist()
    if kind == "c":
        real, imag = arr.real.astype(np.float64), arr.imag.astype(np.float64)
        return {"$complex": [encode(real.tolist()), encode(imag.tolist())]}
    wide = arr.astype(np.float64)
    if np.array_equal(wide.astype(arr.dtype), arr, equal_nan=True):
        return encode(wide.tolist())
    return {"$longdouble": np.asarray(arr, dtype=str).tolist()}


def _jsonable(marked: bool) -> Any:
    """The encoder :func:`jsonable` (``marked`` False) or :func:`jsonable_marked` (True): one definition, the
    choice fixed once, so the exports' exact pass pays nothing for the other."""

    def encode(value: Any) -> Any:
        if isinstance(value, float):
            return value if math.isfinite(value) else {"$float": repr(value)} if marked else None
        if isinstance(value, bool) or value is None or isinstance(value, str):
            return value
        if isinstance(value, int):
            return value if _I64_MIN <= value <= _I64_MAX else {INT_MARKER: int_text(value)}
        if isinstance(value, dict):
            if all(type(k) is str for k in value) and not any(map(_dollar, value)):
                return {k: encode(v) for k, v in value.items()}
            return {_key(k): encode(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [encode(v) for v in value]
        np = numpy_or_stub()
        if isinstance(value, (np.ndarray, np.generic)):
            kind = value.dtype.kind
            if kind in "Mmc" or (kind == "f" and value.dtype.itemsize > 8):
                return _odd_array(np.asarray(value), encode)
            return encode(value.tolist())  # (a numpy scalar's tolist() is its item())
        if marked and isinstance(value, complex):
            return {"$complex": [encode(value.real), encode(value.imag)]}
        if isinstance(value, (bytes, bytearray, memoryview, Unencodable, UnknownExt, complex)):
            return _default(value)  # a marker of this encoding: its "$" key is not escaped as a recorded key is
        return encode(_default(value))

    return encode


jsonable = _jsonable(False)
jsonable.__name__ = jsonable.__qualname__ = "jsonable"
jsonable.__doc__ = """``value`` as strict JSON data under the export encoding (module docstring): NaN and infinities
    None, big ints marked, dict keys that could collide encoded, odd values through the default hook."""

jsonable_marked = _jsonable(True)
jsonable_marked.__name__ = jsonable_marked.__qualname__ = "jsonable_marked"
jsonable_marked.__doc__ = """:func:`jsonable`, but NaN and the infinities become ``{"$float": "nan"}``,
    ``{"$float": "inf"}`` and ``{"$float": "-inf"}`` (as a dict key's are) instead of None, so that every recorded
    value has a form of its own: what the commands' ``--json`` print (docs/EXPORT.md, "JSON: exact or explicit"). Exports
    keep None, which Arrow readers take.

    >>> jsonable_marked([float("nan"), "nan", None, float("-inf"), b"\\x00", {"$bytes": "00"}])
    [{'$float': 'nan'}, 'nan', None, {'$float': '-inf'}, {'$bytes': '00'}, {'$$bytes': '00'}]
    """


def _key(k: Any) -> str:
    if isinstance(k, str):
        return "$" + k if k.startswith("$") else k
    if isinstance(k, float) and not math.isfinite(k):  # jsonable makes each of them null, as it makes None
        return "$NaN" if k != k else ("$Infinity" if k > 0 else "$-Infinity")
    return "$" + _fast(_key_value(k))


def _key_value(k: Any) -> Any:
    """A non-text key as JSON data that no other key shares: non-finite floats and sets marked (``jsonable``
    writes NaN, infinities and None alike as null, and a set like the tuple of its items)."""
    if isinstance(k, float) and not math.isfinite(k):
        return {"$float": repr(k)}
    if isinstance(k, (set, frozenset)):
        return {"$set": [_key_value(x) for x in sorted(k, key=repr)]}
    if isinstance(k, (tuple, list)):
        return [_key_value(x) for x in k]
    return jsonable(k)


_dollar = operator.methodcaller("startswith", "$")


_TEXT = frozenset({str})
_SCALARS = frozenset({str, float, bool, type(None)})


def _needs_slow(value: Any) -> bool:
    """Whether plain ``json.dumps`` would silently change ``value``: a non-text dict key, or an int beyond 64
    bits. Walks containers only (text, the common observation, is one type check) and without recursion. NaN
    needs no check: the encoder refuses it (``allow_nan=False``) and :func:`dumps` retries exactly; numpy values
    that would turn into such ints make the default hook refuse them the same way."""
    t = type(value)
    if t is str or value is None or t is bool or t is float:
        return False
    if t is int:
        return not _I64_MIN <= value <= _I64_MAX
    if (t is dict and set(map(type, value)) <= _TEXT and set(map(type, value.values())) <= _SCALARS
            and not any(map(_dollar, value))):
        return False  # a map of text to text or numbers (a step's info, its note), in C loops
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            for k in v:
                if type(k) is not str or k[:1] == "$":  # (a "$" key is escaped: markers start with "$")
                    return True
            items: Any = v.values()
        elif isinstance(v, (list, tuple)):
            items = v
        elif isinstance(v, (set, frozenset)):
            return True  # the default hook lists them, and ints beyond 64 bits inside need their marker
        else:
            continue
        for x in items:
            tx = type(x)
            if tx is str or tx is float or tx is bool or x is None:
                continue
            if tx is int:
                if not _I64_MIN <= x <= _I64_MAX:
                    return True
                continue
            if isinstance(x, int) and not isinstance(x, bool):  # int subclasses (IntEnum): checked by value
                if not _I64_MIN <= int(x) <= _I64_MAX:
                    return True
                continue
            stack.append(x)
    return False


# No circular check: rows are built from decoded msgpack and plain label data, which cannot hold cycles.
_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, check_circular=False, default=_default,
                            separators=(",", ":"))
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
if _c_make_encoder is not None:
    # One C encoder for the process: JSONEncoder.encode builds a new one per call, the cost on small values.
    _c_encode = _c_make_encoder(None, _default, json.encoder.encode_basestring,  # type: ignore[attr-defined]
                                None, ":", ",", False, False, False)

    def _fast(value: Any) -> str:
        return "".join(_c_encode(value, 0))

    def fast_texts(values: Iterable[Any]) -> Iterable[str]:
        """``map(_fast, values)`` without a Python call per value (ValueError: a NaN or an infinity inside)."""
        return map(_join, map(_c_encode, values, repeat(0)))
else:  # pragma: no cover - CPython always has the C encoder
    _fast = _encoder.encode

    def fast_texts(values: Iterable[Any]) -> Iterable[str]:
        return map(_fast, values)
_join = "".join
_float_repr = float.__repr__
_int_repr = int.__repr__


def dumps(value: Any) -> str:
    """One compact JSON document under the export encoding (see the module docstring)."""
    t = type(value)
    if t is str:
        return _encode_str(value)
    if value is None:
        return "null"
    if t is float and math.isfinite(value):
        return _float_repr(value)
    if t is bool:
        return "true" if value else "false"
    if t is int and _I64_MIN <= value <= _I64_MAX:  # ratings, counts: json writes an int as int.__repr__ does
        return _int_repr(value)
    if _needs_slow(value):
        return _fast(jsonable(value))
    try:
        return _fast(value)
    except (ValueError, TypeError):
        # Values only the default hook turns into JSON (numpy, sets...) may hold odd keys or numbers inside.
        return _fast(jsonable(value))


_encode_str = json.encoder.encode_basestring  # type: ignore[attr-defined]  # C, ensure_ascii=False's twin


def needs_exact(value: Any) -> bool:
    """Whether :func:`dumps` of ``value`` (or of anything inside it) would take the exact pass: one walk over a
    whole record, after which its fields go through :func:`dumps_unchecked` (one walk instead of one per field)."""
    return _needs_slow(value)


def dumps_unchecked(value: Any) -> str:
    """:func:`dumps` of a value a :func:`needs_exact` walk over it (or over what holds it) found plain."""
    t = type(value)
    if t is str:
        return _encode_str(value)
    if value is None:
        return "null"
    try:
        return _fast(value)
    except (ValueError, TypeError):
        # NaN (the encoder refuses it) and values only the default hook turns into JSON: the exact pass.
        return _fast(jsonable(value))


def dumps_built(row: Any) -> str:
    """:func:`dumps` for a row an export built itself, whose recorded values already went through :func:`dumps`
    or :func:`exact`: skips the scan (the cost of a walk over every message of a conversation)."""
    try:
        return _fast(row)
    except (ValueError, TypeError):
        return _fast(_built(row))


def _built(v: Any) -> Any:
    """A built row made strict JSON without a second :func:`jsonable` pass (which would escape the ``$`` keys of
    the markers its values already carry): non-finite floats None, text keys kept, anything not yet JSON through
    :func:`jsonable`."""
    t = type(v)
    if t is float:
        return v if math.isfinite(v) else None
    if t is str or t is int or t is bool or v is None:
        return v
    if t is dict and all(type(k) is str for k in v):
        return {k: _built(x) for k, x in v.items()}
    if t is list or t is tuple:
        return [_built(x) for x in v]
    return jsonable(v)


def exact(value: Any) -> Any:
    """``value`` itself when plain JSON keeps it, else its :func:`jsonable` form (for recorded values placed in
    rows written with :func:`dumps_built`)."""
    return jsonable(value) if _needs_slow(value) else value


def text_of(value: Any) -> str:
    """A recorded value as text: text as it is, None as "", anything else as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return dumps(value)


def message_of(action: Any) -> str | None:
    """The text of an action that is a plain message, ``{"message": text}`` (a turn with no tool call, as the
    importers write it: docs/IMPORT.md), else None. Exports write that text, never the wrapper.

    >>> message_of({"message": "ANSWER: 3"}), message_of("ANSWER: 3"), message_of({"message": "a", "x": 1})
    ('ANSWER: 3', None, None)
    """
    if type(action) is dict and len(action) == 1 and "message" in action:
        return text_of(action["message"])
    return None


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


def tool_calls(action: Any, names: frozenset[str] | None = None,
               text_tool: tuple[str, str] | None = None) -> list[tuple[ToolCall, Any]] | None:
    """The calls of an action that is a list of calls (several calls of one turn: ``[{"tool", "args", "id"},
    ...]``, or command lines in an env with a text tool: docs/IMPORT.md), each with its recorded ``id`` (None when
    it has none); None unless the action is a non-empty list whose every item :func:`tool_call` reads as a call. A
    list holding anything else (a malformed call, an unknown tool, a number) is no call: exports write it as text.

    >>> tool_calls([{"tool": "ls", "args": {}, "id": "a"}, {"tool": "cat", "args": {"p": "x"}, "id": "b"}])
    [(ToolCall(name='ls', arguments={}), 'a'), (ToolCall(name='cat', arguments={'p': 'x'}), 'b')]
    >>> tool_calls([{"tool": "ls", "args": {}}, "pwd"]) is None
    True
    >>> tool_calls(["ls", "pwd"], text_tool=("shell", "command"))[1]
    (ToolCall(name='shell', arguments={'command': 'pwd'}), None)
    """
    if type(action) is not list or not action:
        return None
    out = []
    for item in action:
        if type(item) is dict:
            call, cid = _named_call(item, names), item.get("id")
        elif type(item) is str:
            call, cid = tool_call(item, names, text_tool), None
        else:
            return None
        if call is None:
            return None
        out.append((call, cid))
    return out
