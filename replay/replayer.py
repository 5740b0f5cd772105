"""Deterministic re-execution: rebuild a recorded episode's env, re-run its actions, report the first divergence.

:func:`replay_episode` rebuilds the env from the episode header (``gymnasium.make(task.env_id,
**task.env_kwargs)``), resets it with the recorded seed and options, steps it with the recorded actions and
compares, at the reset and after every step, a *compared record* of fields:

``observation`` ``reward`` ``terminated`` ``truncated`` ``info`` ``state`` ``exception``

(the reset has no reward/terminated/truncated; ``state`` only when the episode recorded one; ``exception`` is
``None`` or ``{"type", "message"}`` when the call raised). ``docs/REPLAY.md`` describes the rules.
The header is data: :mod:`trajrec.replay.rebuild` builds the env only from code the user chose (registered ids,
``imports``, entry points allowed by name), never from a module or callable the file names.

Comparison is exact, with three deliberate allowances, each because the recording itself cannot tell the
difference: replayed values first go through the same codec round trip the recorder applies (so an
``OrderedDict`` compares as the ``dict`` the file holds, a tuple stays a tuple, ``np.float32`` stays
``np.float32``); NaN equals NaN; memory addresses (``0x7f...``) inside the stored ``repr`` of unencodable
values and inside exception messages are masked. In ``state`` only, ``1`` equals ``1.0``, because the
recorder's state diff does not record a number changing type inside an otherwise equal container.

>>> import gymnasium as gym, tempfile
>>> from trajrec.recorder import Recorder
>>> env = Recorder(gym.make("CartPole-v1"), tempfile.mkdtemp())
>>> _ = env.reset(seed=3)
>>> for a in (0, 1, 1):
...     _ = env.step(a)
>>> env.close()
>>> report = replay_episode(env.episode_path)
>>> print(report)
replayed 3 steps, no divergence
>>> report.diverged
False
"""

from __future__ import annotations

import difflib
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trajrec.recorder.codec import CodecWarning, Unencodable, state_not_read
from trajrec.recorder.diff import _key_in
from trajrec.recorder.errors import TrajrecUsageError
from trajrec.recorder.format import packb, unpackb
from trajrec.recorder.writer import pack_record

from .rebuild import ReplayError, import_modules, rebuild_env
from .render import diff_lines, one_line, path_text, type_name

#: The fields of a compared record, in the order divergences name them.
FIELDS: tuple[str, ...] = ("exception", "observation", "reward", "terminated", "truncated", "info", "state")

#: Task keys the Recorder derives from the env itself; a recorded replay gets fresh ones.
_DERIVED_TASK_KEYS = frozenset({"env_id", "env_kwargs", "entry_point", "max_episode_steps", "seed", "options",
                                "disable_env_checker"})

_MAX_ROWS_SHOWN = 20
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{4,}")


class ReplayWarning(UserWarning):
    """Warned when a replay may diverge for a reason the env does not control (an unseeded reset), or when part
    of the record cannot be compared (a state recorded with a custom ``state_fn``)."""


# -- results --------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DivergenceRow:
    """One difference: ``path`` into the compared record, DeepDiff's change name, and both values."""

    path: tuple[Any, ...]
    change: str
    recorded: Any
    replayed: Any

    @property
    def where(self) -> str:
        """The path as text, e.g. ``info.noise`` or ``state.files['a.txt']``."""
        return path_text(self.path)

    def to_dict(self, sides: tuple[str, str] = ("recorded", "replayed")) -> dict[str, Any]:
        """``sides``: the keys of the two values (``trajrec diff`` compares ``a`` with ``b``, not a replay)."""
        return {"path": self.where, "keys": list(self.path), "change": self.change,
                sides[0]: None if self.recorded is _ABSENT else self.recorded,
                sides[1]: None if self.replayed is _ABSENT else self.replayed}


@dataclass(frozen=True)
class Divergence:
    """Where a replay first differed from the recording, and how.

    Attributes:
        step: the step index, or ``"reset"``.
        fields: the compared-record fields that differ (``observation``, ``info``, ``state``...).
        rows: every difference, recorded value against replayed value.
        action: the recorded action of that step (None for the reset).
        text: the differences as readable lines (``~`` changed, ``+`` only in the replay, ``-`` only in the
            recording).
    """

    step: int | str
    fields: tuple[str, ...]
    rows: tuple[DivergenceRow, ...]
    action: Any = None
    text: str = ""

    @property
    def field(self) -> str:
        """The first differing field."""
        return self.fields[0] if self.fields else ""

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "field": self.field, "fields": list(self.fields), "action": self.action,
                "rows": [r.to_dict() for r in self.rows], "text": self.text}

    def __str__(self) -> str:
        where = "the reset" if self.step == "reset" else f"step {self.step}"
        head = f"{where} differs in {', '.join(self.fields)} (recorded → replayed)"
        action = "" if self.step == "reset" else f"\n  action: {one_line(self.action, 90)}"
        return f"{head}:{action}\n{self.text}"


@dataclass
class ReplayReport:
    """What :func:`replay_episode` found.

    ``str(report)`` is the human summary: ``replayed N steps, no divergence`` or the first divergent step
    with its differences.

    >>> row = DivergenceRow(("info", "noise"), "values_changed", 0.25, 0.5)
    >>> report = ReplayReport("ep.msgpack.zst", "ep", "my/Env-v0", steps_recorded=9, steps_replayed=4,
    ...                       divergences=[Divergence(3, ("info",), (row,), "look", render_rows([row]))])
    >>> print(report)
    replayed 4 steps, diverged at step 3 in info
    step 3 differs in info (recorded → replayed):
      action: look
      ~ info.noise: 0.25 → 0.5

    Attributes:
        recorded_path: the replayed episode file.
        episode_id: its episode id.
        env_id: the env id the replay ran (None when an env object was passed in).
        steps_recorded: steps in the recording.
        steps_replayed: ``env.step`` calls made by the replay.
        divergences: every divergent step found (one when ``stop_at_first``).
        warnings: reasons the replay may diverge or compare less than everything.
        compared: the fields compared.
        ignored: the ignore paths applied.
        until: the last step replayed when the replay was cut short by ``until``.
        new_episode_path: the episode written by ``record=``, else None.
        exceptions_repeated: the steps (or ``"reset"``) where the recording raised and the replay raised the
            same exception again.
        states_unknown: the steps (or ``"reset"``) whose recorded state is marked unknown (``trajrec.StateNotRead``:
            ``state_fn`` raised, or a vector env that raised or reset in the step could not be asked); the state is
            not compared there.
    """

    recorded_path: str
    episode_id: str
    env_id: str | None
    steps_recorded: int
    steps_replayed: int = 0
    divergences: list[Divergence] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    compared: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()
    until: int | None = None
    new_episode_path: str | None = None
    exceptions_repeated: list[int | str] = field(default_factory=list)
    states_unknown: list[int | str] = field(default_factory=list)

    @property
    def diverged(self) -> bool:
        return bool(self.divergences)

    @property
    def first_divergence(self) -> Divergence | None:
        return self.divergences[0] if self.divergences else None

    def to_dict(self) -> dict[str, Any]:
        first = self.first_divergence
        return {
            "recorded_path": self.recorded_path,
            "episode_id": self.episode_id,
            "env_id": self.env_id,
            "steps_recorded": self.steps_recorded,
            "steps_replayed": self.steps_replayed,
            "until": self.until,
            "diverged": self.diverged,
            "first_divergence": first.to_dict() if first else None,
            "divergences": [d.to_dict() for d in self.divergences],
            "compared": list(self.compared),
            "ignored": list(self.ignored),
            "warnings": list(self.warnings),
            "new_episode_path": self.new_episode_path,
            "exceptions_repeated": list(self.exceptions_repeated),
            "states_unknown": list(self.states_unknown),
        }

    def __str__(self) -> str:
        n = self.steps_replayed
        steps = f"{n} step{'' if n == 1 else 's'}"
        cut = ""
        if self.until is not None and self.until < self.steps_recorded - 1:
            cut = f" (stopped after step {self.until} of 0..{self.steps_recorded - 1})"
        if not self.divergences:
            lines = [f"replayed {steps}, no divergence{cut}"]
            if self.exceptions_repeated:
                where = ", ".join("the reset" if s == "reset" else f"step {s}" for s in self.exceptions_repeated)
                lines.append(f"the recorded exception repeated at {where}")
        else:
            first = self.divergences[0]
            where = "the reset" if first.step == "reset" else f"step {first.step}"
            more = f"; {len(self.divergences)} divergent steps in all" if len(self.divergences) > 1 else ""
            lines = [f"replayed {steps}, diverged at {where} in {', '.join(first.fields)}{more}{cut}"]
            for d in self.divergences[:10]:
                lines.append(str(d))
            if len(self.divergences) > 10:
                lines.append(f"... and {len(self.divergences) - 10} more divergent steps (see to_dict() / --json)")
        if self.states_unknown:
            where = ", ".join("the reset" if s == "reset" else f"step {s}" for s in self.states_unknown)
            lines.append(f"state not compared at {where}: the recording marks it unknown (not read there; "
                         "`trajrec show --step N` says why)")
        if self.new_episode_path:
            lines.append(f"replay recorded to {self.new_episode_path}")
        return "\n".join(lines)


# -- ignore paths ---------------------------------------------------------------------------------------------------

_SEGMENT = re.compile(r"""\.?([^.\[\]'"]+)|\[(-?\d+|'[^']*'|"[^"]*"|\*)\]""")


@dataclass(frozen=True)
class _Seg:
    kind: str  # "key" (exact key), "num" (int index or the same digits as a str key), "any"
    value: Any = None


def parse_ignore(path: str, fields: Sequence[str] = FIELDS) -> tuple[_Seg, ...]:
    """Parse an ignore path: dotted keys into the compared record, ``[i]`` / ``['key']`` / ``*`` segments.

    ``fields``: the fields a path may start with (a replay's :data:`FIELDS`; ``trajrec diff`` passes its own).

    >>> [s.value for s in parse_ignore("state.files['a.txt']")]
    ['state', 'files', 'a.txt']
    """
    if not isinstance(path, str) or not path or path[0] in ".[":
        raise TrajrecUsageError(f"ignore path {path!r} must start with a field name: one of {', '.join(fields)} "
                                "(e.g. info.elapsed, observation, state.files.x)")
    segs: list[_Seg] = []
    pos = 0
    while pos < len(path):
        m = _SEGMENT.match(path, pos)
        if m is None or m.end() == pos or (pos > 0 and path[pos] not in ".["):
            raise TrajrecUsageError(f"ignore path {path!r}: cannot read it from character {pos} ({path[pos:]!r}); "
                                    "write dotted keys with [index] or ['key with.dots'], e.g. state.files['a.txt']")
        dotted, bracket = m.group(1), m.group(2)
        raw = dotted if dotted is not None else bracket
        if raw == "*":
            segs.append(_Seg("any"))
        elif bracket is not None and raw[0] in "'\"":
            segs.append(_Seg("key", raw[1:-1]))
        elif re.fullmatch(r"-?\d+", raw):
            segs.append(_Seg("num", int(raw)))
        else:
            segs.append(_Seg("key", raw))
        pos = m.end()
    head = segs[0]
    if head.kind != "key" or head.value not in fields:
        word = str(head.value)
        # A suggestion only when it is likely meant: a typed prefix (obs), or a near spelling (reward for rewad).
        close = ([f for f in fields if len(word) >= 3 and f.startswith(word)]
                 or difflib.get_close_matches(word, list(fields), n=1, cutoff=0.75))
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise TrajrecUsageError(f"ignore path {path!r} starts with {head.value!r}{hint}; paths start with a "
                                f"compared field: {', '.join(fields)}")
    return tuple(segs)


_IGNORED = "<ignored>"


def _prune(value: Any, segs: Sequence[_Seg]) -> Any:
    """``value`` with what ``segs`` points at removed; containers on the way are copied, never mutated."""
    if not segs:
        return value
    seg, rest = segs[0], segs[1:]
    if isinstance(value, dict):
        keys = list(value) if seg.kind == "any" else [k for k in _dict_keys(seg) if k in value]
        if not keys:
            return value
        out = dict(value)
        for k in keys:
            if rest:
                out[k] = _prune(out[k], rest)
            else:
                del out[k]
        return out
    if isinstance(value, (list, tuple)):
        n = len(value)
        idx: Iterable[int]
        if seg.kind == "any":
            idx = range(n)
        elif seg.kind == "num" and -n <= seg.value < n:
            idx = [seg.value % n]
        else:
            return value
        items = list(value)
        for i in idx:
            items[i] = _prune(items[i], rest) if rest else _IGNORED
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, np.ndarray) and value.ndim >= 1 and not rest and seg.kind in ("num", "any"):
        n = len(value)
        if seg.kind == "num" and not -n <= seg.value < n:
            return value
        arr = value.copy()
        try:
            arr[... if seg.kind == "any" else seg.value] = 0
        except (TypeError, ValueError):
            return value
        return arr
    return value


def _dict_keys(seg: _Seg) -> list[Any]:
    if seg.kind == "num":
        return [seg.value, str(seg.value)]
    return [seg.value]


# -- comparing ------------------------------------------------------------------------------------------------------

_NUMBERS = (int, float, np.integer, np.floating)


def _same(a: Any, b: Any, loose: bool) -> bool:
    """Exact structural equality (types included), NaN equal to NaN; ``loose``: numbers compare by value."""
    if a is b:
        return True
    ta = type(a)
    if ta is not type(b):
        if (loose and isinstance(a, _NUMBERS) and isinstance(b, _NUMBERS)
                and not isinstance(a, bool) and not isinstance(b, bool)):
            return bool(a == b) or (a != a and b != b)
        return False
    if ta is dict:
        if len(a) != len(b):
            return False
        keys_b = None
        for k, v in a.items():
            kb = k if k in b else _key_in(b, k)  # a NaN key (or a tuple holding one) read twice: two objects
            if kb not in b or not _same(v, b[kb], loose):
                return False
            if type(k) is not str:
                # b's own key equal to k: {1: v} and {1.0: v} (or 0.0 and -0.0) are different records
                keys_b = keys_b if keys_b is not None else {x: x for x in b}
                if kb in keys_b and not _same(k, keys_b[kb], False):
                    return False
        return True
    if ta is list or ta is tuple:
        return len(a) == len(b) and all(_same(x, y, loose) for x, y in zip(a, b))
    if ta is set or ta is frozenset:  # NaN members read twice are two objects: matched by _same, one to one
        if len(a) != len(b):
            return False
        rest = [y for y in b if y not in a]
        for x in a:
            if x not in b:
                match = next((j for j, y in enumerate(rest) if _same(x, y, loose)), None)
                if match is None:
                    return False
                rest.pop(match)
        return True
    if ta is np.ndarray:
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.dtype.hasobject:
            return all(_same(x, y, loose) for x, y in zip(a.ravel().tolist(), b.ravel().tolist()))
        if not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"):
            return False
        if a.dtype.kind == "f" and not loose:  # 0.0 == -0.0: the sign is part of the recorded value
            return bool(np.array_equal(np.signbit(a), np.signbit(b)))
        return True
    if ta is Unencodable:
        return a.type == b.type and _mask(a.repr) == _mask(b.repr)
    if ta is float or isinstance(a, np.floating):
        if a == b:  # a zero's sign counts (unless loose: numbers by value)
            return loose or a != 0 or bool(np.signbit(a) == np.signbit(b))
        return a != a and b != b
    try:
        eq = a == b
    except Exception:  # an object whose __eq__ raises: different, so DeepDiff gets to explain it
        return False
    if eq is True or (type(eq) is np.bool_ and bool(eq)):
        return True
    return isinstance(a, (float, np.floating, complex, np.complexfloating)) and a != a and b != b


def _equal(a: Any, b: Any, loose: bool) -> bool:
    if a is _ABSENT or b is _ABSENT:
        return a is b
    # Equal bytes mean equal values, types included; packing in C is ~10x faster than walking a 9 KB state in
    # Python. Unequal bytes may still be equal values (dict order, NaN payloads, masked addresses): walk then.
    try:
        if packb(a) == packb(b):
            return True
    except Exception:  # values off the round trip (callers of compare_records may pass anything): walk them
        pass
    return _same(a, b, loose)


def _mask(text: str) -> str:
    return _ADDRESS.sub("0x…", text)


def _masked(value: Any) -> Any:
    if isinstance(value, Unencodable):
        return Unencodable(value.type, _mask(value.repr))
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_masked(v) for v in value)
    return value


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<absent>"


_ABSENT = _Absent()


def _deep_rows(recorded: dict[str, Any], replayed: dict[str, Any], loose: bool) -> list[DivergenceRow]:
    from deepdiff import DeepDiff
    from deepdiff.helper import NotPresent

    diff = DeepDiff(_masked(recorded), _masked(replayed), ignore_nan_inequality=True, threshold_to_diff_deeper=0,
                    ignore_numeric_type_changes=loose, view="tree", verbose_level=2)
    rows = []
    for change, levels in diff.tree.items():
        for level in levels:
            old = _ABSENT if isinstance(level.t1, NotPresent) else level.t1
            new = _ABSENT if isinstance(level.t2, NotPresent) else level.t2
            rows.append(DivergenceRow(tuple(level.path(output_format="list")), change, old, new))
    return rows


def _strict_rows(a: Any, b: Any, path: tuple[Any, ...], loose: bool) -> list[DivergenceRow]:
    """The differences :func:`_same` sees, each at the deepest path where the two values still have one shape (a
    dict with the same keys, a list or tuple of one length): ``observation.t`` for ``0.0`` against ``-0.0``,
    ``info.z[1]`` for ``2`` against ``2.0`` (DeepDiff takes both pairs for equal). Below that, the value that
    differs is one row: ``type_changes`` when the types differ, else ``values_changed``."""
    if _same(a, b, loose):
        return []
    ta = type(a)
    if ta is type(b):
        if ta is dict and len(a) == len(b) and all(k in b for k in a):
            return [r for k, v in a.items() for r in _strict_rows(v, b[k], (*path, k), loose)]
        if (ta is list or ta is tuple) and len(a) == len(b):
            return [r for i, (x, y) in enumerate(zip(a, b)) for r in _strict_rows(x, y, (*path, i), loose)]
    return [DivergenceRow(path, "values_changed" if ta is type(b) else "type_changes", a, b)]


def _explained(found: list[DivergenceRow], a: Any, b: Any, key: str, loose: bool) -> list[DivergenceRow]:
    """DeepDiff's rows for field ``key``, with a row for each difference it does not see (it takes ``-0.0`` for
    ``0.0`` and ``2.0`` for ``2`` inside containers) placed at its own path by :func:`_strict_rows`."""
    def near(p: tuple[Any, ...], q: tuple[Any, ...]) -> bool:  # one path leads to the other: the same change
        n = min(len(p), len(q))
        return p[:n] == q[:n]

    try:
        extra = [r for r in _strict_rows(a, b, (key,), loose) if not any(near(r.path, f.path) for f in found)]
    except Exception:  # a value _same cannot walk: DeepDiff's rows, or the whole-field row, still tell the truth
        extra = []
    return found + extra


def compare_records(recorded: dict[str, Any], replayed: dict[str, Any],
                    ignores: Sequence[tuple[_Seg, ...]] = ()) -> list[DivergenceRow]:
    """The differences between a recorded and a replayed compared record (empty when they agree)."""
    for segs in ignores:
        recorded = _prune(recorded, segs)
        replayed = _prune(replayed, segs)
    rows: list[DivergenceRow] = []
    for key in FIELDS:
        if key not in recorded and key not in replayed:
            continue
        a = recorded.get(key, _ABSENT)
        b = replayed.get(key, _ABSENT)
        loose = key == "state"
        if _equal(a, b, loose):
            continue
        # DeepDiff costs ~1 ms on a 9 KB state: run it only on a field already known to differ.
        try:
            found = _deep_rows({key: a}, {key: b}, loose) if a is not _ABSENT and b is not _ABSENT else []
        except Exception as exc:  # DeepDiff cannot walk some objects; the whole-field row still tells the truth
            warnings.warn(f"DeepDiff could not compare {key} ({type(exc).__name__}: {exc}); reporting the whole "
                          "field", ReplayWarning, stacklevel=2)
            found = []
        # DeepDiff is the renderer, not the judge: a difference _same found and DeepDiff does not see (a zero's
        # sign, int against float inside a container) gets its own row at its own path.
        if a is not _ABSENT and b is not _ABSENT:
            found = _explained(found, a, b, key, loose)
        rows.extend(found or [DivergenceRow((key,), "values_changed", a, b)])
    return rows


def render_rows(rows: Sequence[DivergenceRow], *, width: int = 100, limit: int = _MAX_ROWS_SHOWN) -> str:
    """Readable lines for divergence rows: ``~ path: recorded → replayed``, ``+`` only replayed, ``-`` only
    recorded; long text as a unified diff."""
    lines: list[str] = []
    for row in rows[:limit]:
        if row.path == ("exception",):
            lines.append(f"  ! exception: {_raised_text(row.recorded, 'recorded')}; {_raised_text(row.replayed, 'replay')}")
            continue
        if row.change == "type_changes":
            lines.append(f"  ~ {row.where}: {one_line(row.recorded, width // 2)} ({_type_name(row.recorded)}) → "
                         f"{one_line(row.replayed, width // 2)} ({_type_name(row.replayed)})")
            continue
        if row.replayed is _ABSENT and row.recorded is not _ABSENT and row.change == "values_changed":
            lines.append(f"  - {row.where} (was {one_line(row.recorded, width)})")
            continue
        new = None if row.replayed is _ABSENT else row.replayed
        old = None if row.recorded is _ABSENT else row.recorded
        for _kind, text in diff_lines([(list(row.path), row.change, new, old)], width=width):
            lines.append("  " + text)
    if len(rows) > limit:
        lines.append(f"  ... and {len(rows) - limit} more differences")
    return "\n".join(lines)


def _raised_text(exc: Any, who: str) -> str:
    if not isinstance(exc, Mapping):
        return f"the {who} did not raise"
    return f"the {who} raised {exc.get('type')}: {one_line(exc.get('message', ''), 80)}"


_type_name = type_name


# -- the replay -----------------------------------------------------------------------------------------------------

def _roundtrip(value: Any) -> Any:
    """``value`` as it would read back from an episode file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CodecWarning)  # the recording already warned about this type
        return unpackb(pack_record(packb, value))  # as the writer packs it: cycles, lone surrogates and all


def _exception_record(failure: Any) -> dict[str, str] | None:
    if failure is None or getattr(failure, "kind", None) != "exception":
        return None
    return {"type": str(failure.type or "exception"), "message": _mask(str(failure.message))}


def _raised(exc: BaseException) -> dict[str, str]:
    t = type(exc)
    name = f"{t.__module__}.{t.__qualname__}" if t.__module__ != "builtins" else t.__qualname__
    return {"type": name, "message": _mask(str(exc))}


def _recorded_failure(rec: Mapping[str, Any]) -> dict[str, str] | None:
    failure = rec.get("failure")
    if not isinstance(failure, Mapping) or failure.get("kind") != "exception":
        return None
    return {"type": str(failure.get("type") or "exception"), "message": _mask(str(failure.get("message", "")))}


def _vector_kind(rec: Mapping[str, Any]) -> str | None:
    """``"not_run"`` or ``"vector_error"``: the failure kind a VectorRecorder gives a sub-env's step that raised
    in another sub-env (it was not stepped; it was, but the vector env dropped its result); else None."""
    failure = rec.get("failure")
    kind = failure.get("kind") if isinstance(failure, Mapping) else None
    return kind if kind in ("not_run", "vector_error") else None


def replay_episode(
    path: str | os.PathLike[str],
    *,
    until: int | None = None,
    ignore: Iterable[str] = (),
    record: str | os.PathLike[str] | None = None,
    stop_at_first: bool = True,
    imports: Iterable[str] = (),
    allow_entry_points: Iterable[str] = (),
    env: Any = None,
    env_id: str | None = None,
    state_fn: Callable[[Any], Any] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> ReplayReport:
    """Re-run a recorded episode's actions in a rebuilt env and compare every step with the recording.

    Args:
        path: the episode file.
        until: stop after step ``until`` (inclusive).
        ignore: paths into the compared record to leave out, e.g. ``info.elapsed``, ``observation``,
            ``state.files['a.txt']``, ``info.checks.*.rationale``, ``exception.message``.
        record: a folder: record the replayed run there as a new episode whose provenance ``lineage`` points
            at this one.
        stop_at_first: stop at the first divergent step (else replay all steps and report each).
        imports: modules to import before rebuilding the env (those that register its id). trajrec's own
            ``trajrec/*`` ids register on ``import trajrec.envs``: do that first (the CLI command does).
        allow_entry_points: exact ``module:Name`` entry points named in the header that may be imported and
            called (an unregistered env's entry point, a wrapper outside ``gymnasium.wrappers`` and ``imports``).
            Without them replay runs no code a file names (see :func:`~trajrec.replay.rebuild.rebuild_env`).
        env: replay in this env instead of rebuilding one (it is closed at the end).
        env_id: rebuild this registered id instead of the recorded one.
        state_fn: ``state_fn(env) -> state`` when the recording used a custom one (default: the unwrapped env's
            ``state_dict()``).
        on_step: called with the number of steps replayed so far, after each step (progress bars).

    Returns:
        A :class:`ReplayReport`.

    Raises:
        ReplayError: the env cannot be rebuilt (see :func:`rebuild_env`).
        TrajrecUsageError: a bad argument (an ignore path that names no field, a negative ``until``).
        TrajrecFormatError: the file is not a readable episode.
    """
    from trajrec.recorder import Recorder, open_episode
    from trajrec.recorder.diff import apply_forward, copy_state

    if isinstance(ignore, str):
        ignore = [ignore]
    ignore = tuple(ignore)
    ignores = [parse_ignore(p) for p in ignore]
    if until is not None and (isinstance(until, bool) or not isinstance(until, int) or until < 0):
        raise TrajrecUsageError(f"until must be a step index >= 0, got {until!r}")
    if state_fn is not None and not callable(state_fn):
        raise TrajrecUsageError(f"state_fn must be callable, got {type(state_fn).__name__}")

    ep = open_episode(path)
    with ep:
        task = ep.task
        source = ep.path
        reset_rec = ep.reset
        n = len(ep)
        imported = (ep.provenance.get("lineage") or {}).get("imported_from") \
            if isinstance(ep.provenance.get("lineage"), dict) else None
        if env is None and imported:
            raise ReplayError(
                f"{source} was imported from a {imported.get('format')} file ({imported.get('path')}) by `trajrec "
                "import`: its actions ran in that tool's own environment, which trajrec cannot rebuild, so it cannot "
                "be re-executed; browse it with `trajrec view`, or pass env= to replay_episode to step an env you "
                "built yourself")
        # Wrappers recorded with kwargs null (unknown: not RecordConstructorArgs) are rebuilt with their defaults: a
        # divergence then names them (below), since that may be all it is.
        unknown_kwargs = [] if env is not None else [
            w for w in task.get("wrappers") or () if isinstance(w, Mapping) and "kwargs" in w and w["kwargs"] is None]
        if env is None:
            env_class = ep.provenance.get("env_package") or {}
            if not isinstance(env_class, dict):
                env_class = {}
            cls_name = f"{env_class.get('module')}.{env_class.get('class')}" if env_class.get("class") else None
            vec = ep.provenance.get("vector")
            vec_class = (vec.get("class") or "vector env") if isinstance(vec, dict) else None
            env = rebuild_env(task, imports=imports, env_id=env_id, source=source, env_class=cls_name,
                              allow_entry_points=allow_entry_points, vector=vec_class)
        else:
            import_modules(imports)
        spec = getattr(env, "spec", None)
        report = ReplayReport(recorded_path=source, episode_id=ep.episode_id,
                              env_id=spec.id if spec is not None else None, steps_recorded=n,
                              ignored=tuple(ignore), until=until)

        def warn(message: str) -> None:
            report.warnings.append(message)
            warnings.warn(message, ReplayWarning, stacklevel=3)

        seed, options = reset_rec.seed, reset_rec.options
        if seed is None:
            warn(f"{ep.episode_id} was reset with seed=None: the env's random generator was unseeded (or carried "
                 "over from an earlier episode), so the replay may diverge; record with env.reset(seed=...) to "
                 "make episodes replayable")
        read_state: Callable[[], Any] | None = None
        if ep.has_state:
            if state_fn is not None:
                read_state = lambda: state_fn(env)
            else:
                sd = getattr(env.unwrapped, "state_dict", None)
                if callable(sd):
                    read_state = sd
                else:
                    warn(f"the recording has a state but {type(env.unwrapped).__name__} has no state_dict() "
                         "(recorded with a custom state_fn?): state is not compared; pass state_fn= to compare it")
        report.compared = tuple(f for f in FIELDS if f != "state" or read_state is not None)

        stepper = env
        recorder = None
        if record is not None:
            lineage = {"replay_of": {"episode_id": ep.episode_id, "path": os.path.abspath(source),
                                     "run_id": ep.provenance.get("run_id")},
                       "generator": "trajrec replay"}
            keep_task = {k: v for k, v in task.items() if k not in _DERIVED_TASK_KEYS}
            try:
                recorder = stepper = Recorder(env, record, agent=ep.provenance.get("agent"), task=keep_task,
                                              provenance={"lineage": lineage}, state_fn=state_fn)
            except BaseException:
                env.close()
                raise

        def state_now() -> Any:
            assert read_state is not None
            try:
                return read_state()
            except Exception as exc:  # the divergence report shows it in place of the state
                return f"<state_dict() raised {type(exc).__name__}: {exc}>"

        def unknown_state(step: int | str, recorded: dict[str, Any]) -> bool:
            """The recording marked the state here unknown (``trajrec.StateNotRead``: its state_fn raised, or a
            vector env that raised or reset in the step could not be asked): nothing to compare it with, so it is
            taken out of ``recorded`` (the replay does not read its state here) and the step noted in the report."""
            if "state" not in recorded or state_not_read(recorded["state"]) is None:
                return False
            del recorded["state"]
            report.states_unknown.append(step)
            return True

        def check(step: int | str, recorded: dict[str, Any], replayed: dict[str, Any], action: Any = None) -> bool:
            """Compare; True when the replay must stop here."""
            rows = _compare(recorded, replayed, ignores)
            if not rows:
                if recorded["exception"] is not None and replayed["exception"] is not None:
                    report.exceptions_repeated.append(step)
                return False
            return diverge(step, rows, action)

        def diverge(step: int | str, rows: list[DivergenceRow], action: Any = None) -> bool:
            fields = tuple(dict.fromkeys(str(r.path[0]) for r in rows if r.path))
            rows = [DivergenceRow(r.path, r.change, copy_state(r.recorded), copy_state(r.replayed)) for r in rows]
            report.divergences.append(Divergence(step, fields, tuple(rows), action, render_rows(rows)))
            return stop_at_first

        try:
            # -- reset
            recorded: dict[str, Any] = {"exception": _exception_record(reset_rec.failure)}
            if recorded["exception"] is None:
                recorded.update(observation=reset_rec.observation, info=reset_rec.info)
                if read_state is not None:
                    recorded["state"] = reset_rec.state
            unread = unknown_state("reset", recorded)
            try:
                obs, info = stepper.reset(seed=seed, options=options)
            except Exception as exc:
                replayed: dict[str, Any] = {"exception": _raised(exc)}
            else:
                replayed = {"exception": None, "observation": obs, "info": info}
                if read_state is not None and not unread:
                    replayed["state"] = state_now()
                replayed = _roundtrip(replayed)
            stop = check("reset", recorded, replayed)
            if stop or recorded["exception"] is not None or replayed["exception"] is not None:
                return report  # nothing to step after a reset that raised

            # -- steps
            state = copy_state(reset_rec.state) if read_state is not None else None
            last = n - 1 if until is None else min(until, n - 1)
            for i in range(last + 1):
                rec = ep.record(i)
                action = rec.get("action")
                if recorder is not None and rec.get("note"):
                    recorder.note(**rec["note"])
                if read_state is not None:
                    if "snapshot" in rec:
                        state = copy_state(rec["snapshot"])
                    elif rec.get("diff"):
                        state = apply_forward(state, rec["diff"], copy_values=True)
                kind = _vector_kind(rec)
                if kind == "not_run":
                    # A vector env raised in another sub-env before it reached this one: this sub-env never took
                    # the action, so neither does the replay (its state, unchanged, is the next step's start).
                    report.steps_replayed = i + 1
                    if on_step is not None:
                        on_step(i + 1)
                    continue
                recorded = {"exception": _recorded_failure(rec)}
                if recorded["exception"] is None:
                    if kind != "vector_error":  # (its result was dropped by the vector env: only its state is known)
                        recorded.update(observation=rec.get("observation"), reward=rec.get("reward"),
                                        terminated=rec.get("terminated"), truncated=rec.get("truncated"),
                                        info=rec.get("info"))
                    if read_state is not None:
                        recorded["state"] = state  # diverge() copies what it keeps; the next diff mutates this
                unread = unknown_state(i, recorded)
                try:
                    obs, reward, terminated, truncated, info = stepper.step(action)
                except Exception as exc:
                    replayed = {"exception": _raised(exc)}
                else:
                    replayed = {"exception": None, "observation": obs, "reward": reward, "terminated": terminated,
                                "truncated": truncated, "info": info}
                    if kind == "vector_error":
                        replayed = {"exception": None}
                    if read_state is not None and not unread:
                        replayed["state"] = state_now()
                    replayed = _roundtrip(replayed)
                report.steps_replayed = i + 1
                if on_step is not None:
                    on_step(i + 1)
                if check(i, recorded, replayed, action):
                    break
        finally:
            stepper.close()
            if recorder is not None and recorder.episode_path is not None:
                report.new_episode_path = os.fspath(recorder.episode_path)
            if report.divergences and unknown_kwargs:  # here: the replay returns from inside the try
                names = ", ".join(f"{one_line(w.get('name'), 40)} ({one_line(w.get('entry_point'), 60)})"
                                  for w in unknown_kwargs)
                warn(f"the recording did not keep the constructor arguments of wrapper"
                     f"{'s' if len(unknown_kwargs) > 1 else ''} {names} (task.wrappers kwargs null: not a "
                     "gymnasium.utils.RecordConstructorArgs), so the replay rebuilt it with its defaults: the "
                     "divergence may be only that. Replay in Python with replay_episode(path, env=<the env wrapped "
                     "as recorded>), or make the wrapper record its arguments")
    return report


def _compare(recorded: dict[str, Any], replayed: dict[str, Any],
             ignores: Sequence[tuple[_Seg, ...]]) -> list[DivergenceRow]:
    # When only one side raised, its other fields are meaningless: the exception is the whole story.
    if (recorded["exception"] is None) != (replayed["exception"] is None):
        recorded = {"exception": recorded["exception"]}
        replayed = {"exception": replayed["exception"]}
    return compare_records(recorded, replayed, ignores)


__all__ = [
    "FIELDS",
    "Divergence",
    "DivergenceRow",
    "ReplayError",
    "ReplayReport",
    "ReplayWarning",
    "compare_records",
    "import_modules",
    "parse_ignore",
    "rebuild_env",
    "render_rows",
    "replay_episode",
]
