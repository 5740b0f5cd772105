"""The text tool-call protocol shared by trajrec's built-in environments.

Every built-in env speaks the same protocol: an action is a string holding a JSON tool call
``{"tool": NAME, "args": {...}}`` (the OpenAI spelling ``{"name": NAME, "arguments": {...} or "<json>"}``
is accepted too), and every observation is printable ASCII text. This module owns that protocol:
the Text spaces and their charset, tool specs and their OpenAI-style schemas, parsing and argument
validation that turn any string into either a :class:`ToolCall` or a :class:`ToolError` (never an
exception), the check records the envs emit, and small text helpers.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gymnasium import spaces

#: Every character an observation may contain, and the charset of both Text spaces:
#: printable ASCII (space to ``~``) plus newline and tab. Ordered, so space sampling is reproducible.
CHARSET: str = "".join(chr(c) for c in range(0x20, 0x7F)) + "\n\t"
_CHARSET_SET = frozenset(CHARSET)

#: Longest observation an env returns; longer text is cut with a visible marker.
OBS_MAX_LEN = 32_768
#: Longest action an env accepts; longer actions get an error observation before any parsing.
ACTION_MAX_LEN = 16_384
#: How much of an offending action or value an error message quotes.
_EXCERPT_LEN = 60


def text_space(max_length: int, *, min_length: int = 0) -> spaces.Text:
    """Return a Text space over :data:`CHARSET`.

    Args:
        max_length: Longest string in the space.
        min_length: Shortest string in the space.

    Returns:
        The space.
    """
    return spaces.Text(max_length, min_length=min_length, charset=CHARSET)


def to_ascii(text: str) -> str:
    """Escape everything outside :data:`CHARSET` so ``text`` fits the observation space.

    ``\\r\\n`` and ``\\r`` become ``\\n``; other characters become Python-style escapes
    (``\\xe9``, ``\\u2603``), so no information is silently dropped.

    >>> to_ascii("caf\\u00e9\\r\\nok")
    'caf\\\\xe9\\nok'
    """
    if all(ch in _CHARSET_SET for ch in text):
        return text
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out = []
    for ch in text:
        if ch in _CHARSET_SET:
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


def clip(text: str, max_len: int = OBS_MAX_LEN) -> str:
    """Make ``text`` a valid observation: ASCII-escaped and at most ``max_len`` characters.

    >>> short = clip("x" * 100, 60)
    >>> len(short) <= 60, short[-25:]
    (True, '\\n... [cut 80 more chars]\\n')
    """
    text = to_ascii(text)
    if len(text) <= max_len:
        return text
    marker_room = 40
    kept = text[: max_len - marker_room]
    return f"{kept}\n... [cut {len(text) - len(kept)} more chars]\n"


def excerpt(value: Any, limit: int = _EXCERPT_LEN) -> str:
    """Quote ``value`` briefly and safely for an error message: strings in quotes, other values as JSON.

    >>> excerpt("abc"), excerpt(True), excerpt({"a": 1})
    ("'abc'", 'true', '{"a": 1}')
    """
    text = to_ascii(value if isinstance(value, str) else _safe_json(value))
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return repr(text) if isinstance(value, str) else text


def _safe_json(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError, RecursionError):
        return type(value).__name__


def nearest(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` of ``choices`` that look most like ``word`` (for "did you mean" hints)."""
    choices = list(choices)
    close = difflib.get_close_matches(word, choices, n=n, cutoff=0.5)
    if close:
        return close
    lowered = word.lower()
    return [c for c in choices if lowered and (lowered in c.lower() or c.lower() in lowered)][:n]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` or ``""``."""
    close = nearest(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --------------------------------------------------------------------------------------------- tools


@dataclass(frozen=True)
class ToolSpec:
    """One tool an env offers: its name, what it does, and a JSON schema for its arguments.

    Only the JSON-schema subset :func:`validate_args` understands is used: an object with
    ``properties`` (types ``string``, ``integer``, ``number``, ``boolean``, a list of those, or
    ``array`` of strings), ``required``, ``minimum``, ``minLength``, ``maxLength``; unknown
    properties are rejected.

    >>> ToolSpec("calc", "Evaluate arithmetic.", {"expr": {"type": "string"}}, ("expr",)).signature()
    'calc(expr)'
    """

    name: str
    description: str
    properties: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    required: tuple[str, ...] = ()

    def schema(self) -> dict[str, Any]:
        """Return the OpenAI-style function schema (a fresh dict every call)."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": {
                    "type": "object",
                    "properties": json.loads(json.dumps(self.properties)),
                    "required": list(self.required),
                    "additionalProperties": False,
                },
            },
        }

    def signature(self) -> str:
        """Return a short ``name(arg, [optional])`` line for observations."""
        parts = [p if p in self.required else f"[{p}]" for p in self.properties]
        return f"{self.name}({', '.join(parts)})"


def tool_schemas(specs: Iterable[ToolSpec]) -> list[dict[str, Any]]:
    """Return fresh OpenAI-style schemas for ``specs`` (info dicts must not share objects)."""
    return [spec.schema() for spec in specs]


@dataclass(frozen=True)
class ToolCall:
    """A parsed, validated tool call."""

    tool: str
    args: dict[str, Any]


@dataclass(frozen=True)
class ToolError:
    """Why an action could not be turned into a tool call.

    Attributes:
        message: The error, saying what was expected, what was found and how to fix it.
        tool: The tool name when one could be read, so ``info["tool"]`` can still name it.
    """

    message: str
    tool: str | None = None


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; accepting them would put non-JSON floats into env state.
    raise ValueError(f"{name} is not valid JSON; send a finite number")


def parse_json(text: str) -> Any:
    """Parse strict JSON (no NaN/Infinity).

    Raises:
        ValueError: The text is not JSON, or nests too deeply.
    """
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("JSON nests too deeply") from None


def parse_tool_call(action: Any, specs: Sequence[ToolSpec]) -> ToolCall | ToolError:
    """Turn an action into a validated :class:`ToolCall`, or a :class:`ToolError` saying why not.

    Never raises, whatever ``action`` is.

    Args:
        action: The action, normally a str holding ``{"tool": ..., "args": {...}}``.
        specs: The tools on offer.

    Returns:
        The call, or the error.

    >>> specs = [ToolSpec("submit", "Submit.", {"answer": {"type": "number"}}, ("answer",))]
    >>> parse_tool_call('{"tool": "submit", "args": {"answer": 4}}', specs)
    ToolCall(tool='submit', args={'answer': 4})
    >>> parse_tool_call('{"tool": "sumbit", "args": {}}', specs).message
    "unknown tool 'sumbit' (did you mean 'submit'?); available tools: submit"
    """
    problem = check_action_text(action)
    if problem is not None:
        return ToolError(problem)
    assert isinstance(action, str)
    try:
        payload = parse_json(action)
    except ValueError as exc:
        return ToolError(
            f"could not parse the action as a JSON tool call ({exc}); found {excerpt(action)}; "
            f'expected e.g. {{"tool": "{specs[0].name}", "args": {{...}}}}'
        )
    return tool_call_from_json(payload, specs)


def check_action_text(action: Any) -> str | None:
    """Return an error message if ``action`` is not a usable action string, else None."""
    if not isinstance(action, str):
        return f"expected the action to be a str, found {type(action).__name__}; send the tool call as JSON text"
    if len(action) > ACTION_MAX_LEN:
        return f"action is {len(action)} characters long, the limit is {ACTION_MAX_LEN}; send a shorter action"
    if not action.strip():
        return "the action is empty; send a tool call"
    bad = _unencodable(action)
    if bad is not None:
        # Lone surrogates cannot be encoded as UTF-8, so they could not be stored or replayed.
        return f"the action contains an unpaired surrogate (U+{bad:04X}); send valid UTF-8 text"
    return None


def tool_call_from_json(payload: Any, specs: Sequence[ToolSpec]) -> ToolCall | ToolError:
    """Validate an already-parsed JSON tool call (see :func:`parse_tool_call`)."""
    names = [s.name for s in specs]
    if not isinstance(payload, dict):
        return ToolError(
            f'expected a JSON object like {{"tool": ..., "args": {{...}}}}, found {type(payload).__name__} '
            f"{excerpt(payload)}"
        )
    if "tool" in payload or "args" in payload:
        name_key, args_key = "tool", "args"
    else:
        name_key, args_key = "name", "arguments"
    extra = sorted(set(payload) - {name_key, args_key})
    if extra:
        return ToolError(
            f'unexpected key(s) {", ".join(repr(k) for k in extra)} in the tool call; expected only "tool" and "args"'
        )
    name = payload.get(name_key)
    if not isinstance(name, str) or not name:
        return ToolError(f'expected "tool" to name one of: {", ".join(names)}; found {excerpt(name)}')
    spec = next((s for s in specs if s.name == name), None)
    if spec is None:
        return ToolError(
            f"unknown tool {excerpt(name)}{did_you_mean(name, names)}; available tools: {', '.join(names)}"
        )
    args = payload.get(args_key, {})
    if isinstance(args, str) and args_key == "arguments":
        # OpenAI function calls carry arguments as a JSON-encoded string.
        try:
            args = parse_json(args)
        except ValueError as exc:
            return ToolError(f"could not parse the arguments of {name} as JSON ({exc}); found {excerpt(args)}", name)
    if args is None:
        args = {}
    problem = validate_args(spec, args)
    if problem is not None:
        return ToolError(problem, name)
    return ToolCall(name, dict(args))


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
}


def _type_ok(value: Any, kind: str | Sequence[str]) -> bool:
    kinds = [kind] if isinstance(kind, str) else list(kind)
    for k in kinds:
        if k != "boolean" and isinstance(value, bool):
            continue  # JSON true is not a number, though Python says bool is an int
        if isinstance(value, _JSON_TYPES[k]):
            return True
    return False


def validate_args(spec: ToolSpec, args: Any) -> str | None:
    """Check ``args`` against ``spec``; return an error message or None.

    >>> spec = ToolSpec("read", "Read.", {"path": {"type": "string"}}, ("path",))
    >>> validate_args(spec, {"file": "a.py"})
    "read: unknown argument 'file' (did you mean 'path'?); expected arguments: path"
    """
    expected = ", ".join(p if p in spec.required else f"{p} (optional)" for p in spec.properties) or "none"
    if not isinstance(args, dict):
        return f'{spec.name}: expected "args" to be a JSON object, found {type(args).__name__} {excerpt(args)}'
    for key in args:
        if key not in spec.properties:
            hint = did_you_mean(str(key), spec.properties)
            missing = [k for k in spec.required if k not in args]
            if not hint and len(missing) == 1:
                hint = f" (did you mean {missing[0]!r}?)"
            return f"{spec.name}: unknown argument {excerpt(key)}{hint}; expected arguments: {expected}"
    for key in spec.required:
        if key not in args:
            return f"{spec.name}: missing required argument {key!r}; expected arguments: {expected}"
    for key, value in args.items():
        rule = spec.properties[key]
        kind = rule.get("type", "string")
        if not _type_ok(value, kind):
            want = kind if isinstance(kind, str) else " or ".join(kind)
            return f"{spec.name}: argument {key!r} must be {want}, found {type(value).__name__} {excerpt(value)}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"{spec.name}: argument {key!r} must be a finite number, found {value!r}"
        if isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                return f"{spec.name}: argument {key!r} must be a list of strings, found {excerpt(value)}"
            value_len = len(value)
        elif isinstance(value, str):
            bad = _unencodable(value)
            if bad is not None:
                return (
                    f"{spec.name}: argument {key!r} contains an unpaired surrogate (U+{bad:04X}); send valid UTF-8 text"
                )
            value_len = len(value)
        else:
            value_len = None
        if value_len is not None and value_len < rule.get("minLength", 0):
            return f"{spec.name}: argument {key!r} must not be empty"
        if value_len is not None and value_len > rule.get("maxLength", ACTION_MAX_LEN):
            return f"{spec.name}: argument {key!r} is {value_len} long, the limit is {rule['maxLength']}"
        if (
            "minimum" in rule
            and isinstance(value, (int, float))
            and not isinstance(value, bool)
            and value < rule["minimum"]
        ):
            return f"{spec.name}: argument {key!r} must be >= {rule['minimum']}, found {value!r}"
    return None


def _unencodable(text: str) -> int | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return ord(text[exc.start])
    return None


def tool_list_text(specs: Iterable[ToolSpec]) -> str:
    """Return the short tool list shown in reset observations."""
    lines = [f"- {spec.signature()}: {spec.description}" for spec in specs]
    return "Tools:\n" + "\n".join(lines)


# -------------------------------------------------------------------------------------------- checks


def make_check(
    kind: str,
    judge: str,
    value: Any,
    rationale: str,
    *,
    target: str = "episode",
    score: float | None = None,
) -> dict[str, Any]:
    """Return a check record as the envs put it in ``info["checks"]``.

    Args:
        kind: ``"rule"``, ``"environment"`` or ``"judge"``.
        judge: Who checked, as ``id@version``.
        value: The verdict: True/False, or a score.
        rationale: Why, in one or two sentences.
        target: ``"episode"`` for the final verdict, ``"step"`` for a check of this step only.
        score: A score in [0, 1] when the judge gives one.

    Returns:
        ``{"kind", "judge", "value", "score", "rationale", "target"}``.
    """
    if kind not in ("rule", "environment", "judge"):
        raise ValueError(f"check kind must be rule, environment or judge; found {kind!r}")
    if target not in ("episode", "step"):
        raise ValueError(f"check target must be 'episode' or 'step'; found {target!r}")
    return {"kind": kind, "judge": judge, "value": value, "score": score, "rationale": rationale, "target": target}
