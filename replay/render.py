"""Turning recorded values into safe, readable text (shared by ``trajrec show`` and the TUI).

Recorded text is data: control characters and escape sequences are shown as visible escapes, never sent to
the terminal. Markup safety in the TUI is the TUI's job (it renders these strings as plain ``Text``).

>>> safe("ok\\x1b[31mred\\x07")
'ok\\\\x1b[31mred\\\\x07'
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any, Iterable

import numpy as np

from trajrec.recorder.classify import parse_tool_call

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def safe(text: str, *, keep_newlines: bool = True) -> str:
    """Replace control characters (ESC, BEL, CR, bidi overrides...) by visible ``\\xNN`` escapes."""
    out = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}", text)
    if not keep_newlines:
        out = out.replace("\n", "\\n").replace("\t", "\\t")
    return out


def value_text(value: Any, *, max_len: int | None = None) -> str:
    """A value as text: strings as they are, other values as compact JSON-like text; always safe."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, np.ndarray):
        text = np.array2string(value, precision=4, threshold=64)
    elif isinstance(value, (dict, list, tuple)):
        try:
            text = json.dumps(_plain(value), ensure_ascii=False, indent=1)
        except (TypeError, ValueError):
            text = repr(value)
    else:
        text = repr(value)
    text = safe(text)
    if max_len is not None and len(text) > max_len:
        text = text[: max(0, max_len - 1)] + "…"
    return text


def one_line(value: Any, width: int = 60) -> str:
    """A value squeezed onto one line of at most ``width`` characters."""
    text = value if isinstance(value, str) else value_text(value)
    text = " ".join(safe(text, keep_newlines=False).replace("\\n", " ").split())
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, float) and (value != value or abs(value) == float("inf")):
        return repr(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def path_text(path: Iterable[Any]) -> str:
    """A diff path as ``files['a.txt'].size`` style text."""
    out: list[str] = []
    for key in path:
        if isinstance(key, str) and key.isidentifier():
            out.append(f".{key}" if out else key)
        else:
            out.append(f"[{key!r}]")
    return safe("".join(out) or "<root>", keep_newlines=False)


_SYMBOL = {
    "values_changed": "~",
    "type_changes": "~",
    "dictionary_item_added": "+",
    "iterable_item_added": "+",
    "dictionary_item_removed": "-",
    "iterable_item_removed": "-",
}


def diff_lines(rows: Iterable[Any], *, width: int = 100, long_text: int = 80) -> list[tuple[str, str]]:
    """Readable lines for diff rows: ``(kind, text)`` with kind ``added``/``removed``/``changed``/``context``.

    Long string changes become a unified diff of their lines.
    """
    lines: list[tuple[str, str]] = []
    for row in rows:
        path, action, value, old = row[0], row[1], row[2], row[3]
        sym = _SYMBOL.get(action, "?")
        where = path_text(path)
        if sym == "+":
            lines.append(("added", f"+ {where} = {one_line(value, width)}"))
        elif sym == "-":
            lines.append(("removed", f"- {where} (was {one_line(old, width)})"))
        elif isinstance(value, str) and isinstance(old, str) and (len(value) > long_text or len(old) > long_text
                                                                    or "\n" in value or "\n" in old):
            lines.append(("changed", f"~ {where}:"))
            for d in difflib.unified_diff(old.splitlines(), value.splitlines(), "before", "after", lineterm="", n=1):
                kind = "added" if d.startswith("+") and not d.startswith("+++") else (
                    "removed" if d.startswith("-") and not d.startswith("---") else "context")
                lines.append((kind, "    " + safe(d, keep_newlines=False)))
        else:
            lines.append(("changed", f"~ {where}: {one_line(old, width // 2)} → {one_line(value, width // 2)}"))
    return lines


def step_marker(step: Any) -> str:
    """One-character marker for a step: ``x`` exception, ``!`` tool error, ``R`` recovery, ``r`` retry,
    ``✓``/``✗`` a passed/failed check, ``·`` plain."""
    failure = getattr(step, "failure", None)
    if failure is not None:
        return "x" if failure.kind == "exception" else "!"
    if getattr(step, "recovers", None):
        return "R"
    if getattr(step, "retry_of", None) is not None:
        return "r"
    verdicts = [c.passed for c in getattr(step, "checks", ()) or ()]
    if False in verdicts:
        return "✗"
    if True in verdicts:
        return "✓"
    return "·"


#: Step kinds in the order :func:`step_kind` tests them, with the marker :func:`step_marker` draws for each.
STEP_KINDS: dict[str, str] = {
    "exception": "x",
    "failure": "!",
    "recovery": "R",
    "retry": "r",
    "check_failed": "✗",
    "check_passed": "✓",
    "ok": "·",
}


def step_kind(step: Any) -> str:
    """The one kind a step is drawn as (a key of :data:`STEP_KINDS`), with :func:`step_marker`'s priorities.

    ``failure`` covers ``tool_error`` and user failure kinds; ``exception`` is a step where ``env.step`` raised.

    >>> from trajrec.recorder import Failure
    >>> class S: failure, recovers, retry_of, checks = Failure("tool_error", "no such file"), [], None, []
    >>> step_kind(S())
    'failure'
    """
    failure = getattr(step, "failure", None)
    if failure is not None:
        return "exception" if failure.kind == "exception" else "failure"
    if getattr(step, "recovers", None):
        return "recovery"
    if getattr(step, "retry_of", None) is not None:
        return "retry"
    verdicts = [c.passed for c in getattr(step, "checks", ()) or ()]
    if False in verdicts:
        return "check_failed"
    if True in verdicts:
        return "check_passed"
    return "ok"


def tool_call_text(action: Any) -> str | None:
    """A tool-call action (a dict, or a JSON object string, with ``tool``/``name`` and ``args``/``arguments``)
    as ``name(key="value", ...)``; None for any other action. Not escaped: pass it through :func:`one_line`.

    >>> tool_call_text('{"tool": "read_file", "args": {"path": "a.py"}}')
    'read_file(path="a.py")'
    >>> tool_call_text("cat a.py") is None
    True
    """
    if isinstance(action, str) and len(action) > 100_000:
        return None  # not worth parsing for a one-line rendering
    call = parse_tool_call(action)
    if call is None:
        return None
    name, args = call
    if isinstance(args, dict):
        inner = ", ".join(f"{k}={json.dumps(_plain(v), ensure_ascii=False)}" for k, v in args.items())
    else:
        inner = json.dumps(_plain(args), ensure_ascii=False)
    return f"{name}({inner})"
