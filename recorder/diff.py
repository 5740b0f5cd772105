"""Structural state diffs as flat change rows.

A diff is a list of rows ``[path, action, value, old_value]``: the same shape as DeepDiff's flat rows, with
DeepDiff's action names, so one diff applies forwards (old state to new) and backwards (new to old).
``path`` is the list of keys and list indices from the root.

The recorder diffs plain data (dicts, lists, tuples, scalars, str, bytes, numpy arrays) itself: on a ~9 KB
nested state this costs a few % of a DeepDiff. The rows are exact: applied to the previous state they give the new
state as the codec stores it, with the same types (``1``, ``1.0``, ``True`` and ``np.int64(1)`` differ), float bits
(``0.0`` and ``-0.0`` differ, also inside float arrays; a NaN's payload is not kept), dict key order and key types,
set element types, numpy dtypes and object array elements. Values the codec stores as another type compare as that
type (an ``OrderedDict`` as the ``dict``, a NamedTuple as the tuple, ``bytearray`` as ``bytes``, two values of one
``float`` or ``str`` subclass as their base values); objects the codec stores as a marked fallback (type and repr)
compare with their own ``==`` and, where the repr is written in C, by that repr too; a dataclass's fields compare
as stored values.

Unchanged containers are skipped by Python's own (C) equality, which is fast but loose (``[1] == [True]``,
``{"a": 1, "b": 2} == {"b": 2, "a": 1}``, ``np.int32(1) == (1,)`` is a truthy array), so wherever it says equal,
:func:`_same_all` checks the pairs exactly, level by level and all at once with C loops (:func:`gc.get_referents`
lists a container's items or a text-keyed dict's values in one call). A change in key order or in a key's type is
written with existing rows: the keys from the first one that differs are removed and added again in the new order.
A dict of 8 keys or more whose children are text, nil or containers finds its changed children with C loops
(``map(operator.ne, ...)``, :func:`_changed_keys`) and visits only those, the others being checked together. Such a
child dict is scanned once, not compared whole first, and the :class:`StateTracker` remembers which of its own
dicts passed the scan's checks (:class:`_Known`). Lists find their common head and tail and a queue's shift by
identity and ``all(map(...))`` C loops. ``tests/recorder/diff_reference.py`` keeps the walk before issue 15's
speed-up; a property test holds the rows to it where that walk was exact, and ``test_state_exact.py`` fuzzes a real
Recorder with the swaps it missed. DeepDiff stays for rendering diffs to people and for replay divergence reports.

>>> old = {"files": {"a.txt": "hi"}, "cwd": "/"}
>>> new = {"files": {"a.txt": "hello", "b.txt": ""}, "cwd": "/"}
>>> rows = diff_rows(old, new)
>>> rows
[[['files', 'a.txt'], 'values_changed', 'hello', 'hi'], [['files', 'b.txt'], 'dictionary_item_added', '', None]]
>>> apply_forward(copy_state(old), rows) == new
True
>>> apply_backward(copy_state(new), rows) == old
True
"""

from __future__ import annotations

import copy
import gc
import os
from collections import OrderedDict
from enum import Enum
from itertools import accumulate, chain, compress, repeat
from math import copysign
from numbers import Number
from operator import is_, is_not, ne, not_
from types import FunctionType
from typing import Any, Iterable

import numpy as np

from .codec import Unencodable, UnknownExt, bounded_repr, fallback_payload, warn_tuple_subclass

#: The C first pass (``recorder/_cdiff.c``): finds the few places where the env's state may differ from the
#: tracker's copy, so that the walk below visits only those. None where the extension was not built (no C compiler
#: at install) or ``TRAJREC_PURE_PYTHON=1`` is set: the tracker then walks every item itself, with the same rows.
_accel: Any = None
if not os.environ.get("TRAJREC_PURE_PYTHON"):
    try:
        from . import _cdiff as _accel
    except ImportError:  # pragma: no cover  (installed without a C compiler)
        _accel = None

VALUES_CHANGED = "values_changed"
TYPE_CHANGES = "type_changes"
DICT_ADDED = "dictionary_item_added"
DICT_REMOVED = "dictionary_item_removed"
ITEM_ADDED = "iterable_item_added"
ITEM_REMOVED = "iterable_item_removed"

ACTIONS = (VALUES_CHANGED, TYPE_CHANGES, DICT_ADDED, DICT_REMOVED, ITEM_ADDED, ITEM_REMOVED)
#: The row kinds the C pass makes rows of itself (``_cdiff.scan``'s ``kinds``).
_SCAN_KINDS = (VALUES_CHANGED, ITEM_REMOVED, ITEM_ADDED)

# Types compared by value in the inner loop without a recursive call.
_SCALARS = frozenset({str, int, float, bool, bytes, type(None)})


# Leaves that cannot change in place: shared between the env's state and the recorder's copy.
_IMMUTABLE = frozenset({str, int, float, bool, bytes, complex, type(None), range})


def copy_state(obj: Any) -> Any:
    """Copy a state by value: every container and mutable object is copied, immutable leaves are shared.

    The env may hand back its live state object and change it in place later; the recorder keeps this copy
    so that what was recorded cannot change. Plain containers are copied here (dict, list and tuple
    subclasses become their plain base type, which is how the codec stores them); sets, frozensets,
    bytearrays, numpy arrays and scalars are copied by value; other objects (dataclasses, ...) go through
    ``copy.deepcopy``. An object that cannot be deep-copied is kept as an
    :class:`~trajrec.recorder.codec.Unencodable` holding its (bounded) repr: never as a live reference.
    """
    t = type(obj)
    if t in _IMMUTABLE:
        return obj
    if t is dict:
        return {k: copy_state(v) for k, v in obj.items()}
    if t is list:
        return [copy_state(v) for v in obj]
    if t is tuple:
        return tuple([copy_state(v) for v in obj])
    if t is np.ndarray:
        return obj.copy() if not obj.dtype.hasobject else _copy_object_array(obj)
    return _copy_other(obj)


def _copy_object_array(obj: Any) -> Any:
    """A numpy array holding Python objects, its elements copied by value too: ``ndarray.copy`` shares them (a
    list or dict inside, changed in place, would change the copy as well, and the change would go unrecorded).
    A subclass keeps its own parts (a masked array's mask: the elements are set through a plain view)."""
    out = obj.copy()
    data, src = out.view(np.ndarray), obj.view(np.ndarray)
    names = obj.dtype.names
    if names is None:
        if data.ndim == 1:
            for i, v in enumerate(src.tolist()):
                data[i] = copy_state(v)
        else:
            for idx in np.ndindex(data.shape):
                data[idx] = copy_state(src[idx])
        return out
    for name in names:  # a structured dtype with object fields
        if obj.dtype[name].hasobject:
            field, field_src = data[name], src[name]
            for idx in np.ndindex(field.shape):
                field[idx] = copy_state(field_src[idx])
    return out


def _base_items(obj: dict[Any, Any]) -> Any:
    """A dict subclass's items in the order the codec stores it (``dict(obj)``): an ``OrderedDict``'s own order
    (``move_to_end`` changes it, not the order of the dict beneath), any other subclass's dict order (its
    overridden ``items()`` not asked)."""
    if isinstance(obj, OrderedDict):
        return OrderedDict.items(obj)
    return dict.items(obj)


def _copy_other(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: copy_state(v) for k, v in _base_items(obj)}
    if isinstance(obj, list):
        return [copy_state(v) for v in obj]
    if isinstance(obj, tuple):
        warn_tuple_subclass(obj)  # a NamedTuple in the state: stored as the plain tuple made here
        return tuple([copy_state(v) for v in obj])
    if isinstance(obj, np.ndarray):
        # subclasses (masked arrays, matrices) copy their own extra parts
        return obj.copy() if not obj.dtype.hasobject else _copy_object_array(obj)
    if isinstance(obj, np.generic):
        # A structured scalar (np.void) taken from an array is a view into that array's memory.
        return obj.copy() if isinstance(obj, np.void) else obj
    if isinstance(obj, set):
        return {copy_state(v) for v in obj}
    if isinstance(obj, frozenset):
        return frozenset([copy_state(v) for v in obj])
    if isinstance(obj, bytearray):
        return bytearray(obj)
    if isinstance(obj, memoryview):
        return bytes(obj)  # a view into someone's live buffer; the codec stores its bytes
    if isinstance(obj, (str, int, float, bytes, complex, Unencodable, UnknownExt)):
        return obj  # immutable subclasses (IntEnum, str enums, ...) and values read back from a file
    if isinstance(obj, Enum):
        if type(obj.value) in _IMMUTABLE:
            return obj
        # A member whose value is mutable (a dict) is one object whose repr changes in place: kept as stored
        # (its type and repr), never as the live member.
        return Unencodable(*fallback_payload(obj))
    try:
        copied = copy.deepcopy(obj)
    except Exception:  # noqa: BLE001  (any user __deepcopy__/__reduce__ may raise; a marked copy is safe)
        return Unencodable(*fallback_payload(obj))
    # A __deepcopy__ written in Python that returns the object itself (a handle, a singleton) gives no copy: kept
    # as stored. (Functions, classes and immutable builtins such as Decimal are their own copies, rightly.)
    if copied is obj and isinstance(getattr(type(obj), "__deepcopy__", None), FunctionType) \
            and not isinstance(obj, Number):  # (a Fraction's __deepcopy__ returns itself: immutable)
        return Unencodable(*fallback_payload(obj))
    return copied


_NORM: dict[type, type] = {}


def _norm(t: type) -> type:
    """The type a value of type ``t`` is stored as (subclasses of the plain types collapse to their base)."""
    try:
        return _NORM[t]
    except KeyError:
        pass
    r = t
    for base in (bool, dict, list, tuple, str, bytes, int, float, set, frozenset):
        if issubclass(t, base):
            r = base
            break
    if len(_NORM) < 4096:
        _NORM[t] = r
    return r


def _same_float(a: float, b: float) -> bool:
    """Two floats are the same value as stored: equal with the same sign (``0.0`` is not ``-0.0``), or both NaN
    (a NaN's payload bits need not be kept)."""
    if a == b:
        return a != 0.0 or copysign(1.0, a) == copysign(1.0, b)
    return a != a and b != b


def _same_array(a: Any, b: Any) -> bool:
    """Exact comparison of two numpy arrays of any kind (subclass, mask, structured and object dtypes): same type,
    shape and dtype, float bits (a zero's sign; NaN payloads aside), object elements by :func:`_same`."""
    if type(a) is not type(b) or a.shape != b.shape or a.dtype != b.dtype:
        return False
    try:
        if isinstance(a, np.ma.MaskedArray):
            if not np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b)):
                return False
            if np.asarray(a.fill_value).tobytes() != np.asarray(b.fill_value).tobytes():
                return False
        if a.dtype.hasobject:
            # np.array_equal calls == on the elements (1 == True); the elements are compared as stored instead
            return _same_all(np.asarray(a).ravel().tolist(), np.asarray(b).ravel().tolist())
        if type(a) is np.ndarray and a.dtype.names is None and a.dtype.kind in "fc":
            if not np.array_equal(a, b, equal_nan=True):
                return False
            if a.dtype.kind == "c":
                return bool(np.array_equal(np.signbit(a.real), np.signbit(b.real))
                            and np.array_equal(np.signbit(a.imag), np.signbit(b.imag)))
            return bool(np.array_equal(np.signbit(a), np.signbit(b)))  # 0.0 == -0.0: the signs must match too
        # Byte equality: exact for integer, text, date and structured dtypes.
        return bool(np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes())
    except Exception:  # noqa: BLE001  (an element's __eq__ raised: report a change, which is never wrong)
        return False


def _plain_set(x: Any) -> Any:
    """A set or frozenset subclass as the plain one the codec stores (its own ``==`` and ``__iter__`` not asked)."""
    t = type(x)
    if t is set or t is frozenset:
        return x
    return frozenset(set.__iter__(x) if isinstance(x, set) else frozenset.__iter__(x))


def _same_set(a: Any, b: Any) -> bool:
    """Two sets (or frozensets) hold the same elements as stored: ``{1} == {1.0}``, yet 1.0 is stored as a float."""
    try:
        a, b = _plain_set(a), _plain_set(b)
        if len(a) != len(b) or a != b:
            return False
    except Exception:  # noqa: BLE001
        return False
    kinds = set(map(type, a))
    if len(kinds) == 1 and kinds <= _EXACT_EQ and kinds == set(map(type, b)):
        return True  # one kind of text, bytes, ints or bools: equal elements are the same
    # b's own element for each of a's (a dict finds the equal one), compared as stored
    mine = {x: x for x in b}
    try:
        return all(_same(x, mine[x]) for x in a)
    except (KeyError, TypeError):  # a NaN object that only equals itself
        return False


def _same_npscalar(a: Any, b: Any) -> bool:
    if a.dtype != b.dtype:
        return False
    if a.tobytes() == b.tobytes():
        return True
    return a.dtype.kind in "fc" and bool(a != a) and bool(b != b)


#: Types whose values, for two objects of the same one of these types, are the same as stored exactly when ``==``.
_EXACT_EQ = frozenset({str, int, bool, bytes, type(None)})
#: Subclasses stored as their base type (``docs/FORMAT.md``): compared under the base type's own equality.
_BASE_EQ = {str: str.__eq__, int: int.__eq__, bytes: bytes.__eq__}


def _same_leaf(a: Any, b: Any) -> bool:
    """``a`` and ``b`` (not dicts or lists, see :func:`_walk`) are the same value as stored.

    Exact where ``==`` is not: types (``1``, ``1.0``, ``True``, ``np.int64(1)``), a float's sign, tuple and set
    elements' types, array bits and object elements. Subclasses the codec stores as their base type (a str enum, a
    NamedTuple) compare as that base value, also two values of one such subclass. Objects of other types are
    stored as a marked fallback, their type and repr (``docs/FORMAT.md``): a dataclass compares field by field as
    stored values; other objects with their own ``==`` and, unless their repr is written in Python (bounded, in a
    thread of its own: not taken at every step), by their repr too.
    """
    if a is b:
        return True
    ta, tb = type(a), type(b)
    if ta is not tb:
        base = _norm(ta)
        if base is not _norm(tb) or isinstance(a, (np.generic, np.ndarray)) or isinstance(b, (np.generic, np.ndarray)):
            return False
        if base is float:
            return _same_float(float(a), float(b))
        if base in _BASE_EQ:
            return _BASE_EQ[base](a, b) is True
        if base is tuple:
            return len(a) == len(b) and _same_all(list(a), list(b))
        if base is set or base is frozenset:
            return _same_set(a, b)
        return False  # dict and list subclasses: the walk goes inside
    if ta is float:
        return _same_float(a, b)
    if ta in _EXACT_EQ:
        return a == b
    if ta is tuple or ta is list or ta is dict:
        return _same(a, b)
    base = _stored_type(ta)
    if base is not None and base is not ta and base in _LEAF_BASES:
        # Two values of one subclass the codec stores as its base value (a float or str subclass, an IntEnum):
        # compared as those base values, not by the subclass's own == (which may call 0.0 and -0.0, or two
        # spellings of a name, the same).
        return _LEAF_BASES[base](a, b)
    if isinstance(a, np.ndarray):
        return _same_array(a, b)
    if isinstance(a, np.generic):
        return _same_npscalar(a, b)
    if ta is complex:
        return _same_float(a.real, b.real) and _same_float(a.imag, b.imag)
    if isinstance(a, (set, frozenset)):
        return _same_set(a, b)
    fields = getattr(ta, "__dataclass_fields__", None)
    if type(fields) is dict and not isinstance(a, type):
        # A dataclass is stored as its type and repr: fields that compare equal but print otherwise (1 and 1.0,
        # 0.0 and -0.0) change what is stored, so its fields are compared as stored values, not with its ==.
        try:
            names = list(fields)
            return _same_all([getattr(a, n) for n in names], [getattr(b, n) for n in names])
        except Exception:  # noqa: BLE001  (a field that cannot be read: treated as changed, never wrong)
            return False
    try:
        eq = a == b
    except Exception:  # an object whose __eq__ raises is treated as changed: safe, never wrong
        return False
    if type(eq) is not bool or not eq:
        return False
    if isinstance(getattr(ta, "__repr__", None), FunctionType):
        return True  # (a repr written in Python runs in a thread of its own, bounded: not taken at every step)
    # Stored as a marked fallback, its type and repr: what == calls equal may print otherwise (a deque whose 1
    # became 1.0).
    try:
        return bounded_repr(a) == bounded_repr(b)
    except Exception:  # noqa: BLE001
        return False


#: How two values of one subclass of these base types compare as stored (see :func:`_same_leaf`).
_LEAF_BASES: dict[type, Any] = {
    float: lambda a, b: _same_float(float(a), float(b)),
    str: lambda a, b: str.__eq__(a, b) is True,
    int: lambda a, b: int.__eq__(a, b) is True,
    bytes: lambda a, b: bytes.__eq__(_bytes(a), _bytes(b)) is True,
}


def _as_stored(olds: list[Any], news: list[Any], types: list[type], types_new: list[type],
               ) -> tuple[list[Any], list[Any], list[type]] | None:
    """The pairs with values of a subclass the codec stores as its base type (an OrderedDict, a NamedTuple, a
    str enum) turned into that base value, so that they compare with the plain values of the tracker's copy;
    None when a pair's types differ otherwise (``1`` and ``1.0``, ``np.float64`` and ``float``)."""
    olds, news = list(olds), list(news)
    for i, (ta, tb) in enumerate(zip(types, types_new)):
        if ta is tb:
            continue
        base = _stored_type(ta)
        if base is None or base is not _stored_type(tb):
            return None
        as_base = _STORED_AS[base]
        olds[i] = as_base(olds[i])
        news[i] = as_base(news[i])
        types[i] = base
    return olds, news, types


def _stored_type(t: type) -> type | None:
    """The type the codec stores a value of type ``t`` as, for the types it stores as another (None: as itself
    or as something this module does not compare across types)."""
    if t is bytearray or t is memoryview or t is np.bytes_:
        return bytes
    if t is np.str_:
        return str
    if issubclass(t, np.generic):
        return None  # np.float64 is a float subclass, yet it is stored as a numpy scalar
    base = _norm(t)
    return base if base in _STORED_AS else None


def _bytes(v: Any) -> bytes:
    return v.tobytes() if isinstance(v, memoryview) else bytes(v)


#: How the codec stores a value of these types' subclasses (``codec.make_default``).
_STORED_AS: dict[type, Any] = {str: str.__str__, int: int, float: float, dict: dict, list: list, tuple: tuple,
                               set: set, frozenset: frozenset, bytes: _bytes}


def _same(a: Any, b: Any, equal: bool = False) -> bool:
    """``a`` and ``b`` are the same value as the codec stores it, at any depth (see :func:`_same_all`)."""
    if a is b:
        return True
    t = type(a)
    if t is not type(b):
        return _same_all([a], [b], equal)
    # Most unchanged containers of an env that changes its state in place share every leaf with the copy.
    if t is dict:
        if len(a) != len(b):
            return False
        if all(map(is_, a.values(), b.values())) and all(map(is_, a, b)):
            return True
    elif t is list or t is tuple:
        if len(a) != len(b):
            return False
        if all(map(is_, a, b)):
            return True
    else:
        return _same_leaf(a, b)
    return _same_all([a], [b], equal)


_CONTAINERS = frozenset({dict, list, tuple})
_referents = gc.get_referents
_flat = chain.from_iterable
#: Levels :func:`_same_all` goes down before it gives up (says "not the same": the walk then goes inside itself).
_MAX_LEVELS = 200


def _same_all(olds: list[Any], news: list[Any], equal: bool = False, typed: bool = False) -> bool:
    """Every pair ``olds[i]``, ``news[i]`` is the same value as stored: same types at every depth, same float
    bits (a zero's sign; NaN payloads aside), same dict key order and key types, same set element types.

    This is the check behind every place the walk skips a container that ``==`` (C, fast, but loose: ``[1] ==
    [1.0]``, ``{"a": 1, "b": 2} == {"b": 2, "a": 1}``, ``np.int32(1) == (1,)`` is a truthy array) called equal.
    It goes down level by level over all pairs at once, with C loops (``map``/``compress``) for each level, so
    its cost is a few C passes over the values rather than a Python call per container: pairs that are the same
    object (leaves the tracker's copy shares with the env's state) drop out first; the rest must have the same
    exact types; text, ints, bools, bytes and nil are then compared by ``==`` in one list comparison, floats also
    by sign when zero, dicts by key order and lists and tuples by length before their items form the next
    level; other values (arrays, numpy scalars, sets, objects) go through :func:`_same_leaf`.

    ``equal``: the caller knows each pair compares equal with ``==`` (so do their children, key by key), which
    spares the length checks and the comparisons of text, ints and other values whose ``==`` is exact. ``typed``:
    the caller knows that each pair has one exact type (the first level's type check is spared).
    """
    for _level in range(_MAX_LEVELS):
        if all(map(is_, olds, news)):  # (stops at the first pair that is not one object)
            return True
        keep = list(map(is_not, olds, news))
        if not all(keep):
            olds = list(compress(olds, keep))
            news = list(compress(news, keep))
        types = list(map(type, olds))
        types_new = types if typed else list(map(type, news))
        typed = False
        if types != types_new:
            pairs = _as_stored(olds, news, types, types_new)
            if pairs is None:
                return False
            olds, news, types = pairs
            # The == the caller saw was a subclass's own (it is asked first), which may hold for other base
            # values (a str subclass equal to anything): from here on the values are compared as stored.
            equal = False
        kinds = set(types)
        next_old: list[Any] = []
        next_new: list[Any] = []
        for t in kinds:
            if len(kinds) == 1:
                a, b = olds, news
            else:
                pick = list(map(is_, types, repeat(t)))
                a = list(compress(olds, pick))
                b = list(compress(news, pick))
            if t in _EXACT_EQ:
                if not equal and a != b:
                    return False
            elif t is dict:
                if not equal and list(map(len, a)) != list(map(len, b)):
                    return False
                # A dict whose keys are all text (exactly str) gives just its values, in order, to one C call;
                # other dicts give keys too.
                n_a, n_b = sum(map(len, a)), sum(map(len, b))
                values_a = _referents(*a)
                values_b = _referents(*b)
                if len(values_a) == n_a and len(values_b) == n_b:
                    # text keys: == on them is exact; the same keys in the same order, in one pass
                    if n_a != n_b or list(_flat(a)) != list(_flat(b)):
                        return False
                    # the values in the keys' order: an instance __dict__ (a split table) gives its referents in
                    # its class's shared key order, which the instance's own order need not be
                    next_old += _flat(map(dict.values, a))
                    next_new += _flat(map(dict.values, b))
                    continue
                keys_a = list(_flat(a))
                keys_b = list(_flat(b))
                if equal and keys_a != keys_b:
                    return False  # the same keys in another order
                if not all(map(is_, keys_a, keys_b)):
                    # keys of other types that compare equal (1, 1.0, True) make a level of their own
                    next_old += keys_a
                    next_new += keys_b
                next_old += _flat(map(dict.values, a))
                next_new += _flat(map(dict.values, b))
            elif t is list or t is tuple:
                if not equal and list(map(len, a)) != list(map(len, b)):
                    return False
                next_old += _referents(*a)  # a list's or tuple's items, in order, in one C call
                next_new += _referents(*b)
            elif t is float:
                if not equal and a != b:
                    if not all(map(_same_float, a, b)):
                        return False
                elif 0.0 in a and list(map(copysign, repeat(1.0), a)) != list(map(copysign, repeat(1.0), b)):
                    return False
            elif not all(map(_same_leaf, a, b)):
                return False
        if not next_old:
            return True
        olds, news = next_old, next_new
    return False


def diff_rows(old: Any, new: Any) -> list[list[Any]]:
    """Rows that turn ``old`` into ``new``. Values in the rows are copies owned by the caller."""
    rows: list[list[Any]] = []
    _walk(old, new, [], rows, None)
    return rows


class _Keep:
    __slots__ = ()


_KEEP = _Keep()


def _walk(old: Any, new: Any, path: list[Any], rows: list[list[Any]], known: _Known | None) -> Any:
    """Append the rows turning ``old`` into ``new``. With ``known`` (the tracker's, see :class:`_Known`), also
    change ``old`` in place to match and return what must replace ``old`` in its parent (``_KEEP`` when it was
    changed in place or not at all); without, ``old`` is left as it is."""
    if old is new:
        return _KEEP
    t = type(new)
    if type(old) is not t:
        # An OrderedDict against the plain dict it was stored as is the same kind of value.
        t = _norm(t)
        if _norm(type(old)) is not t:
            if _stored_type(type(new)) is not None and _same_all([old], [new]):
                return _KEEP  # stored as the old value's type, and equal (a memoryview of the same bytes, a np.str_)
            rows.append([list(path), TYPE_CHANGES, copy_state(new), old])
            if known is None:
                return _KEEP
            if known and (type(old) is dict or type(old) is list):
                known.clear()  # the caller drops ``old`` from the copy: see _Known
            return copy_state(new)
    if t is dict:
        if type(new) is not dict:
            new = dict(_base_items(new))  # as the codec stores a subclass: its own items
        if len(new) >= _FAST_MIN and len(old) == len(new):
            changed = _changed_keys(old, new, known)
            if changed is not None:
                # Only the children that differ are visited: the others were compared in C.
                for k in changed:
                    _dict_child(old, k, old[k], new[k], path, rows, known)
                if known is not None:
                    _memo_refresh(old, new, known)
                return _KEEP
        _walk_dict(old, new, path, rows, known)
        return _KEEP
    if t is list:
        _walk_list(old, new, path, rows, known)
        return _KEEP
    if not _same_leaf(old, new):
        rows.append([list(path), VALUES_CHANGED, copy_state(new), old])
        return copy_state(new) if known is not None else _KEEP
    return _KEEP


def _walk_dict(old: dict[Any, Any], new: dict[Any, Any], path: list[Any], rows: list[list[Any]],
               known: _Known | None) -> None:
    """The rows of two dicts, child by child (the C scan of :func:`_changed_keys` did not apply)."""
    if known is not None and id(old) in known:
        del known[id(old)]  # keys or children may change kind here: the scan checks this dict again next time
    n_old = len(old)
    added: list[Any] = []
    for k, v in new.items():
        try:
            ov = old[k]
        except KeyError:
            rows.append([path + [k], DICT_ADDED, copy_state(v), None])
            if known is not None:
                old[k] = copy_state(v)
            added.append(k)
            continue
        if ov is v:
            continue
        tv = type(v)
        if type(ov) is tv:
            # _dict_child's cases, inline for the common kinds (a call less per child)
            if tv in _SCALARS:
                if ov == v:
                    # equal floats may still differ in sign (0.0 == -0.0)
                    if tv is not float or ov or copysign(1.0, ov) == copysign(1.0, v):
                        continue
                elif tv is float and v != v and ov != ov:
                    continue
                rows.append([path + [k], VALUES_CHANGED, v, ov])
                if known is not None:
                    old[k] = v
                continue
            if tv is list or (tv is dict and (len(v) < _FAST_MIN or len(ov) != len(v))):
                try:
                    if ov == v and _same(ov, v, True):
                        continue
                except Exception:  # noqa: BLE001  (e.g. numpy arrays inside: walk instead)
                    pass
                path.append(k)
                if tv is list:
                    _walk_list(ov, v, path, rows, known)
                else:
                    _walk_dict(ov, v, path, rows, known)
                path.pop()
                continue
        _dict_child(old, k, ov, v, path, rows, known)
    gone: list[Any] = []
    if n_old + len(added) != len(new):
        gone = [k for k in old if k not in new]
        for k in gone:
            ov = old[k]
            rows.append([path + [k], DICT_REMOVED, None, ov])
            if known is not None:
                if known and (type(ov) is dict or type(ov) is list):
                    known.clear()
                del old[k]
    _key_order(old, new, path, rows, known, added, gone)


def _key_order(old: dict[Any, Any], new: dict[Any, Any], path: list[Any], rows: list[list[Any]],
               known: _Known | None, added: list[Any], gone: list[Any]) -> None:
    """Rows that give ``old``'s keys ``new``'s order and ``new``'s own key objects, after :func:`_walk_dict`.

    A dict lookup finds a key of equal value (``1`` for ``1.0``, ``0.0`` for ``-0.0``) and ``==`` ignores order,
    so the children's rows alone may leave other keys, or the keys in another order. From the first place where
    the keys differ, the keys are removed (last first) and added again in ``new``'s order: existing actions, so
    any reader applies them, and exact both ways (applied forwards, ``old`` takes ``new``'s order; backwards, its
    own). Costs two key lists per changed dict; rows only when the order or a key's type changed.
    """
    if known is not None:
        if len(old) == len(new) and all(map(is_, old, new)):
            return  # the same key objects in the same order (the common case: one C pass, no lists)
        mine = list(old)  # the copy already holds new's children, in its own order
    elif added or gone:
        mine = [k for k in old if k not in gone] + added if gone else list(old) + added
    else:
        mine = list(old)
    theirs = list(new)
    if len(mine) == len(theirs) and (all(map(is_, mine, theirs)) or _same_all(mine, theirs)):
        return
    j = 0
    while j < len(mine) and j < len(theirs) and _same(mine[j], theirs[j]):
        j += 1
    for k in reversed(mine[j:]):
        if known is not None:
            ov = old.pop(k)
            if known and (type(ov) is dict or type(ov) is list):
                known.clear()
        else:
            ov = copy_state(new[k])
        rows.append([path + [k], DICT_REMOVED, None, ov])
    for k in theirs[j:]:
        rows.append([path + [k], DICT_ADDED, copy_state(new[k]), None])
        if known is not None:
            old[k] = copy_state(new[k])


def _dict_child(old: dict[Any, Any], k: Any, ov: Any, v: Any, path: list[Any], rows: list[list[Any]],
                known: _Known | None) -> None:
    """The rows for key ``k``, present in both dicts (``ov`` old, ``v`` new); with ``known``, ``old`` is updated.

    Unchanged dict and list children are skipped by one C-level ``==`` and :func:`_same` (``==`` alone would let
    values that compare equal across types, signs or key orders pass). A wide dict child goes straight to
    :func:`_changed_keys` instead: when that scan applies, it lists no key for an unchanged child, so the rows
    are the same and the child is compared once, not twice.
    """
    tv = type(v)
    if type(ov) is tv:
        if tv in _SCALARS:
            if ov == v:
                if tv is not float or ov or copysign(1.0, ov) == copysign(1.0, v):
                    return
            elif tv is float and v != v and ov != ov:
                return
            rows.append([path + [k], VALUES_CHANGED, v, ov])
            if known is not None:
                old[k] = v
            return
        if tv is dict:
            if ov is v:
                return
            if len(v) >= _FAST_MIN and len(ov) == len(v):
                changed = _changed_keys(ov, v, known)
                if changed is not None:
                    if changed:
                        path.append(k)
                        for kk in changed:
                            _dict_child(ov, kk, ov[kk], v[kk], path, rows, known)
                        path.pop()
                    if known is not None:
                        _memo_refresh(ov, v, known)
                    return
            try:
                if ov == v and _same(ov, v, True):
                    return
            except Exception:  # noqa: BLE001  (e.g. numpy arrays inside: walk instead)
                pass
            path.append(k)
            _walk_dict(ov, v, path, rows, known)
            path.pop()
            return
        if tv is list:
            try:
                if ov == v and _same(ov, v, True):
                    return
            except Exception:  # noqa: BLE001  (e.g. numpy arrays inside: walk instead)
                pass
    path.append(k)
    replacement = _walk(ov, v, path, rows, known)
    path.pop()
    if replacement is not _KEEP:
        old[k] = replacement


#: Dicts with at least this many keys look for their changed children with C loops first (below, the Python loop
#: is as cheap).
_FAST_MIN = 8
#: Child types for which C's ``!=`` finds exactly the children the walk would report: two values of these types
#: that compare equal have the same type (no 1 == 1.0 == True, b"" == bytearray(), {1} == frozenset({1})), and
#: containers are compared by C equality in both.
_NO_CROSS = frozenset({str, dict, list, tuple, type(None)})


class _Known(dict):  # type: ignore[type-arg]
    """The dicts of a tracker's copy that passed :func:`_changed_keys`'s checks: ``id(d) -> [d, list(d), memo,
    pending]`` (the memo: a :class:`_Memo` of the env's children, None, or steps to wait before building one).

    Such a dict keeps its keys and its children's kinds while only the C scan's path changes it (it writes
    text or nil where those were, or copies of containers of the same kind), so its next scan compares the
    new keys with the list kept here and checks only the new children's types: ~1.3 µs a step on the
    benchmark's 75-file dict. The child-by-child walk, which may add, remove or retype children, drops a
    dict's entry first. Holding the dict itself keeps its id from being reused; so that the table holds no dict
    the copy has dropped (memory stays that of the copy), it is emptied whenever the walk removes or replaces
    a dict or a list of the copy (the only containers whose dicts are scanned), and when it grows past
    :data:`_KNOWN_MAX`.
    """

    __slots__ = ()


_KNOWN_MAX = 4096


def _changed_keys(old: dict[Any, Any], new: dict[Any, Any], known: _Known | None = None) -> list[Any] | None:
    """The keys of two dicts with the same keys in the same order whose values may differ, found with C loops
    (``map(operator.ne, ...)``); None when this does not apply (other keys or another order, children of other
    types, a comparison that raised) and the caller walks every child.

    A key left out holds an unchanged value exactly as the walk judges it (same type: see :data:`_NO_CROSS`, and
    ``!=`` False); a key listed may still hold an equal value, which the caller's check then finds. ``known``:
    the tracker's table of its dicts already checked (see :class:`_Known`), for ``old`` only.
    """
    keys = list(new)
    entry = known.get(id(old)) if known is not None else None
    if entry is not None and entry[0] is old:
        if keys != entry[1]:
            return None
        if type(entry[2]) is _Memo:
            # What the env's children held when the copy was last made equal to them: the same objects now are
            # the same values, and only the children holding another object are visited (see _Memo). The
            # children's types need no check here: the memo applies only when each is the dict it saw. Nor do
            # the keys' types: the memo applies only when ``new``'s keys are all text (str itself), for which
            # ``==`` above is exact.
            flagged = _memo_changed(entry[2], new)
            if flagged is not None and flagged is not False:
                entry[3] = flagged
                return [keys[i] for i in flagged]
            if flagged is None:
                entry[2] = _MEMO_WAIT  # the env hands out new children: compare them, and try a memo again later
            else:
                entry[2] = 2  # keys or lengths changed: compare the children this step, build a memo soon
        if not all(map(is_, keys, entry[1])) and not _same_all(entry[1], keys, True):
            return None  # equal keys of another type (1.0 for 1)
        if not _NO_CROSS.issuperset(map(type, new.values())):
            return None
    else:
        old_keys = list(old)
        if keys != old_keys:
            return None
        if not (_NO_CROSS.issuperset(map(type, new.values())) and _NO_CROSS.issuperset(map(type, old.values()))):
            return None
        if not all(map(is_, keys, old_keys)) and not _same_all(old_keys, keys, True):
            return None
        if known is not None:
            if len(known) >= _KNOWN_MAX:
                known.clear()
            known[id(old)] = [old, old_keys, None, None]
    try:
        unequal = list(map(ne, old.values(), new.values()))
    except Exception:  # noqa: BLE001  (an element's comparison raised inside a container: walk instead)
        return None
    changed = list(compress(keys, unequal))
    if len(changed) < len(keys):
        # C's != called these children equal: exact for text and nil, loose inside containers ([1] == [1.0],
        # key order). All of them are checked at once; only when that fails, one by one.
        equal = list(map(not_, unequal))
        # (== between values of these exact types holds only for one type: the pairs are typed)
        if not _same_all(list(compress(old.values(), equal)), list(compress(new.values(), equal)), True, True):
            changed = [k for k, u, a, b in zip(keys, unequal, old.values(), new.values())
                       if u or not _same(a, b, True)]
    return changed


_LEAF = frozenset({str, int, float, bool, bytes, type(None)})
_SEQ = frozenset({list, tuple})
_MEMO_L1 = _LEAF | _SEQ
#: Steps a wide dict waits before a memo is built again, after the env handed out new children or the shape did not
#: fit (a memo costs about two scans to build).
_MEMO_WAIT = 32


class _Memo:
    """The env's objects under a wide dict of dicts (:func:`_changed_keys`) when the tracker's copy of it was last
    made exactly equal to them: its children, their values (``l1``, in order, one C call: dicts whose keys are all
    text), the items of the lists and tuples among those (``l2``), the children's keys and lengths.

    Only for children whose values are immutable leaves (text, numbers, bytes, nil) or lists and tuples of those:
    then a child that is the same object, with the same keys and lengths, holding the same objects at both
    levels, holds the same value as when the copy was made (nothing in it can change in place unseen), so it
    needs no comparison. The check is one C pass over the children (identity), their lengths and keys, and one
    pass per level that yields, for each position holding another object, the child it belongs to (``own1``,
    ``own2``: a child's index per position); a child holding another object is visited by the walk as before.
    An env that hands out new children each step gets no memo (``_MEMO_WAIT``).
    """

    __slots__ = ("kids", "lens", "keys", "l1", "own1", "starts", "seq", "src", "src_lens", "src_first", "l2",
                 "own2", "l2_starts")


def _memo_build(new: dict[Any, Any]) -> _Memo | None:
    kids = list(new.values())
    if set(map(type, kids)) != {dict}:
        return None
    m = _Memo()
    m.kids = kids
    m.lens = list(map(len, kids))
    m.l1 = _referents(*kids)
    m.keys = list(_flat(kids))
    if len(m.l1) != len(m.keys):
        return None  # a key that is not text: the dict's referents hold keys too
    types = list(map(type, m.l1))
    if not _MEMO_L1.issuperset(types):
        return None
    m.seq = list(map(_SEQ.__contains__, types))
    m.src = list(compress(m.l1, m.seq))
    m.src_lens = list(map(len, m.src))
    m.l2 = _referents(*m.src)
    if not _LEAF.issuperset(map(type, m.l2)):
        return None
    n = len(kids)
    m.own1 = list(_flat(map(repeat, range(n), m.lens)))
    m.starts = [0, *accumulate(m.lens)]
    src_owner = list(compress(m.own1, m.seq))
    m.src_first = [0, *accumulate(map(list.count, _slices(m.seq, m.starts), repeat(True)))]
    m.own2 = list(_flat(map(repeat, src_owner, m.src_lens)))
    m.l2_starts = [0, *accumulate(m.src_lens)]
    return m


def _slices(items: list[Any], starts: list[int]) -> list[list[Any]]:
    """``items`` cut at ``starts`` (the first 0, the last ``len(items)``): one list per child."""
    return [items[a:b] for a, b in zip(starts, starts[1:])]


def _memo_changed(m: _Memo, new: dict[Any, Any]) -> list[int] | bool | None:
    """The indices of the children that hold another object than when ``m`` was made; None: other children (the
    memo does not apply); False: a child's keys or lengths changed (build the memo again)."""
    kids = _referents(new)  # (its values, as long as its keys are all text: see _changed_keys)
    if len(kids) != len(m.kids) or len(kids) != len(new) or not all(map(is_, kids, m.kids)):
        return None
    if list(map(len, kids)) != m.lens or list(map(len, m.src)) != m.src_lens:
        return False  # a child or a list in one got longer or shorter: no memo this step
    l1 = _referents(*kids)
    if len(l1) != len(m.l1) or list(_flat(kids)) != m.keys:  # (all text keys, as when made: == is exact)
        return False
    # One C pass a level: the owner of each position whose object is another one (the lengths being the same,
    # the positions line up child by child).
    flagged = set(compress(m.own1, map(is_not, l1, m.l1)))
    flagged.update(compress(m.own2, map(is_not, _referents(*m.src), m.l2)))
    return sorted(flagged)


def _memo_refresh(old: dict[Any, Any], new: dict[Any, Any], known: _Known) -> None:
    """After the walk made the copy of ``old`` equal to ``new``: bring its memo up to date (the visited children's
    parts of it), or build one, or count down to the next try."""
    entry = known.get(id(old))
    if entry is None or entry[0] is not old:
        return  # the walk dropped it
    m, flagged = entry[2], entry[3]
    entry[3] = None
    if type(m) is int:
        entry[2] = m - 1 if m > 0 else None
        return
    if m is None:
        # (only over keys of the copy that are all text: _changed_keys then compares the env's with them by ==)
        m = _memo_build(new) if set(map(type, entry[1])) == {str} else None
        entry[2] = m if m is not None else _MEMO_WAIT * 8
        return
    if flagged and not _memo_splice(m, new, flagged):
        entry[2] = _memo_build(new) or _MEMO_WAIT


def _memo_splice(m: _Memo, new: dict[Any, Any], flagged: list[int]) -> bool:
    """Put the visited children's new objects into ``m``; False when their shape changed (build anew)."""
    kids = m.kids  # (the env's children: _memo_changed found them to be these, and the walk changes no env object)
    for i in flagged:
        kid = kids[i]
        n = m.lens[i]
        if len(kid) != n:
            return False
        seg = _referents(kid)
        if len(seg) != n:
            return False
        types = list(map(type, seg))
        if not _MEMO_L1.issuperset(types):
            return False
        start = m.starts[i]
        pattern = list(map(_SEQ.__contains__, types))
        if pattern != m.seq[start:start + n]:
            return False
        if list(kid) != m.keys[start:start + n]:
            return False  # (the walk keeps the copy's keys; the memo holds the env's, to compare with theirs)
        m.l1[start:start + n] = seg
        j, k = m.src_first[i], m.src_first[i + 1]
        if k > j:
            src = list(compress(seg, pattern))
            if list(map(len, src)) != m.src_lens[j:k]:
                return False
            items = _referents(*src)
            if not _LEAF.issuperset(map(type, items)):
                return False
            m.l2[m.l2_starts[j]:m.l2_starts[k]] = items
            m.src[j:k] = src
    return True


def _eq(a: Any, b: Any) -> bool:
    """``a`` and ``b`` are the same value as stored (:func:`_same`), with the common cases inline."""
    if a is b:
        return True
    ta = type(a)
    if ta is not type(b):
        return _same_all([a], [b])  # a subclass against the base type it is stored as, say
    if ta in _SCALARS:
        if a == b:
            return ta is not float or a or copysign(1.0, a) == copysign(1.0, b)
        return ta is float and a != a and b != b
    return _same(a, b)


def _all_eq(a: list[Any], b: list[Any]) -> bool:
    """``_eq`` on every pair of two lists of the same length.

    Identity first, all in C (``_eq`` holds for the same object): the tracker's copy shares its immutable
    leaves with the env's state, so unchanged elements are usually the same objects. Else a C loop calls
    ``_eq`` (``all(map(...))``: a third of a generator's cost); C's own list ``==`` would need every element's
    type checked first, which costs as much."""
    return all(map(is_, a, b)) or all(map(_eq, a, b))


#: Lists at least this long find their common head and tail in runs checked by :func:`_all_eq`.
_RUN = 16
_MAX_RUN = 4096


def _head(old: list[Any], new: list[Any], m: int) -> int:
    """The length of the common head of ``old`` and ``new`` under :func:`_eq` (at most ``m``)."""
    p = 0
    step = _RUN if m >= _RUN else 0
    grow = True
    # Runs double while they match; a run that does not is halved, so a change far in is found with C loops.
    while step >= _RUN:
        if p + step <= m and _all_eq(old[p:p + step], new[p:p + step]):
            p += step
            if grow:
                step = min(step * 2, _MAX_RUN)
        else:
            grow = False
            step //= 2
    while p < m and _eq(old[p], new[p]):
        p += 1
    return p


def _tail(old: list[Any], new: list[Any], m: int) -> int:
    """The length of the common tail of ``old`` and ``new`` under :func:`_eq` (at most ``m``)."""
    n_old, n_new = len(old), len(new)
    s = 0
    step = _RUN if m >= _RUN else 0
    grow = True
    while step >= _RUN:
        if s + step <= m and _all_eq(old[n_old - s - step:n_old - s], new[n_new - s - step:n_new - s]):
            s += step
            if grow:
                step = min(step * 2, _MAX_RUN)
        else:
            grow = False
            step //= 2
    while s < m and _eq(old[n_old - 1 - s], new[n_new - 1 - s]):
        s += 1
    return s


_MAX_SHIFT = 4


def _add_items(old: list[Any], new: list[Any], lo: int, hi: int, path: list[Any], rows: list[list[Any]],
               known: _Known | None) -> None:
    """Rows adding ``new[lo:hi]`` at their places, in ascending order; with ``known``, inserted into ``old``."""
    for i in range(lo, hi):
        rows.append([path + [i], ITEM_ADDED, copy_state(new[i]), None])
        if known is not None:
            old.insert(i, copy_state(new[i]))


def _remove_items(old: list[Any], lo: int, hi: int, path: list[Any], rows: list[list[Any]],
                  known: _Known | None) -> None:
    """Rows removing ``old[lo:hi]``, in descending order; with ``known``, deleted from ``old``."""
    for i in range(hi - 1, lo - 1, -1):
        ov = old[i]
        rows.append([path + [i], ITEM_REMOVED, None, ov])
        if known is not None:
            if known and (type(ov) is dict or type(ov) is list):
                known.clear()
            del old[i]


def _walk_list(old: list[Any], new: list[Any], path: list[Any], rows: list[list[Any]], known: _Known | None) -> None:
    """Diff two lists: common head and tail are skipped; what is left is a shift, an insertion, a removal or
    element-wise changes. Rows for removals come in descending index order and additions in ascending order,
    so applying rows in order keeps indices valid (and reversed order undoes them). With ``known``, each row is
    applied to ``old`` as it is made, in that same order."""
    n_old, n_new = len(old), len(new)
    m = n_old if n_old < n_new else n_new
    if m < _RUN:
        p = 0
        while p < m and _eq(old[p], new[p]):
            p += 1
        if p == n_old == n_new:
            return
        s = 0
        while s < m - p and _eq(old[n_old - 1 - s], new[n_new - 1 - s]):
            s += 1
    else:
        p = _head(old, new, m)
        if p == n_old == n_new:
            return
        s = _tail(old, new, m - p)
    o_end, n_end = n_old - s, n_new - s  # the differing middles are old[p:o_end] and new[p:n_end]
    mid_old, mid_new = o_end - p, n_end - p
    if mid_old == 0:
        _add_items(old, new, p, n_end, path, rows, known)
        return
    if mid_new == 0:
        _remove_items(old, p, o_end, path, rows, known)
        return
    # A queue that dropped k items at the front and appended at the back (a bounded history, say).
    for k in range(1, min(_MAX_SHIFT, mid_old) + 1):
        keep = mid_old - k
        if keep > 0 and n_end - p >= keep and _all_eq(old[p + k:o_end], new[p:p + keep]):
            _remove_items(old, p, p + k, path, rows, known)
            _add_items(old, new, p + keep, n_end, path, rows, known)
            return
    common = min(mid_old, mid_new)
    for i in range(p, p + common):
        v, ov = new[i], old[i]
        if _eq(ov, v):
            continue
        same_kind = type(ov) is type(v) or _norm(type(ov)) is _norm(type(v))
        if type(v) in _SCALARS or not same_kind:
            rows.append([path + [i], VALUES_CHANGED if same_kind else TYPE_CHANGES, copy_state(v), ov])
            if known is not None:
                if known and (type(ov) is dict or type(ov) is list):
                    known.clear()
                old[i] = copy_state(v)
            continue
        path.append(i)
        replacement = _walk(ov, v, path, rows, known)
        path.pop()
        if replacement is not _KEEP:
            old[i] = replacement
    if mid_new > mid_old:
        _add_items(old, new, p + common, n_end, path, rows, known)
    elif mid_old > mid_new:
        _remove_items(old, p + common, o_end, path, rows, known)


def _parent(state: Any, path: list[Any]) -> Any:
    node = state
    for key in path[:-1]:
        node = node[_key_in(node, key)]
    return node


def _key_in(node: Any, key: Any, fresh: set[int] | None = None) -> Any:
    """The key of dict ``node`` that ``key`` (read from a file) stands for. A NaN equals nothing, itself
    included, so a decoded NaN key (a new float object) finds the dict's NaN key only by this search; the same
    for a tuple key holding a NaN. Keys this apply call added itself (``fresh``: their ids) are not candidates:
    a step that swaps one NaN key for another adds the new one and removes the old one, in either order.
    Other keys are themselves."""
    if type(node) is not dict or key in node:
        return key
    for k in node:
        if _same_key(k, key) and (fresh is None or id(k) not in fresh):
            return k
    return key


def _same_key(a: Any, b: Any) -> bool:
    if a is b or a == b:
        return True
    if isinstance(a, float) and isinstance(b, float):
        return a != a and b != b
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        return all(_same_key(x, y) for x, y in zip(a, b))
    return False


#: What :func:`apply_forward` raises for rows that do not fit the state they are applied to (damaged bytes in a file
#: without checksums, or a salvaged record carrying the damaged byte): readers and ``fsck`` catch exactly these.
ROWS_DO_NOT_FIT = (LookupError, TypeError, ValueError, AttributeError)


def apply_forward(state: Any, rows: Iterable[list[Any]], *, copy_values: bool = False) -> Any:
    """Apply rows to ``state`` in place (old to new) and return the new state.

    Args:
        copy_values: copy the values taken from the rows, so the rows stay untouched by later changes.
    """
    fresh: set[int] = set()
    for path, action, value, _old in rows:
        if copy_values:
            value = copy_state(value)
        if not path:
            state = value
            continue
        parent = _parent(state, path)
        key = path[-1]
        if action == DICT_ADDED:  # the row's own key object (a decoded NaN is a new key, as it was when recorded)
            fresh.add(id(key))
            parent[key] = value
            continue
        key = _key_in(parent, key, fresh)
        if action == ITEM_ADDED:
            parent.insert(key, value)
        elif action == DICT_REMOVED or action == ITEM_REMOVED:
            del parent[key]
        else:
            parent[key] = value
    return state


def apply_backward(state: Any, rows: Iterable[list[Any]], *, copy_values: bool = False) -> Any:
    """Undo rows on ``state`` in place (new to old) and return the old state."""
    fresh: set[int] = set()
    for path, action, _value, old in reversed(list(rows)):
        if copy_values:
            old = copy_state(old)
        if not path:
            state = old
            continue
        parent = _parent(state, path)
        key = path[-1]
        if action == DICT_REMOVED:  # undone: the row's own key object back (see apply_forward)
            fresh.add(id(key))
            parent[key] = old
            continue
        key = _key_in(parent, key, fresh)
        if action == ITEM_REMOVED:
            parent.insert(key, old)
        elif action == DICT_ADDED or action == ITEM_ADDED:
            del parent[key]
        else:
            parent[key] = old
    return state


class _NoMemo(_Known):
    """A :class:`_Known` table that keeps nothing, for a tracker using the C first pass.

    The table's entries stand for "this dict of the copy changed only by the walk since it was checked": with
    the C pass, most steps change the copy without walking its dicts, so no entry could be trusted. The walk
    still updates the copy in place (the table is not None), and every dict is compared in full each time."""

    __slots__ = ()

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


class StateTracker:
    """Holds a private copy of the env's last state and turns each new state into diff rows.

    Per step this walks the state once (cost grows with the state's size, not with the episode) and
    copies only what changed. ``state`` is for reading (packing a snapshot): only :meth:`update` and
    :meth:`reset` change it, which the table of scanned dicts relies on.

    With the C extension (``recorder/_cdiff.c``; ``accelerated`` is True), a C pass first finds the places
    where the state may differ, and the walk visits only those; the rows are the same as the walk's alone
    (``tests/recorder/test_diff_accel.py`` holds the two to each other on hostile states).

    Args:
        accelerated: use the C pass (default: when it was built and ``TRAJREC_PURE_PYTHON`` is not set).

    Raises:
        ValueError: ``accelerated=True`` where the extension is not available.
    """

    __slots__ = ("state", "_known", "_scan")

    def __init__(self, accelerated: bool | None = None) -> None:
        if accelerated and _accel is None:
            raise ValueError("the C extension trajrec.recorder._cdiff is not available (built without a C "
                             "compiler, or TRAJREC_PURE_PYTHON is set); reinstall with a C compiler present")
        use = _accel is not None if accelerated is None else accelerated
        self._scan = _accel.scan if use else None
        self.state: Any = None
        self._known = self._new_table()

    @property
    def accelerated(self) -> bool:
        """Whether the C first pass is used."""
        return self._scan is not None

    def _new_table(self) -> _Known:
        return _NoMemo() if self._scan is not None else _Known()

    def reset(self, state: Any) -> Any:
        self._known = self._new_table()
        self.state = copy_state(state)
        return self.state

    def update(self, new: Any) -> list[list[Any]]:
        """Diff ``new`` against the private copy and bring the copy up to date in the same walk.

        The copy and the rows never share a container, so rows handed out stay as they were."""
        if self._scan is not None:
            spots = self._scan(self.state, new, _SCAN_KINDS)
            if spots is not None:
                if type(spots) is list:
                    # Every spot is a row made in C (the usual step: changed scalars, a shifted queue): the scan
                    # gives them as a list (rows and spots together as a tuple), in order, held by no one else.
                    return spots
                rows: list[list[Any]] = []
                # Each spot is a child of a dict of the copy that may differ; the C pass found every other
                # place the same. Spots are disjoint subtrees, in the walk's depth-first order. A changed leaf
                # of the same exact scalar type, and a bounded queue shifted by one, come as their rows, already
                # made (and the copy already updated) as _dict_child would make them.
                known = self._known
                for spot in spots:
                    if type(spot) is list:
                        rows.append(spot)
                    else:
                        parent, key, value, path = spot
                        _dict_child(parent, key, parent[key], value, path, rows, known)
                return rows
        rows = []
        replacement = _walk(self.state, new, [], rows, self._known)
        if replacement is not _KEEP:
            self.state = replacement
        return rows
