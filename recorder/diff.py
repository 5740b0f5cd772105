"""Structural state diffs as flat change rows.

A diff is a list of rows ``[path, action, value, old_value]``: the same shape as DeepDiff's flat rows, with
DeepDiff's action names, so one diff applies forwards (old state to new) and backwards (new to old).
``path`` is the list of keys and list indices from the root.

The recorder diffs plain data (dicts, lists, tuples, scalars, str, bytes, numpy arrays) itself: on a ~9 KB
nested state this costs about 1% of a DeepDiff. Tuples, arrays and other objects are compared as whole
values. Unchanged nested dicts and lists are skipped by Python's own (C) equality, so values that compare
equal across types inside them (``1`` and ``1.0``) are not reported; scalars directly compared are type-exact.
A dict of 8 keys or more whose children are text, nil or containers finds its changed children with C loops
(``map(operator.ne, ...)``, :func:`_changed_keys`) and visits only those, with the same rows as the
child-by-child walk. DeepDiff stays for rendering diffs to people and for replay divergence reports.

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
from enum import Enum
from itertools import compress
from operator import ne
from typing import Any, Iterable

import numpy as np

from .codec import Unencodable, UnknownExt, fallback_payload

VALUES_CHANGED = "values_changed"
TYPE_CHANGES = "type_changes"
DICT_ADDED = "dictionary_item_added"
DICT_REMOVED = "dictionary_item_removed"
ITEM_ADDED = "iterable_item_added"
ITEM_REMOVED = "iterable_item_removed"

ACTIONS = (VALUES_CHANGED, TYPE_CHANGES, DICT_ADDED, DICT_REMOVED, ITEM_ADDED, ITEM_REMOVED)

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
        return obj.copy()
    return _copy_other(obj)


def _copy_other(obj: Any) -> Any:
    if isinstance(obj, dict):
        # dict's own items, as the codec stores a subclass (an overridden items() is not asked)
        return {k: copy_state(v) for k, v in dict.items(obj)}
    if isinstance(obj, list):
        return [copy_state(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple([copy_state(v) for v in obj])
    if isinstance(obj, np.ndarray):
        return obj.copy()  # subclasses (masked arrays, matrices) copy their own extra parts
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
    if isinstance(obj, (str, int, float, bytes, complex, Enum, Unencodable, UnknownExt)):
        return obj  # immutable subclasses (IntEnum, str enums, ...) and values read back from a file
    try:
        return copy.deepcopy(obj)
    except Exception:  # noqa: BLE001  (any user __deepcopy__/__reduce__ may raise; a marked copy is safe)
        return Unencodable(*fallback_payload(obj))


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


def _same_array(a: Any, b: Any) -> bool:
    """Exact comparison of two numpy arrays of any kind (subclass, mask, structured and object dtypes)."""
    if type(a) is not type(b) or a.shape != b.shape or a.dtype != b.dtype:
        return False
    try:
        if type(a) is np.ndarray and a.dtype.names is None and not a.dtype.hasobject:
            return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
        if a.dtype.hasobject:
            return bool(np.array_equal(np.asarray(a), np.asarray(b)))
        if isinstance(a, np.ma.MaskedArray):
            if not np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b)):
                return False
            if np.asarray(a.fill_value).tobytes() != np.asarray(b.fill_value).tobytes():
                return False
        # Byte equality: exact for structured dtypes, and NaN payloads compare as stored.
        return bool(np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes())
    except Exception:  # noqa: BLE001  (an element's __eq__ raised: report a change, which is never wrong)
        return False


def _same_leaf(a: Any, b: Any) -> bool:
    if a is b:
        return True
    ta, tb = type(a), type(b)
    if ta is not tb and _norm(ta) is not _norm(tb):
        return False
    if isinstance(a, np.ndarray):
        return _same_array(a, b)
    try:
        eq = a == b
    except Exception:  # an object whose __eq__ raises is treated as changed: safe, never wrong
        return False
    if type(eq) is not bool:
        return False
    if eq:
        return True
    # NaN is not equal to itself, yet an unchanged NaN is no change.
    return ta is float and a != a and b != b


def diff_rows(old: Any, new: Any) -> list[list[Any]]:
    """Rows that turn ``old`` into ``new``. Values in the rows are copies owned by the caller."""
    rows: list[list[Any]] = []
    _walk(old, new, [], rows, False)
    return rows


class _Keep:
    __slots__ = ()


_KEEP = _Keep()


def _walk(old: Any, new: Any, path: list[Any], rows: list[list[Any]], apply: bool) -> Any:
    """Append the rows turning ``old`` into ``new``. With ``apply``, also change ``old`` in place to match and
    return what must replace ``old`` in its parent (``_KEEP`` when it was changed in place or not at all)."""
    if old is new:
        return _KEEP
    t = type(new)
    if type(old) is not t:
        # An OrderedDict against the plain dict it was stored as is the same kind of value.
        t = _norm(t)
        if _norm(type(old)) is not t:
            rows.append([list(path), TYPE_CHANGES, copy_state(new), old])
            return copy_state(new) if apply else _KEEP
    if t is dict:
        if len(new) >= _FAST_MIN and len(old) == len(new):
            changed = _changed_keys(old, new)
            if changed is not None:
                # Only the children that differ are visited: the others were compared in C.
                for k in changed:
                    _dict_child(old, k, old[k], new[k], path, rows, apply)
                return _KEEP
        n_old = len(old)
        added = 0
        for k, v in new.items():
            try:
                ov = old[k]
            except KeyError:
                rows.append([path + [k], DICT_ADDED, copy_state(v), None])
                if apply:
                    old[k] = copy_state(v)
                added += 1
                continue
            if ov is v:
                continue
            tv = type(v)
            if type(ov) is tv:
                if tv in _SCALARS:
                    if ov == v or (tv is float and v != v and ov != ov):
                        continue
                    rows.append([path + [k], VALUES_CHANGED, v, ov])
                    if apply:
                        old[k] = v
                    continue
                if tv is dict or tv is list:
                    # Unchanged subtrees are the common case: C-level equality skips them without a Python walk.
                    try:
                        if ov == v:
                            continue
                    except Exception:  # e.g. numpy arrays inside: walk instead
                        pass
            path.append(k)
            replacement = _walk(ov, v, path, rows, apply)
            path.pop()
            if replacement is not _KEEP:
                old[k] = replacement
        if n_old + added != len(new):
            gone = [k for k in old if k not in new]
            for k in gone:
                rows.append([path + [k], DICT_REMOVED, None, old[k]])
                if apply:
                    del old[k]
        return _KEEP
    if t is list:
        _walk_list(old, new, path, rows, apply)
        return _KEEP
    if not _same_leaf(old, new):
        rows.append([list(path), VALUES_CHANGED, copy_state(new), old])
        return copy_state(new) if apply else _KEEP
    return _KEEP


def _dict_child(old: dict[Any, Any], k: Any, ov: Any, v: Any, path: list[Any], rows: list[list[Any]],
                apply: bool) -> None:
    """The rows for key ``k``, present in both dicts (``ov`` old, ``v`` new), as the loop in :func:`_walk` makes
    them; with ``apply``, ``old`` is updated."""
    tv = type(v)
    if type(ov) is tv:
        if tv in _SCALARS:
            if ov == v or (tv is float and v != v and ov != ov):
                return
            rows.append([path + [k], VALUES_CHANGED, v, ov])
            if apply:
                old[k] = v
            return
        if tv is dict or tv is list:
            try:
                if ov == v:
                    return
            except Exception:  # noqa: BLE001  (e.g. numpy arrays inside: walk instead)
                pass
    path.append(k)
    replacement = _walk(ov, v, path, rows, apply)
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


def _changed_keys(old: dict[Any, Any], new: dict[Any, Any]) -> list[Any] | None:
    """The keys of two dicts with the same keys in the same order whose values may differ, found with C loops
    (``map(operator.ne, ...)``); None when this does not apply (other keys or another order, children of other
    types, a comparison that raised) and the caller walks every child.

    A key left out holds an unchanged value exactly as the walk judges it (same type: see :data:`_NO_CROSS`, and
    ``!=`` False); a key listed may still hold an equal value, which the caller's check then finds.
    """
    keys = list(new)
    if keys != list(old):
        return None
    if not (_NO_CROSS.issuperset(map(type, new.values())) and _NO_CROSS.issuperset(map(type, old.values()))):
        return None
    try:
        return list(compress(keys, map(ne, old.values(), new.values())))
    except Exception:  # noqa: BLE001  (an element's comparison raised inside a container: walk instead)
        return None


def _eq(a: Any, b: Any) -> bool:
    if a is b:
        return True
    ta = type(a)
    if ta is not type(b):
        return _same_leaf(a, b) if _norm(ta) is _norm(type(b)) else False
    if ta in _SCALARS:
        return a == b or (ta is float and a != a and b != b)
    try:
        r = a == b
    except Exception:  # numpy arrays, objects with a raising __eq__
        return _same_leaf(a, b)
    return r if type(r) is bool else _same_leaf(a, b)


_MAX_SHIFT = 4
def _walk_list(old: list[Any], new: list[Any], path: list[Any], rows: list[list[Any]], apply: bool) -> None:
    """Diff two lists: common head and tail are skipped; what is left is a shift, an insertion, a removal or
    element-wise changes. Rows for removals come in descending index order and additions in ascending order,
    so applying rows in order keeps indices valid (and reversed order undoes them). With ``apply``, each row is
    applied to ``old`` as it is made, in that same order."""
    n_old, n_new = len(old), len(new)
    m = min(n_old, n_new)
    p = 0
    while p < m and _eq(old[p], new[p]):
        p += 1
    if p == n_old == n_new:
        return
    s = 0
    while s < m - p and _eq(old[n_old - 1 - s], new[n_new - 1 - s]):
        s += 1
    o_end, n_end = n_old - s, n_new - s  # the differing middles are old[p:o_end] and new[p:n_end]
    mid_old, mid_new = o_end - p, n_end - p

    def add(i: int) -> None:
        rows.append([path + [i], ITEM_ADDED, copy_state(new[i]), None])
        if apply:
            old.insert(i, copy_state(new[i]))

    def remove(i: int) -> None:
        rows.append([path + [i], ITEM_REMOVED, None, old[i]])
        if apply:
            del old[i]

    if mid_old == 0:
        for i in range(p, n_end):
            add(i)
        return
    if mid_new == 0:
        for i in range(o_end - 1, p - 1, -1):
            remove(i)
        return
    # A queue that dropped k items at the front and appended at the back (a bounded history, say).
    for k in range(1, min(_MAX_SHIFT, mid_old) + 1):
        keep = mid_old - k
        if keep > 0 and n_end - p >= keep and all(_eq(old[p + k + j], new[p + j]) for j in range(keep)):
            for i in range(p + k - 1, p - 1, -1):
                remove(i)
            for i in range(p + keep, n_end):
                add(i)
            return
    common = min(mid_old, mid_new)
    for i in range(p, p + common):
        v, ov = new[i], old[i]
        if _eq(ov, v):
            continue
        same_kind = type(ov) is type(v) or _norm(type(ov)) is _norm(type(v))
        if type(v) in _SCALARS or not same_kind:
            rows.append([path + [i], VALUES_CHANGED if same_kind else TYPE_CHANGES, copy_state(v), ov])
            if apply:
                old[i] = copy_state(v)
            continue
        path.append(i)
        replacement = _walk(ov, v, path, rows, apply)
        path.pop()
        if replacement is not _KEEP:
            old[i] = replacement
    if mid_new > mid_old:
        for i in range(p + common, n_end):
            add(i)
    elif mid_old > mid_new:
        for i in range(o_end - 1, p + common - 1, -1):
            remove(i)


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


class StateTracker:
    """Holds a private copy of the env's last state and turns each new state into diff rows.

    Per step this walks the state once (cost grows with the state's size, not with the episode) and
    copies only what changed.
    """

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state: Any = None

    def reset(self, state: Any) -> Any:
        self.state = copy_state(state)
        return self.state

    def update(self, new: Any) -> list[list[Any]]:
        """Diff ``new`` against the private copy and bring the copy up to date in the same walk.

        The copy and the rows never share a container, so rows handed out stay as they were."""
        rows: list[list[Any]] = []
        replacement = _walk(self.state, new, [], rows, True)
        if replacement is not _KEEP:
            self.state = replacement
        return rows
