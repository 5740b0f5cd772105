"""Turning recorded values into safe, readable text (shared by ``trajrec show`` and the TUI).

Recorded text is data: control characters and escape sequences are shown as visible escapes, never sent to
the terminal. Markup safety in the TUI is the TUI's job (it renders these strings as plain ``Text``).

>>> safe("ok\\x1b[31mred\\x07")
'ok\\\\x1b[31mred\\\\x07'
"""

from __future__ import annotations

import difflib
import json
import math
import re
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from trajrec.recorder.classify import parse_tool_call
from trajrec.recorder.codec import INT_TEXT_BITS, int_text, numpy, numpy_or_stub, state_not_read
from trajrec.recorder.model import verdict
from trajrec.recorder.model_call import amount, token_count

if TYPE_CHECKING:
    import numpy as np

# Lone surrogates (text decoded with ``surrogateescape``) are escaped too: a terminal cannot encode them.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def safe(text: str, *, keep_newlines: bool = True) -> str:
    """Replace control characters (ESC, BEL, CR, bidi overrides...) by visible ``\\xNN`` escapes."""
    if _CONTROL.search(text) is None:  # the common case: nothing to escape, no new string
        return text if keep_newlines or ("\n" not in text and "\t" not in text) else \
            text.replace("\n", "\\n").replace("\t", "\\t")
    out = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}", text)
    if not keep_newlines:
        out = out.replace("\n", "\\n").replace("\t", "\\t")
    return out


def json_safe(text: str) -> str:
    """JSON text with the control characters JSON leaves raw (DEL, C1 controls, line separators, bidi
    overrides) written as ``\\uXXXX`` escapes: the same JSON value, safe to print.

    >>> print(json_safe('"a\\x9b[31m\\u202eb"'))
    "a\\u009b[31m\\u202eb"
    """
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _array_text(value: np.ndarray) -> str:
    """An array as numpy prints it (4 digits, 64 elements at most)."""
    np = numpy()
    if isinstance(value, np.ma.MaskedArray):
        # array2string formats a masked element with a format spec, which numpy itself warns about (a FutureWarning
        # that would reach the user under trajrec's name); a masked array's own str prints "--" without one.
        with np.printoptions(precision=4, threshold=64):
            return str(value)
    return np.array2string(value, precision=4, threshold=64)


def value_text(value: Any, *, max_len: int | None = None) -> str:
    """A value as text: strings as they are, other values as compact JSON-like text; always safe. Bytes, tuples
    and sets inside show as Python writes them (``b'\\x00'``, ``(1, 2)``, ``{1, 2}``), not as JSON would change them.

    With ``max_len``, at most that many characters come back, and no more than about that much of the value
    is ever turned into text: strings, arrays, bytes and containers are cut before rendering, so the cost
    follows what is shown, not the size of the value (a 25 MB observation previews in microseconds).
    """
    np = numpy_or_stub()  # a stand-in before numpy is imported (no value is a numpy value then): never imports it
    if isinstance(value, np.generic):
        value = value.item()  # 0, not np.int64(0): numpy scalars read as the numbers they are
    if max_len is not None and _larger_than(value, max_len):
        text = _bounded_text(value, max_len + 1, python_types=True)
    elif isinstance(value, str):
        text = value
    elif isinstance(value, np.ndarray):
        text = _array_text(value)
    elif isinstance(value, (dict, list, tuple)):
        try:
            if _holds_python_types(value):  # JSON has no bytes, tuples or sets: plain_json would change them
                raise ValueError("not JSON")
            text = json.dumps(_plain(value, floats="json"), ensure_ascii=False, indent=1)
        except (TypeError, ValueError, RecursionError):
            text = _bounded_text(value, max_len + 1 if max_len is not None else 1 << 62, python_types=True)
    else:
        text = _short_repr(value, max_len)
    text = safe(text)
    if max_len is not None and len(text) > max_len:
        text = text[: max(0, max_len - 1)] + "…"
    return text


def tree_text(value: Any, *, max_len: int) -> str:
    """A container as indented JSON-like text in which strings of several lines read as blocks of lines (what
    the viewer's whole-state pane shows: a source file in the state reads as the file, not as one JSON string);
    at most about ``max_len`` characters are rendered; always safe.

    >>> print(tree_text({"path": "a.py", "src": "def f():\\n    return 1"}, max_len=100))
    {
     "path": "a.py",
     "src": |
       def f():
           return 1
    }
    """
    if isinstance(value, numpy_or_stub().generic):
        value = value.item()
    if not isinstance(value, (dict, list, tuple, set, frozenset)):
        return value_text(value, max_len=max_len)
    text = safe(_bounded_text(value, max_len + 1, blocks=True, python_types=True))
    if len(text) > max_len:
        text = text[: max(0, max_len - 1)] + "…"
    return text


def one_line(value: Any, width: int = 60) -> str:
    """A value squeezed onto one line of at most ``width`` characters."""
    if type(value) is str and len(value) <= width and value.isprintable() and "  " not in value \
            and value == value.strip():
        return value  # already one safe line (isprintable is False for controls, separators, bidi, surrogates)
    # Whitespace runs collapse below, so a few times the width is always enough text to start from.
    budget = max(64, 4 * width)
    text = value[:budget] if isinstance(value, str) else value_text(value, max_len=budget)
    text = " ".join(safe(text, keep_newlines=False).replace("\\n", " ").split())
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _short_repr(value: Any, max_len: int | None) -> str:
    text = int_text(value) if type(value) is int else repr(value)  # repr raises past 4,300 digits
    return text if max_len is None else text[: max_len + 1]


def _holds_python_types(value: Any) -> bool:
    """Whether a value is or holds (among its values, at any depth) a byte string, a tuple or a set, which JSON
    text would show as something else; without recursion, stopping at the first."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, (bytes, bytearray, memoryview, tuple, set, frozenset)):
            return True
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return False


def _larger_than(value: Any, limit: int) -> bool:
    """Whether rendering ``value`` could take more than about ``limit`` characters; looks at no more than
    ``limit`` items, so it costs little whatever the value's size."""
    ndarray = numpy_or_stub().ndarray
    seen = 0
    stack = [value]
    while stack:
        v = stack.pop()
        seen += 1
        if seen > limit:
            return True
        if isinstance(v, (str, bytes, bytearray)):
            seen += len(v)
        elif isinstance(v, ndarray):
            seen += int(v.size) * (8 if v.dtype.kind in "fc" else 4)
        elif isinstance(v, dict):
            if len(v) > limit:
                return True
            stack.extend(v.values())
            seen += len(v)
        elif isinstance(v, (list, tuple, set, frozenset)):
            if len(v) > limit:
                return True
            stack.extend(v)
        if seen > limit:
            return True
    return False


def _bounded_text(value: Any, budget: int, *, blocks: bool = False, python_types: bool = False) -> str:
    """JSON-like text of ``value`` (``indent=1`` style) that stops after about ``budget`` characters.

    Strings and byte strings are cut before escaping (bytes shown as Python's repr, as diff lines show them),
    arrays are summarised by numpy, and containers stop at the first item past the budget with a ``…`` line
    naming how many items were left out. With ``blocks``, a string of several lines inside a container is shown
    as YAML shows a literal block (``|`` then its lines, indented) instead of one JSON string full of ``\\n``.
    With ``python_types``, tuples, sets and frozensets keep their own brackets (``(1, 2)``, ``{1, 2}``,
    ``frozenset({1})``) and keys that are not text show as their repr, so a value reads as the type it is."""
    out: list[str] = []
    left = [budget]

    def emit(text: str) -> None:
        out.append(text)
        left[0] -= len(text)

    ndarray = numpy_or_stub().ndarray

    def walk(v: Any, indent: int, depth: int) -> None:
        if blocks and isinstance(v, str) and "\n" in v and depth:
            cut = v[: max(0, left[0])]
            emit("|")
            pad = "\n" + " " * (indent + 2)
            for line in cut.split("\n"):
                emit(pad + line)
            if len(cut) < len(v):
                emit(f"{pad}…(+{len(v) - len(cut):,} chars)")
        elif isinstance(v, str):
            cut = v[: max(0, left[0])]
            emit(json.dumps(cut, ensure_ascii=False) + (f"…(+{len(v) - len(cut):,} chars)" if len(cut) < len(v) else ""))
        elif isinstance(v, ndarray):
            emit(_array_text(v).replace("\n", " "))
        elif isinstance(v, (bytes, bytearray, memoryview)):
            cut = bytes(v[: max(0, left[0])])
            emit(repr(cut) + (f"…(+{len(v) - len(cut):,} bytes)" if len(cut) < len(v) else ""))
        elif isinstance(v, (dict, list, tuple, set, frozenset)) and depth < 64:
            items = list(v.items()) if isinstance(v, dict) and len(v) <= left[0] else None
            seq = items if items is not None else (v.items() if isinstance(v, dict) else v)
            opener, closer = ("{", "}") if isinstance(v, dict) else ("[", "]")
            if python_types and isinstance(v, (tuple, set, frozenset)):
                if not v:
                    emit({tuple: "()", set: "set()"}.get(type(v), f"{type(v).__name__}()"))
                    return
                opener, closer = (("(", ")") if isinstance(v, tuple) else ("{", "}"))
                if isinstance(v, frozenset):
                    opener, closer = "frozenset({", "})"
            emit(opener)
            pad = "\n" + " " * (indent + 1)
            for n, item in enumerate(seq):
                if left[0] <= 0:
                    emit(f"{pad}…({len(v) - n:,} more)")
                    break
                emit(("," if n else "") + pad)
                if isinstance(v, dict):
                    key, item = item
                    if python_types and type(key) is not str:
                        emit(_short_repr(key, max(200, left[0])) + ": ")
                    else:  # a key is cut only when the budget is that small (--full shows it whole)
                        emit(json.dumps(str(key)[: max(200, left[0])], ensure_ascii=False) + ": ")
                walk(item, indent + 1, depth + 1)
            if python_types and isinstance(v, tuple) and len(v) == 1:
                emit(",")  # (x,): a tuple of one, not x in brackets
            emit(("\n" + " " * indent if len(v) else "") + closer)
        else:
            plain = _plain(v, floats="json") if not isinstance(v, (dict, list, tuple, set, frozenset)) else "…"
            if isinstance(plain, str) and plain is not v:
                emit(plain[: max(0, left[0]) + 1])
            else:
                try:
                    emit(json.dumps(plain, ensure_ascii=False)[: max(0, left[0]) + 1])
                except (TypeError, ValueError):
                    emit(repr(plain)[: max(0, left[0]) + 1])

    if isinstance(value, str):
        return value[:budget]
    walk(value, 0, 0)
    return "".join(out)


def plain_json(value: Any, *, raw_bytes: str = "size", floats: str = "text") -> Any:
    """A recorded value as data ``json.dumps`` takes, for people reading one step (the step pane, the one-line call
    summary, the viewer's ``y``/``o``): not the export encoding (``replay.exports.encode``), which is exact (the
    commands' ``--json`` print that one).

    Keys become text (other keys as the exports write them: ``1`` -> ``"$1"``); arrays and numpy scalars become lists and numbers, recursively (so datetime64 becomes its
    ISO text, complex ``"(1+2j)"``, a long double its decimal text); NaN and infinities their names
    (``floats="text"``) or left floats, which ``json.dumps`` writes ``NaN``, ``Infinity``, ``-Infinity``
    (``floats="json"``: text for people, where a name in quotes would read as the text ``"nan"``); ``bytes``
    ``"<n bytes>"`` (``raw_bytes="size"``), ``{"$bytes": hex}`` (``raw_bytes="hex"``) or left bytes
    (``raw_bytes="keep"``: for :func:`arg_text`, which shows them unquoted); anything else its repr.

    >>> import numpy as np
    >>> plain_json({"t": np.array(["2020-01-01"], dtype="datetime64[D]"), "z": np.complex64(1 + 2j),
    ...             "x": np.longdouble("1.5"), 1: float("nan")})
    {'t': ['2020-01-01'], 'z': '(1+2j)', 'x': '1.5', '$1': 'nan'}
    """
    if isinstance(value, dict):
        if all(type(k) is str for k in value):
            return {k: plain_json(v, raw_bytes=raw_bytes, floats=floats) for k, v in value.items()}
        # Keys of other types as the exports write them ("$1", "$null", "$NaN"...), so none collide.
        from .exports.encode import _key

        return {_key(k): plain_json(v, raw_bytes=raw_bytes, floats=floats) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain_json(v, raw_bytes=raw_bytes, floats=floats) for v in value]
    np = numpy_or_stub()
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "Mm":  # datetime64/timedelta64: numpy's own text (tolist gives dates, or ints)
            return plain_json(np.asarray(value, dtype=str).tolist(), raw_bytes=raw_bytes, floats=floats)
        return plain_json(value.tolist(), raw_bytes=raw_bytes, floats=floats)
    if isinstance(value, np.generic):
        if isinstance(value, (np.datetime64, np.timedelta64)):
            return str(value)
        item = value.item()
        # A long double (and its complex twin) has no Python type: item() gives it back; its text is exact.
        return str(value) if isinstance(item, np.generic) else plain_json(item, raw_bytes=raw_bytes, floats=floats)
    if isinstance(value, (bytes, bytearray, memoryview)):
        if raw_bytes == "keep":
            return bytes(value)
        return {"$bytes": bytes(value).hex()} if raw_bytes == "hex" else f"<{len(value)} bytes>"
    if isinstance(value, float) and (value != value or abs(value) == float("inf")):
        return float(value) if floats == "json" else repr(value)
    if type(value) is int and value.bit_length() > INT_TEXT_BITS:  # json.dumps would raise past 4,300 digits
        return {"$int": int_text(value)}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, complex):
        return str(value)
    return repr(value)


_plain = plain_json

#: Bytes of a bytes argument shown in a one-line call summary (the rest counted).
_ARG_BYTES = 40


def arg_text(value: Any) -> str:
    """One argument of a call, for its one-line summary (:func:`tool_call_text`, a model call's tool calls): JSON
    text, except what JSON has no literal for, shown unquoted so it never reads as the text that names it: NaN and
    infinities as ``NaN``/``Infinity`` and bytes as Python's repr (``b'\\x00'``, as diff lines show them; past
    40 bytes cut, the rest counted), where ``"<1 bytes>"`` would read as that text.

    >>> print(arg_text({"v": b"\\x00", "w": "<1 bytes>", "x": [float("nan")]}))
    {"v": b'\\x00', "w": "<1 bytes>", "x": [NaN]}
    """
    return _arg(plain_json(value, raw_bytes="keep", floats="json"))


def _arg(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {_arg(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(map(_arg, v)) + "]"
    if isinstance(v, bytes):
        cut = v[:_ARG_BYTES]
        return repr(cut) + (f"…(+{len(v) - len(cut):,} bytes)" if len(cut) < len(v) else "")
    return json.dumps(v, ensure_ascii=False)


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


# Texts longer than this are line-diffed on their first part only: difflib's cost grows with the whole text.
_DIFF_TEXT = 200_000


_STATE_ERRORS = {"state diff": "the state diff of this step could not be made",
                 "state_fn": "no state was read after this step"}


def state_diff_missing(step: Any) -> str | None:
    """Why ``step`` has no state diff when the recorder failed to make one, else None (a step whose state did
    not change). From the step's ``recorder_errors`` (``where`` = ``"state diff"`` or ``"state_fn"``); the text
    is terminal-safe."""
    for err in getattr(step, "recorder_errors", None) or ():
        if isinstance(err, dict) and err.get("where") in _STATE_ERRORS:
            return safe(f"{_STATE_ERRORS[err['where']]} ({err['where']} raised {err.get('type')}: "
                        f"{err.get('message')})")
    return None


def diff_lines(rows: Iterable[Any], *, width: int = 100, long_text: int = 80) -> list[tuple[str, str]]:
    """Readable lines for diff rows: ``(kind, text)`` with kind ``added``/``removed``/``changed``/``context``.

    Long string changes become a unified diff of their lines.
    """
    lines: list[tuple[str, str]] = []
    for row in rows:
        path, action, value, old = row[0], row[1], row[2], row[3]
        if not path:  # the whole state: it may be, or have been, the marked value of a state not read
            why = state_not_read(value)
            if why is not None:
                lines.append(("changed", safe(f"? the state after this step is unknown: {why}", keep_newlines=False)))
                continue
            if state_not_read(old) is not None:
                lines.append(("changed", f"~ the state is read again (unknown after the step before): "
                                         f"{one_line(value, width)}"))
                continue
        sym = _SYMBOL.get(action, "?")
        where = path_text(path)
        if sym == "+":
            lines.append(("added", f"+ {where} = {one_line(value, width)}"))
        elif sym == "-":
            lines.append(("removed", f"- {where} (was {one_line(old, width)})"))
        elif isinstance(value, str) and isinstance(old, str) and (len(value) > long_text or len(old) > long_text
                                                                    or "\n" in value or "\n" in old):
            cut = len(value) > _DIFF_TEXT or len(old) > _DIFF_TEXT
            lines.append(("changed", f"~ {where}:" + (f" (the first {_DIFF_TEXT:,} characters compared)" if cut
                                                        else "")))
            for d in difflib.unified_diff(old[:_DIFF_TEXT].splitlines(), value[:_DIFF_TEXT].splitlines(), "before",
                                          "after", lineterm="", n=1):
                kind = "added" if d.startswith("+") and not d.startswith("+++") else (
                    "removed" if d.startswith("-") and not d.startswith("---") else "context")
                lines.append((kind, "    " + safe(d, keep_newlines=False)))
        else:
            before, after = one_line(old, width // 2), one_line(value, width // 2)
            if before == after:  # a type-only change (1.5 as float32 -> float64, a tuple -> a list): say the types
                before, after = f"{before} ({type_name(old)})", f"{after} ({type_name(value)})"
            lines.append(("changed", f"~ {where}: {before} → {after}"))
    return lines


def type_name(value: Any) -> str:
    """A value's type as a diff names it: ``int``, ``numpy.float32``, ``numpy.ndarray of int16``."""
    t = type(value)
    name = t.__name__ if t.__module__ == "builtins" else f"{t.__module__.split('.')[0]}.{t.__name__}"
    if isinstance(value, numpy_or_stub().ndarray):  # int32 and int64 arrays print alike: the dtype tells them apart
        return f"{name} of {value.dtype}"
    return name


def step_marker(step: Any, checks: Iterable[Any] | None = None) -> str:
    """One-character marker for a step: ``x`` exception, ``!`` tool error, ``R`` recovery, ``r`` retry,
    ``✓``/``✗`` a passed/failed check, ``·`` plain. ``checks``: the checks shown on the step
    (:func:`step_checks_shown`), in place of ``step.checks``."""
    failure = getattr(step, "failure", None)
    if failure is not None:
        return "x" if failure.kind == "exception" else "!"
    if getattr(step, "recovers", None):
        return "R"
    if getattr(step, "retry_of", None) is not None:
        return "r"
    verdicts = [c.passed for c in (getattr(step, "checks", ()) or () if checks is None else checks)]
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


def step_kind(step: Any, checks: Iterable[Any] | None = None) -> str:
    """The one kind a step is drawn as (a key of :data:`STEP_KINDS`), with :func:`step_marker`'s priorities
    (``checks`` as there).

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
    failed, passed = verdicts_of(getattr(step, "checks", ()) or () if checks is None else checks)
    if failed:
        return "check_failed"
    if passed:
        return "check_passed"
    return "ok"


def verdicts_of(checks: Iterable[Any]) -> tuple[bool, bool]:
    """(some check failed, some check passed) of a step's checks (:class:`trajrec.recorder.Check` objects or raw
    check records): what :func:`step_kind` draws a step's checks by, and what the viewer's marker scan
    (``trajrec.tui.step_scan``) computes from the index, so ``v``/``V`` reach every step drawn ✓ or ✗.

    >>> verdicts_of([{"value": True}, {"value": "fail"}]), verdicts_of([{"value": 0.5}])
    ((True, True), (False, False))
    """
    failed = passed = False
    for c in checks:
        v = verdict(c.get("value")) if isinstance(c, Mapping) else getattr(c, "passed", None)
        failed, passed = failed or v is False, passed or v is True
    return failed, passed


# -- where a check is shown ------------------------------------------------------------------------------------------
#
# ``Step.checks`` holds the checks the env reported in that step's info, whatever their target, and the
# ``Recorder.check`` checks whose target is that step. The exports (parquet ``n_labels``, preferences, label
# joins) count a check on its *target*. The displays (``trajrec show``, the viewer's markers and step pane) go
# by the target too, so an env that reports on step 3 that step 1 was wrong (``info["checks"]`` with
# ``target: 1``) marks step 1, as ``Recorder.check(False, target=1)`` does; beside it, "reported at step 3".
# A check whose target is not a step of the episode (``"episode"``, the built-in envs' terminal check, or a
# number out of range) stays on the step that reported it.


def check_place(check: Any, reported_at: int, n_steps: int) -> int:
    """The step a check is shown on: its target when that is a step number of the episode (``0 <= target <
    n_steps``), else ``reported_at``, the step whose info reported it.

    >>> from trajrec.recorder import Check
    >>> check_place(Check(target=1, kind="environment", judge="j", value=False), 3, 4)
    1
    >>> check_place(Check(target="episode", kind="environment", judge="j", value=True), 3, 4)
    3
    """
    target = getattr(check, "target", None)
    return target if type(target) is int and 0 <= target < n_steps else reported_at


def reported_at(check: Any) -> int | None:
    """The step whose info reported ``check`` (the index's ``step`` of a step check); None for a check added
    with ``Recorder.check`` or a label."""
    extra = getattr(check, "extra", None)
    step = extra.get("step") if isinstance(extra, Mapping) else None
    return step if type(step) is int else None


def checks_by_target(ep: Any) -> dict[int, list[Any]]:
    """The checks shown on each step (:func:`check_place`), from the episode's index alone
    (:meth:`trajrec.recorder.Episode.checks_by_step`, no step decoded); steps without checks are left out."""
    n = len(ep)
    out: dict[int, list[Any]] = {}
    for step, checks in ep.checks_by_step().items():
        for c in checks:
            out.setdefault(check_place(c, step, n), []).append(c)
    return out


def step_checks_shown(ep: Any, step: Any, by_target: Mapping[int, list[Any]] | None = None) -> list[Any]:
    """The checks shown on ``step``: those of its ``Step.checks`` that target it (or no step of the episode),
    then the checks other steps reported with ``step`` as their target. ``by_target``: :func:`checks_by_target`
    of ``ep``, when the caller keeps it (it walks every check of the index)."""
    n, i = len(ep), step.index
    own = [c for c in step.checks if check_place(c, i, n) == i]
    if by_target is None:
        by_target = checks_by_target(ep)
    # Reported on another step: the step records' own checks are all in the index's step_checks with their step.
    moved = [c for c in by_target.get(i, ()) if reported_at(c) is not None and reported_at(c) != i]
    return own + moved


def tool_call_text(action: Any) -> str | None:
    """A tool-call action (a dict, or a JSON object string, with ``tool``/``name`` and ``args``/``arguments``)
    as ``name(key="value", ...)``; None for any other action. Not escaped: pass it through :func:`one_line`.

    >>> tool_call_text('{"tool": "read_file", "args": {"path": "a.py"}}')
    'read_file(path="a.py")'
    >>> tool_call_text("cat a.py") is None
    True
    >>> tool_call_text({"name": "set", "arguments": {"v": float("inf"), "w": "inf", "x": [float("nan")]}})
    'set(v=Infinity, w="inf", x=[NaN])'
    >>> print(tool_call_text({"name": "set", "arguments": {"v": b"\\x00", "w": "<1 bytes>"}}))
    set(v=b'\\x00', w="<1 bytes>")
    """
    if isinstance(action, str) and len(action) > 100_000:
        return None  # not worth parsing for a one-line rendering
    call = parse_tool_call(action)
    if call is None:
        return None
    name, args = call
    if isinstance(args, dict):
        inner = ", ".join(f"{k}={arg_text(v)}" for k, v in args.items())
    else:
        inner = arg_text(args)
    return f"{name}({inner})"


def usage_text(totals: Any) -> str | None:
    """An episode's model-call totals (the summary's ``model`` field) on one line; None when it has none.

    >>> usage_text({"calls": 3, "failed_attempts": 1, "prompt_tokens": 1200, "completion_tokens": 80,
    ...             "total_tokens": 1280, "latency": 2.5, "cost": 0.0021})
    '3 calls (1 failed attempt), 1,280 tokens (1,200 in / 80 out), 2.50 s, $0.0021'
    >>> usage_text({"calls": 2, "total_tokens": 90, "prompt_tokens": 80, "completion_tokens": 10, "latency": 0.0})
    '2 calls, 90 tokens (80 in / 10 out)'
    """
    from trajrec.recorder.model_call import model_usage_totals

    if not isinstance(totals, dict):
        return None
    totals = model_usage_totals({"model": totals})  # what is no count or number of seconds (NaN...) becomes None
    if not totals.get("calls"):
        return None
    failed = totals.get("failed_attempts") or 0
    text = f"{totals['calls']:,} call{'s' if totals['calls'] != 1 else ''}"
    if failed:
        text += f" ({failed:,} failed attempt{'s' if failed != 1 else ''})"

    def count(key: str) -> str:
        n = totals.get(key)
        return "?" if n is None else f"{n:,}"

    unknown = token_count(totals.get("calls_without_usage")) or 0
    if totals.get("total_tokens") is None and unknown:
        text += ", tokens unknown (the server reported no usage)"
    else:
        text += f", {count('total_tokens')} tokens ({count('prompt_tokens')} in / {count('completion_tokens')} out)"
        if unknown:
            text += f" + {unknown:,} call{'s' if unknown != 1 else ''} without usage"
    if totals.get("latency") is None:
        text += ", ? s"
    elif totals["latency"]:  # 0: no call recorded its time (imported episodes), not "took 0 s"
        text += f", {totals['latency']:.2f} s"
    cost = totals.get("cost")
    if isinstance(cost, (int, float)):
        text += f", {cost_text(cost, 4)}"
    left = totals.get("left_out") or []
    n = max(len(left), token_count(totals.get("left_out_count")) or 0)
    if n:  # values of the notes (or totals of the file) that are no count, seconds or cost: not summed
        text += f"; {n:,} value{'s' if n != 1 else ''} not summed (not a count or amount), e.g. {one_line(left[0], 60)}"
    return text


def _count_text(usage: dict[str, Any], key: str) -> str:
    """A token count of a note's usage as shown: the count, ``?`` when missing, else the value (short, safe)."""
    if key not in usage:
        return "?"
    n = token_count(usage[key])
    return str(n) if n is not None else one_line(_safe_repr(usage[key]), 24)


def _safe_repr(v: Any) -> str:
    try:
        return repr(v)
    except ValueError:  # an int too long for text (Python's digit limit)
        return f"<{type(v).__name__}>"


def model_call_lines(call: Any, *, width: int = 100) -> list[tuple[str, str]]:
    """A step's model call (``note["model_call"]``) as ``(kind, line)`` pairs for people; every line is safe.

    Kinds: ``head`` (model, tokens, latency, cost), ``attempt`` (a failed attempt), ``tool`` (a parsed tool call),
    ``error`` (a tool call whose arguments did not parse, or a call that failed for good), ``text`` (reasoning,
    reply, messages sent).
    """
    if not isinstance(call, dict):
        return [("text", one_line(call, width))]
    out: list[tuple[str, str]] = []
    head = [one_line(call.get("model") or "model ?", 40)]
    usage = call.get("usage")
    if isinstance(usage, dict):
        head.append(f"{_count_text(usage, 'total_tokens')} tokens ({_count_text(usage, 'prompt_tokens')} in / "
                    f"{_count_text(usage, 'completion_tokens')} out)")
    if amount(call.get("latency")) is not None:  # a note is data from anyone: NaN, -1, 10**400 are not shown
        head.append(f"{amount(call['latency']):.2f} s")
    if amount(call.get("cost")) is not None:
        head.append(cost_text(amount(call["cost"]), 4))
    sampling = call.get("sampling")
    if isinstance(sampling, dict) and sampling:
        head.append(one_line(", ".join(f"{k}={v}" for k, v in sampling.items()), 50))
    out.append(("head", "  ".join(head)))
    for n, attempt in enumerate(call.get("attempts") or (), 1):
        if isinstance(attempt, dict):
            status = f" {attempt['status']}" if attempt.get("status") is not None else ""
            took = f" after {amount(attempt['latency']):.2f} s" if amount(attempt.get("latency")) is not None else ""
            out.append(("attempt", f"attempt {n} failed: {one_line(attempt.get('error'), 20)}{status}{took}: "
                                   f"{one_line(attempt.get('message') or '', width - 40)}"))
    if isinstance(call.get("error"), dict):
        err = call["error"]
        out.append(("error", f"failed: {one_line(err.get('error'), 20)}: {one_line(err.get('message') or '', width)}"))
    for tc in call.get("tool_calls") or ():
        if not isinstance(tc, dict):
            continue
        args = tc.get("arguments")
        shown = (", ".join(f"{k}={arg_text(v)}" for k, v in args.items())
                 if isinstance(args, dict) else str(tc.get("raw_arguments")))
        line = f"tool call {one_line(tc.get('name'), 40)}({one_line(shown, width - 20)})"
        if tc.get("error"):
            out.append(("error", f"{line}: {one_line(tc['error'], width)}"))
        else:
            out.append(("tool", line))
    if call.get("reasoning"):
        out.append(("text", "reasoning: " + value_text(call["reasoning"], max_len=2000)))
    if call.get("content"):
        out.append(("text", "reply: " + value_text(call["content"], max_len=2000)))
    messages = call.get("messages") or ()
    if messages:
        before = call.get("messages_before")
        out.append(("text", f"messages sent ({len(messages)} new" + (f", after {before})" if before else ")")))
        for m in messages:
            if isinstance(m, dict):
                content = m.get("content")
                if content is None and m.get("tool_calls"):
                    content = "tool calls: " + ", ".join(
                        str((c.get("function") or {}).get("name")) for c in m["tool_calls"] if isinstance(c, dict))
                out.append(("text", f"  {one_line(m.get('role'), 10)}: {one_line(content, width - 14)}"))
    return out


def step_record(step: Any) -> dict[str, Any]:
    """A recorded step as a plain dict (what ``trajrec show --json`` prints per step and the viewer copies):
    every field of the step, the failure as a dict, diff rows as lists, checks as records."""
    out = {name: getattr(step, name) for name in step.__slots__ if not name.startswith("_")}
    failure = out.get("failure")
    out["failure"] = failure._asdict() if failure is not None else None
    out["diff"] = [list(row) for row in getattr(step, "diff", ()) or ()]
    out["checks"] = [c.to_record() for c in getattr(step, "checks", ()) or ()]
    return out


def json_text(value: Any, *, indent: int | None = 2) -> str:
    """A recorded value as JSON text (numpy values as numbers and lists, bytes as ``<n bytes>``: for the JSON a
    script reads; people's text (:func:`value_text`, :func:`tree_text`) shows bytes whole)."""
    return json.dumps(_plain(value), ensure_ascii=False, indent=indent)


def cost_text(cost: Any, digits: int = 3) -> str:
    """A model cost for people, in fixed notation with ``digits`` significant digits below $1 (``$0.000091``, not
    ``$9.1e-05``), cents from $1, whole dollars from $1,000; ``-`` for no number (unknown, not 0).

    >>> [cost_text(c) for c in (9.1e-05, 0.000624, 0.1234, 0.5, 12.345, 2500.0, 0, None, float("nan"))]
    ['$0.000091', '$0.000624', '$0.123', '$0.5', '$12.35', '$2,500', '$0', '-', '-']
    """
    if isinstance(cost, bool) or not isinstance(cost, (int, float)) or not math.isfinite(cost):
        return "-"
    if cost == 0:
        return "$0"
    size = abs(cost)
    if size >= 1000:
        return f"${cost:,.0f}"
    if size >= 1:
        return f"${cost:,.2f}"
    places = digits - 1 - math.floor(math.log10(size))
    return "$" + f"{cost:.{places}f}".rstrip("0").rstrip(".")


def number_text(value: Any) -> str:
    """A reward, return or score for people: ``-1070.5``, not ``-1.07e+03`` or ``np.float64(-1070.5)``; up to six
    significant digits, an exponent only beyond a million or below a thousandth; ``-`` for None.

    >>> number_text(-1070.5), number_text(3), number_text(0.1 + 0.2), number_text(None), number_text(2.5e9)
    ('-1070.5', '3', '0.3', '-', '2.5e+09')
    """
    if value is None:
        return "-"
    if isinstance(value, numpy_or_stub().generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return one_line(value, 24)
    if isinstance(value, int):
        return str(value)
    if value != value or value in (float("inf"), float("-inf")):
        return repr(value)
    return f"{value:.6g}"
