"""Failure, retry and recovery classification of steps.

Defaults (each can be replaced by a callable passed to :class:`~trajrec.recorder.Recorder`):

* a step **fails** when ``env.step`` raised (kind ``exception``), when ``info["error"]`` is truthy (kind
  ``tool_error``), or when ``failure_fn`` says so;
* a step is a **retry** when it repeats the operation (``action_key(action)``) of a failed step that no later
  step of that operation has recovered yet; ``retry_of`` is the most recent such failed step;
* a successful step **recovers** the still-unrecovered failed steps of its operation: ``recovers`` lists them.

A failed step whose record could not be written (a full disk: :meth:`Classifier.lose`) has no step number; a
later retry or recovery of it gets a :class:`LostStep` in place of its number, never the number of the step
written next.

>>> c = Classifier()
>>> c.classify(0, "cat missing.txt", {"error": "no such file"})
({'kind': 'tool_error', 'message': 'no such file'}, None, None)
>>> c.classify(1, "cat missing.txt", {"error": "no such file"})
({'kind': 'tool_error', 'message': 'no such file'}, 0, None)
>>> c.classify(2, "cat notes.txt", {})
(None, 1, [0, 1])
"""

from __future__ import annotations

import json
import traceback as tb
import warnings
from typing import Any, Callable, Hashable

from .codec import array_bytes, bounded_repr, numpy_if_loaded, user_stacklevel
from .model import plain_scalar, truthy

FailureFn = Callable[[dict[str, Any]], Any]
_MISSING = object()
ActionKeyFn = Callable[[Any], Hashable]


def parse_tool_call(action: Any) -> tuple[str, Any] | None:
    """``(tool name, arguments)`` of a tool-call action, else None.

    A tool call is a dict, or a JSON object string, naming its tool with ``tool`` or ``name`` (or OpenAI's
    ``{"function": {"name", "arguments"}}``) and carrying arguments in ``args``, ``arguments``, ``parameters``
    or ``input``; arguments given as JSON text are decoded. The one parser shared by retry classification,
    exports and display.

    >>> parse_tool_call('{"tool": "calc", "args": {"expr": "1+"}}')
    ('calc', {'expr': '1+'})
    >>> parse_tool_call({"function": {"name": "f", "arguments": '{"x": 1}'}})
    ('f', {'x': 1})
    >>> parse_tool_call("ls -la") is None
    True
    """
    call = action
    if isinstance(action, str):
        text = action.lstrip()
        if not text.startswith("{"):
            return None
        try:
            call = json.loads(text)
        except ValueError:
            return None
    if not isinstance(call, dict):
        return None
    fn = call.get("function")
    if isinstance(fn, dict) and isinstance(fn.get("name"), str):
        call = fn
    for key in ("tool", "name"):
        name = call.get(key)
        if isinstance(name, str) and name:
            for akey in ("args", "arguments", "parameters", "input"):
                if akey in call:
                    args = call[akey]
                    if isinstance(args, str):  # OpenAI style: arguments as JSON text
                        try:
                            args = json.loads(args)
                        except ValueError:
                            pass
                    return name, args
            return name, {}
    return None


def default_action_key(action: Any) -> Hashable:
    """The operation an action performs: a tool call's tool name, a command line's first word, else the action.

    >>> default_action_key('{"tool": "calc", "args": {"expr": "1+"}}')
    'calc'
    >>> default_action_key("grep -r TODO src")
    'grep'
    >>> default_action_key(3)
    3
    """
    if isinstance(action, str):
        text = action.lstrip()
        if text.startswith("{"):
            call = parse_tool_call(text)
            return call[0] if call is not None else action
        parts = text.split(None, 1)
        return parts[0] if parts else ""
    if isinstance(action, dict):
        call = parse_tool_call(action)
        return call[0] if call is not None else bounded_repr(action)
    np = numpy_if_loaded()  # not imported for it: without numpy no action is a numpy value
    if np is not None and isinstance(action, np.ndarray):
        if action.dtype.hasobject:  # its raw bytes are the elements' addresses: equal arrays would differ
            return bounded_repr(action)
        return (action.dtype.str, action.shape, array_bytes(action))
    if np is not None and isinstance(action, np.generic):
        return action.item()
    try:
        hash(action)
    except TypeError:
        return bounded_repr(action)
    return action


def recorder_error(where: str, exc: BaseException) -> dict[str, Any]:
    """What the step record keeps of an error raised inside the recorder's own work (``recorder_errors``)."""
    return {"where": where, "type": _type_name(type(exc)), "message": _exc_text(exc)}


def _type_name(t: type) -> str:
    return f"{t.__module__}.{t.__qualname__}" if t.__module__ != "builtins" else t.__qualname__


def _exc_text(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001  (an exception whose __str__ raises)
        return f"<{type(exc).__name__} with an unprintable message>"
    return text if len(text) <= 2000 else text[:2000] + "...<truncated>"


def exception_failure(exc: BaseException) -> dict[str, Any]:
    t = type(exc)
    return {
        "kind": "exception",
        "type": f"{t.__module__}.{t.__qualname__}" if t.__module__ != "builtins" else t.__qualname__,
        "message": _exc_text(exc),
        "traceback": _traceback_text(exc),
    }


class LostStep:
    """A failed step the env took whose record could not be written (a full disk, a file-size limit): it has no
    step number, only its place, the gap right before written step ``before`` (the summary's ``lost_before``).
    What :meth:`Classifier.classify` gives for a retry or recovery of it, in place of a step number."""

    __slots__ = ("before",)

    def __init__(self, before: int) -> None:
        self.before = before

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LostStep) and other.before == self.before

    def __hash__(self) -> int:
        return hash(("LostStep", self.before))

    def __repr__(self) -> str:
        return f"LostStep(before={self.before})"


class Classifier:
    """Decides ``failure``, ``retry_of`` and ``recovers`` for each step of one episode.

    Memory holds only the failed steps not yet recovered, so it stays flat in episode length.
    """

    __slots__ = ("_failure_fn", "_action_key", "_pending", "_warned", "_key_cache", "errors")

    def __init__(self, failure_fn: FailureFn | None = None, action_key: ActionKeyFn | None = None) -> None:
        self._failure_fn = failure_fn
        self._action_key = action_key or default_action_key
        self._pending: dict[Hashable, list[int | LostStep]] = {}
        self._warned: set[str] = set()
        #: errors raised by the user's callables since the caller last emptied this list (recorded on the step)
        self.errors: list[dict[str, Any]] = []
        # Agents repeat actions (that is what a retry is), and parsing a JSON tool call is the cost of a key.
        self._key_cache: dict[str, Hashable] = {}

    def reset(self) -> None:
        self._pending = {}

    def lose(self, i: int) -> None:
        """Step ``i`` (as :meth:`classify` was told) was not written: the next written step takes its number, so a
        failed step ``i`` waiting for a retry or recovery becomes a :class:`LostStep` (lost before step ``i``).

        >>> c = Classifier()
        >>> c.classify(3, "cat x", {"error": "no such file"})[0]["kind"]
        'tool_error'
        >>> c.lose(3)
        >>> c.classify(3, "cat x", {})
        (None, LostStep(before=3), [LostStep(before=3)])
        """
        for steps in self._pending.values():
            for n, k in enumerate(steps):
                if type(k) is int and k == i:
                    steps[n] = LostStep(i)

    def classify(self, i: int, action: Any, info: Any, raised: BaseException | None = None,
                 step: dict[str, Any] | None = None
                 ) -> tuple[dict[str, Any] | None, int | LostStep | None, list[int | LostStep] | None]:
        """Return ``(failure, retry_of, recovers)`` for step ``i``: step numbers, or a :class:`LostStep` for a
        failed step whose record was not written (see :meth:`lose`)."""
        failure: dict[str, Any] | None = None
        if raised is not None:
            # A stand-in exception may carry the failure to record instead of its own (a VectorRecorder's sub-env
            # whose step raised in another sub-env: kind "vector_error" or "not_run").
            own = getattr(raised, "trajrec_failure", None)
            failure = dict(own) if type(own) is dict else exception_failure(raised)
        else:
            err = info.get("error") if isinstance(info, dict) else None
            if err is not None and truthy(err):
                failure = {"kind": "tool_error", "message": err if isinstance(err, str) else bounded_repr(err)}
            if self._failure_fn is not None:
                failure = self._user_failure(step if step is not None else {"action": action, "info": info}, failure)
        pending = self._pending
        if failure is None and not pending:
            return None, None, None  # the common case: nothing to retry or recover, no key needed
        key = self._key(action)
        earlier = pending.get(key)
        retry_of = earlier[-1] if earlier else None
        if failure is not None:
            if earlier is None:
                pending[key] = [i]
            else:
                earlier.append(i)
            return failure, retry_of, None
        if earlier:
            del pending[key]
            return None, retry_of, earlier
        return None, None, None

    def quiet_for(self, action: Any) -> bool:
        """True when no failed step waits for a retry or recovery by ``action``'s operation as far as can be told
        without computing its key: nothing is pending, or ``action`` is text whose key is cached and not pending.
        Then a step of ``action`` that does not fail is neither a retry nor a recovery, and :meth:`classify`
        would answer ``(None, None, None)``. Changes nothing and calls no user code (a key not cached: False)."""
        pending = self._pending
        if not pending:
            return True
        if type(action) is str:
            key = self._key_cache.get(action, _MISSING)
            return key is not _MISSING and key not in pending
        return False

    def _key(self, action: Any) -> Hashable:
        if type(action) is str:
            key = self._key_cache.get(action, _MISSING)
            if key is _MISSING:
                if len(self._key_cache) >= 512:
                    self._key_cache.clear()
                key = self._key_cache[action] = self._compute_key(action)
            return key
        return self._compute_key(action)

    def _compute_key(self, action: Any) -> Hashable:
        try:
            key = self._action_key(action)
            hash(key)
            return key
        except Exception as exc:  # a broken user callable must not take the agent down
            self._user_error("action_key", exc, "using repr(action) instead")
            return bounded_repr(action)

    def _user_failure(self, step: dict[str, Any], default: dict[str, Any] | None) -> dict[str, Any] | None:
        try:
            return self._verdict(step, default)
        except Exception as exc:  # a broken user callable must not take the agent down
            self._user_error("failure_fn", exc, "using the default rule")
            return default

    def _user_error(self, where: str, exc: Exception, instead: str) -> None:
        """Keep an error of a user callable for the step record, and warn once per callable."""
        error = recorder_error(where, exc)
        self.errors.append(error)
        if where not in self._warned:
            self._warned.add(where)
            warnings.warn(f"{where} raised {error['type']}: {error['message']}; {instead} (recorded on the step as "
                          "recorder_errors; warned once)", RuntimeWarning, stacklevel=user_stacklevel())

    def _verdict(self, step: dict[str, Any], default: dict[str, Any] | None) -> dict[str, Any] | None:
        # A comparison on a numpy reward or observation gives np.True_, which `is True` is not: read it as Python's.
        verdict = plain_scalar(self._failure_fn(step))  # type: ignore[misc]
        if verdict is None:
            return default
        if verdict is False:
            return None
        if verdict is True:
            return default or {"kind": "failure_fn", "message": ""}
        if isinstance(verdict, str):
            return {"kind": verdict, "message": (default or {}).get("message", "")}
        if isinstance(verdict, dict):
            out = {"kind": "failure_fn", "message": ""}
            out.update({str(k): v for k, v in verdict.items()})
            out["kind"] = str(out["kind"])
            out["message"] = str(out["message"])
            return out
        if "failure_fn returned" not in self._warned:  # not ignored without a word: the labels depend on it
            self._warned.add("failure_fn returned")
            warnings.warn(f"failure_fn returned {bounded_repr(verdict)[:80]} ({type(verdict).__name__}); expected None, "
                          "a bool, a str (the failure kind) or a dict, so the default rule decides (warned once)",
                          RuntimeWarning, stacklevel=user_stacklevel())
        return default


def _traceback_text(exc: BaseException) -> str:
    try:
        return "".join(tb.format_exception(type(exc), exc, exc.__traceback__))
    except Exception as again:  # noqa: BLE001  (a hostile __str__ inside the chain)
        return f"<traceback not available: {type(again).__name__}>"
