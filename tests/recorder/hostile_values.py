"""A generator of hostile values and callables for the recorder: each case is a value that a real env or agent
can hand the Recorder, tagged with what must come back from the file.

``exact``: the value must read back identical (type, dtype, mask, field names, bits); ``marked``: something in
it cannot be stored as is, and the read value must hold an :class:`~trajrec.recorder.Unencodable` marker in its
place while every other part is kept.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import fractions
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from trajrec.recorder import Unencodable, UnknownExt


@dataclass
class Case:
    name: str
    make: Callable[[], Any]  # a fresh value each call (cases are mutated by nobody, but cycles need fresh objects)
    expect: str  # "exact" or "marked"


class RaisingRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")


class SlowRepr:
    def __repr__(self) -> str:
        time.sleep(3)
        return "slow"


class HugeRepr:
    def __repr__(self) -> str:
        return "x" * 2_000_000


class NonStrRepr:
    def __repr__(self):  # type: ignore[no-untyped-def]
        return 42


class SurrogateRepr:
    def __repr__(self) -> str:
        return "bad \udcff repr"


class RaisingEverything:
    def __eq__(self, other: object) -> bool:
        raise RuntimeError("eq exploded")

    def __bool__(self) -> bool:
        raise RuntimeError("bool exploded")

    def __len__(self) -> int:
        raise RuntimeError("len exploded")

    def __iter__(self):  # type: ignore[no-untyped-def]
        raise RuntimeError("iter exploded")

    def __hash__(self) -> int:
        return 1

    def __deepcopy__(self, memo: Any) -> Any:
        raise RuntimeError("deepcopy exploded")

    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")


class BadDict(dict):
    def items(self):  # type: ignore[override]
        raise RuntimeError("items exploded")

    def __iter__(self):  # type: ignore[override]
        raise RuntimeError("iter exploded")


class BadList(list):
    def __iter__(self):  # type: ignore[override]
        raise RuntimeError("iter exploded")


class StrWithSurrogate(str):
    pass


class Color(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    HIGH = 3


@dataclass
class Box:
    items: list[Any]


Pair = collections.namedtuple("Pair", "a b")


def _cycle_dict() -> Any:
    d: dict[str, Any] = {"name": "loop"}
    d["self"] = d
    return d


def _cycle_list() -> Any:
    a: list[Any] = [1]
    a.append(a)
    return a


def _cycle_through_tuple() -> Any:
    a: list[Any] = []
    t = (a, "x")
    a.append(t)
    return {"t": t}


def _deep(n: int) -> Any:
    v: Any = "leaf"
    for _ in range(n):
        v = [v]
    return v


def _deep_dict(n: int) -> Any:
    v: Any = 0
    for _ in range(n):
        v = {"k": v}
    return v


def _struct() -> np.ndarray:
    dt = np.dtype([("id", "<i4"), ("pos", "<f8", (3,)), ("meta", [("name", "<U8"), ("ok", "?")])])
    a = np.zeros(4, dtype=dt)
    a["id"] = [1, 2, 3, 4]
    a["pos"][1] = [1.5, -2.0, np.nan]
    a["meta"]["name"] = ["a", "bb", "ccc", "\u00e9"]
    return a


def _object_array_with_cycle() -> np.ndarray:
    a = np.empty(2, dtype=object)
    a[0] = "ok"
    a[1] = a
    return a


def _object_array_lists() -> np.ndarray:
    a = np.empty(3, dtype=object)
    a[0], a[1], a[2] = [1, 2], [3, 4], None
    return a


def _matrix() -> np.matrix:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # numpy discourages matrices; envs still use them
        return np.matrix([[1, 2], [3, 4]])


def values() -> list[Case]:
    """The hostile values (each position of a record gets each of them)."""
    ex, mk = "exact", "marked"
    return [
        # text
        Case("lone-surrogate", lambda: "tool said \udcff\udcfe", ex),
        Case("half-emoji", lambda: "\ud83d alone", ex),
        Case("surrogate-key", lambda: {"\udcffkey": 1, "plain": 2}, ex),
        Case("surrogate-in-list", lambda: ["ok", "bad \udc80", "ok"], ex),
        Case("str-subclass-surrogate", lambda: StrWithSurrogate("sub \udcff"), ex),
        Case("nul-and-controls", lambda: "a\x00b\x1b[31mred\x07", ex),
        Case("long-text", lambda: "y" * 200_000, ex),
        # numbers
        Case("int-2**64", lambda: 2**64, ex),
        Case("int-neg-big", lambda: -(2**63) - 1, ex),
        Case("int-huge", lambda: 7**20000, ex),
        Case("nan-inf", lambda: [float("nan"), float("inf"), -0.0], ex),
        Case("complex", lambda: [1 + 2j, complex(-0.0, float("nan")), complex(float("inf"), -1)], ex),
        Case("decimal", lambda: decimal.Decimal("1.10"), mk),
        Case("fraction", lambda: fractions.Fraction(1, 3), mk),
        Case("bool-and-none", lambda: [True, False, None], ex),
        # containers
        Case("cycle-dict", _cycle_dict, mk),
        Case("cycle-list", _cycle_list, mk),
        Case("cycle-through-tuple", _cycle_through_tuple, mk),
        Case("deep-list-5000", lambda: _deep(5000), mk),
        Case("deep-dict-3000", lambda: _deep_dict(3000), mk),
        Case("deep-list-200", lambda: _deep(200), ex),
        Case("deep-dict-200", lambda: _deep_dict(200), ex),
        Case("non-str-keys", lambda: {None: 1, 1: 2, (1, 2): 3, 2.5: 4}, ex),
        Case("set-and-frozenset", lambda: [{1, 2}, frozenset({"a"})], ex),
        Case("tuple-nested", lambda: (1, (2, [3]), ()), ex),
        Case("bytes", lambda: b"\x00\xff" * 10, ex),
        Case("bytearray", lambda: bytearray(b"ab"), ex),
        Case("memoryview", lambda: memoryview(b"mv"), ex),
        Case("empty-things", lambda: [[], {}, (), "", b""], ex),
        Case("bad-dict-subclass", lambda: BadDict(a=1), ex),  # stored as the plain dict it holds
        Case("bad-list-subclass", lambda: BadList([1, 2]), mk),
        Case("ordered-dict", lambda: collections.OrderedDict(b=1, a=2), ex),
        Case("namedtuple", lambda: Pair(1, "two"), ex),
        Case("enum", lambda: Color.RED, mk),
        Case("int-enum", lambda: Level.HIGH, ex),
        # objects
        Case("raising-repr", RaisingRepr, mk),
        Case("slow-repr", SlowRepr, mk),
        Case("huge-repr", HugeRepr, mk),
        Case("non-str-repr", NonStrRepr, mk),
        Case("surrogate-repr", SurrogateRepr, mk),
        Case("raising-everything", RaisingEverything, mk),
        Case("dataclass", lambda: Box([1, 2]), mk),
        Case("datetime", lambda: datetime.datetime(2024, 1, 2, 3, 4, 5), mk),
        Case("lock", threading.Lock, mk),
        Case("function", lambda: (lambda x: x), mk),
        Case("generator", lambda: (i for i in range(3)), mk),
        Case("exception", lambda: ValueError("as a value"), mk),
        Case("class-object", lambda: RaisingRepr, mk),
        Case("module", lambda: np, mk),
        Case("unencodable-passthrough", lambda: Unencodable("x.Y", "<y>"), ex),
        Case("unknown-ext-passthrough", lambda: UnknownExt(99, b"raw"), ex),
        # numpy
        Case("np-structured", _struct, ex),
        Case("np-structured-scalar", lambda: _struct()[1], ex),
        Case("np-masked", lambda: np.ma.masked_array([1.0, 2.0, 3.0], mask=[0, 1, 0], fill_value=-9.0), ex),
        Case("np-masked-nomask", lambda: np.ma.masked_array([1, 2]), ex),
        Case("np-matrix", _matrix, ex),
        Case("np-recarray", lambda: _struct().view(np.recarray), ex),
        Case("np-datetime64", lambda: np.array(["2024-01-01T00:00", "NaT"], dtype="datetime64[m]"), ex),
        Case("np-timedelta64", lambda: np.array([1, -5], dtype="timedelta64[ms]"), ex),
        Case("np-datetime-scalar", lambda: np.datetime64("2024-02-29"), ex),
        Case("np-complex", lambda: np.array([1 + 2j, np.nan * 1j], dtype=np.complex64), ex),
        Case("np-object-lists", _object_array_lists, ex),
        Case("np-object-cycle", _object_array_with_cycle, mk),
        Case("np-structured-object-field", lambda: np.zeros(2, dtype=[("o", object), ("x", "<i4")]), mk),
        Case("np-big-endian", lambda: np.arange(4, dtype=">i8"), ex),
        Case("np-fortran-slice", lambda: np.asfortranarray(np.arange(12.0).reshape(3, 4))[:, ::2], ex),
        Case("np-zero-d", lambda: np.array(5), ex),
        Case("np-empty", lambda: np.zeros((0, 3), dtype=np.float16), ex),
        Case("np-unicode", lambda: np.array(["a", "\u00e9\u00e9"]), ex),
        Case("np-bool-scalar", lambda: np.bool_(True), ex),
        Case("np-float-scalar", lambda: np.float32(1.5), ex),
    ]


# Where a value can sit in what the env, the agent or the caller hands the Recorder.
POSITIONS = ["observation", "info", "info.error", "reward", "terminated", "truncated", "action", "state",
             "note", "check.rationale", "check.value", "task.text", "provenance", "reset.info"]


def cases() -> Iterator[tuple[str, Case]]:
    for case in values():
        for pos in POSITIONS:
            yield pos, case


def contains_marker(value: Any) -> bool:
    """True when an :class:`Unencodable` sits anywhere in ``value`` (iterative: values may nest deeply)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, Unencodable):
            return True
        if isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, (list, tuple, set, frozenset)):
            stack.extend(v)
        elif isinstance(v, np.ndarray) and v.dtype.hasobject:
            stack.extend(v.ravel().tolist())
    return False


def _norm_type(t: type) -> type:
    for base in (bool, dict, list, tuple, str, bytes, int, float, complex):
        if issubclass(t, base):
            return base
    return t


def same(a: Any, b: Any, depth: int = 0) -> bool:
    """Exact equality as the codec promises it: containers by content, subclasses as their stored base type
    (OrderedDict as dict, IntEnum as int, bytearray and memoryview as bytes), numpy arrays by type, dtype
    (field names included), shape, bits and mask."""
    if isinstance(a, (bytearray, memoryview)):
        a = bytes(a)
    if isinstance(a, np.bool_):
        a = bool(a)  # documented: numpy bools are stored as plain bools
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if type(a) is not type(b) or a.dtype != b.dtype or a.shape != b.shape:
            return False
        if isinstance(a, np.ma.MaskedArray):
            if not np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b)):
                return False
            a, b = np.asarray(a.data), np.asarray(b.data)
        if a.dtype.hasobject:
            return all(same(x, y, depth + 1) for x, y in zip(a.ravel().tolist(), b.ravel().tolist()))
        return np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()
    if isinstance(a, np.generic) or isinstance(b, np.generic):
        return type(a) is type(b) and a.dtype == b.dtype and a.tobytes() == b.tobytes()
    if _norm_type(type(a)) is not _norm_type(type(b)):
        return False
    if isinstance(a, dict):
        return len(a) == len(b) and all(k in b and same(v, b[k], depth + 1) for k, v in dict.items(a))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y, depth + 1) for x, y in zip(list.__iter__(a) if isinstance(a, list)
                                                                               else a, b))
    if isinstance(a, complex):  # part by part: NaN parts and -0.0 count
        return same(a.real, b.real, depth + 1) and same(a.imag, b.imag, depth + 1)
    if isinstance(a, float) and a != a:
        return b != b
    if isinstance(a, float):
        return a == b and str(a) == str(b)  # -0.0 stays -0.0
    return bool(a == b)


def hostile_callables() -> list[tuple[str, dict[str, Any]]]:
    """Recorder keyword arguments whose callables raise or return odd things."""

    def boom(*_a: Any) -> Any:
        raise RuntimeError("callable exploded")

    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

    return [
        ("state_fn-raises", {"state_fn": boom}),
        ("state_fn-cycle", {"state_fn": lambda env: _cycle_dict()}),
        ("state_fn-raising-everything", {"state_fn": lambda env: {"o": RaisingEverything()}}),
        ("failure_fn-raises", {"failure_fn": boom}),
        ("failure_fn-array", {"failure_fn": lambda step: np.array([1, 2])}),
        ("failure_fn-bad-dict", {"failure_fn": lambda step: {RaisingRepr(): RaisingEverything()}}),
        ("action_key-raises", {"action_key": boom}),
        ("action_key-unhashable", {"action_key": lambda a: Unhashable()}),
        ("action_key-raising-hash", {"action_key": lambda a: RaisingEverything()}),
    ]


__all__ = ["Case", "POSITIONS", "cases", "contains_marker", "dataclasses", "hostile_callables", "same", "values"]
