"""Arrow arrays built from Python columns through their buffers, for the parquet export.

``pyarrow.array(list)`` asks, for every call, whether the list is a pandas object, and that question imports
pandas when it is installed: ~50 MB of the export's peak memory for a library the export never uses (measured:
``import pyarrow.parquet`` 64 MB, after one ``pa.array`` 115 MB). These builders make the same arrays with numpy
and ``pa.Array.from_buffers``, which never ask. They take a column's values as the parquet rows hold them (see
:func:`check_types`); for anything else (another type, a number out of range, text that is not UTF-8, more than
2 GiB of text in one column) they hand the values to ``pa.array``, so they give the same array or the same error
as ``pa.array(values, type=...)`` (``tests/exports/test_arrow_build.py`` compares them on hostile values).

Runs: a column of an episode's own fields (its id, env, ...) is given as one value per episode and the number of
rows it stands for (``counts``), expanded at the buffer level instead of repeating Python objects.

>>> import pyarrow as pa
>>> build(pa, pa.string(), ["a", None, "é"]).to_pylist()
['a', None, 'é']
>>> build(pa, pa.int32(), [7, None], counts=[2, 1]).to_pylist()
[7, 7, None]
"""

from __future__ import annotations

import operator
from itertools import chain, compress, repeat
from typing import Any, Sequence

import numpy as np

__all__ = ["build", "float_lists", "kind_of", "row_bytes", "value_bytes"]

_NONE = type(None)
_I32 = (-(2**31), 2**31 - 1)
_I8 = (-128, 127)


class _Fallback(Exception):
    """The values are not what the fast builders take: ``pa.array`` decides."""


def kind_of(pa: Any, typ: Any) -> str:
    """The builder a column type takes: ``str``, ``f64``, ``i32``, ``i8``, ``bool``, ``ts`` (int microseconds),
    ``struct`` (of text children), ``list:<kind>``, or ``other`` (``pa.array``)."""
    t = pa.types
    if t.is_string(typ):
        return "str"
    if t.is_float64(typ):
        return "f64"
    if t.is_int32(typ):
        return "i32"
    if t.is_int8(typ):
        return "i8"
    if t.is_boolean(typ):
        return "bool"
    if t.is_timestamp(typ) and typ.unit == "us":
        return "ts"
    if t.is_struct(typ) and all(t.is_string(typ.field(k).type) for k in range(typ.num_fields)):
        return "struct"
    if t.is_list(typ):
        inner = kind_of(pa, typ.value_type)
        if inner in ("str", "f64", "i32"):
            return "list:" + inner
    return "other"


def build(pa: Any, typ: Any, values: list[Any], counts: Sequence[int] | None = None, *,
          kind: str | None = None) -> Any:
    """``pa.array(values, type=typ)`` (each value repeated ``counts[k]`` times when given), built without
    ``pa.array`` when the values are of the column's Python type.

    Args:
        pa: the ``pyarrow`` module.
        typ: the column's Arrow type.
        values: the column's values: ``str``, ``float``, ``int``, ``bool`` or None as the type asks; a struct's
            values are dicts with its text fields, or None; a list's values are lists, or None.
        counts: how many rows each value stands for (non-negative ints), or None for one each.
        kind: :func:`kind_of` ``typ``, when the caller has it.

    Raises:
        Whatever ``pa.array`` raises for these values (``ArrowInvalid``, ``ArrowTypeError``, ...).
    """
    kind = kind or kind_of(pa, typ)
    try:
        if kind != "other":
            return _build(pa, typ, kind, values, counts)
    except (_Fallback, TypeError, ValueError, OverflowError, UnicodeError, LookupError):
        pass
    if counts is not None:
        values = list(chain.from_iterable(map(repeat, values, counts)))
    try:
        return pa.array(values, type=typ)
    except UnicodeEncodeError:
        # Text that is not Unicode (lone surrogates: tool output decoded with surrogateescape) cannot be an Arrow
        # string: each lone surrogate becomes its "\\udcXX" escape (exact inside the JSON-text columns), counted
        # in base.ESCAPED (the one count of every format) so the export can say how many values changed.
        values = [_escape_surrogates(v) for v in values]
        return pa.array(values, type=typ)



def _escape_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            from .base import ESCAPED

            ESCAPED[0] += sum(1 for c in value if "\ud800" <= c <= "\udfff")
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {_escape_surrogates(k): _escape_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape_surrogates(v) for v in value]
    return value


def _build(pa: Any, typ: Any, kind: str, values: list[Any], counts: Sequence[int] | None) -> Any:
    n = len(values)
    rows = n if counts is None else _total(counts, n)
    types = set(map(type, values))  # one pass: the type check and whether any value is None
    nulls = _NONE in types
    if nulls:
        types.discard(_NONE)
        if not types:
            return _all_null(pa, typ, kind, rows)
    if kind == "struct":
        return _struct(pa, typ, values, counts, types, nulls, rows)
    if kind.startswith("list:"):
        return _list(pa, typ, kind[5:], values, counts, types, nulls, rows)
    if kind == "str":
        return _strings(pa, values, counts, types, _valid(values) if nulls else None, rows, nulls)
    valid = None
    plain = values
    if nulls:  # the present values (a null's place holds zero)
        present = bytes(map(operator.is_not, values, repeat(None)))
        valid = np.frombuffer(present, dtype=np.bool_)
        plain = list(compress(values, present))
    if kind == "f64":
        _only(types, float)
        arr = np.array(plain, dtype=np.float64)
    elif kind == "bool":
        _only(types, bool)
        arr = np.frombuffer(bytes(plain), dtype=np.bool_)  # exact bools are the ints 0 and 1: a byte each, in C
    else:  # i32, i8, ts: exact ints (bools are not), in the type's range
        _only(types, int)
        arr = np.array(plain, dtype=np.int64)  # OverflowError beyond 64 bits: pa.array decides
        lo, hi = _I32 if kind == "i32" else _I8 if kind == "i8" else (None, None)
        if lo is not None and n and (int(arr.min()) < lo or int(arr.max()) > hi):
            raise _Fallback
        arr = arr.astype({"i32": np.int32, "i8": np.int8, "ts": np.int64}[kind], copy=False)
    if valid is not None:
        full = np.zeros(n, dtype=arr.dtype)
        full[valid] = arr
        arr = full
    if counts is not None:
        arr = np.repeat(arr, counts)
        valid = None if valid is None else np.repeat(valid, counts)
    data = np.packbits(arr, bitorder="little") if kind == "bool" else arr
    return pa.Array.from_buffers(typ, rows, [_bitmap(pa, valid), pa.py_buffer(data)],
                                 null_count=_nulls(valid, rows))


def _all_null(pa: Any, typ: Any, kind: str, rows: int) -> Any:
    """``rows`` nulls, laid out as pa.array lays them out (zeros; a struct's children empty text)."""
    none = pa.py_buffer(np.zeros((rows + 7) // 8, dtype=np.uint8))
    if kind == "str" or kind.startswith("list:"):
        offsets = pa.py_buffer(np.zeros(rows + 1, dtype=np.int32))
        if kind == "str":
            return pa.Array.from_buffers(typ, rows, [none, offsets, pa.py_buffer(b"")], null_count=rows)
        child = _build(pa, typ.value_type, kind[5:], [], None)
        return pa.Array.from_buffers(typ, rows, [none, offsets], null_count=rows, children=[child])
    if kind == "struct":
        empty = pa.Array.from_buffers(pa.string(), rows, [None, pa.py_buffer(np.zeros(rows + 1, dtype=np.int32)),
                                                          pa.py_buffer(b"")], null_count=0)
        return pa.Array.from_buffers(typ, rows, [none], null_count=rows, children=[empty] * typ.num_fields)
    width = {"f64": 8, "i32": 4, "i8": 1, "ts": 8, "bool": 0}[kind]
    data = np.zeros((rows + 7) // 8 if kind == "bool" else rows * width, dtype=np.uint8)
    return pa.Array.from_buffers(typ, rows, [none, pa.py_buffer(data)], null_count=rows)


def _total(counts: Sequence[int], n: int) -> int:
    if len(counts) != n or any(type(c) is not int or c < 0 for c in counts):
        raise _Fallback
    return sum(counts)


def _only(types: set[type], t: type) -> None:
    """The values (but None) are exactly of type ``t`` (no subclass: ``True`` is no int here, as ``pa.array``
    would convert what we cannot check the same way)."""
    if types and types != {t}:
        raise _Fallback


def _valid(values: list[Any]) -> Any:
    """Whether each value is not None, as a numpy bool array (``bytes`` of the answers: the bools are the bytes 0
    and 1, made in C; ~15% less than ``np.fromiter``)."""
    return np.frombuffer(bytes(map(operator.is_not, values, repeat(None))), dtype=np.bool_)


def _bitmap(pa: Any, valid: Any) -> Any:
    return None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))


def _nulls(valid: Any, rows: int) -> int:
    return 0 if valid is None else rows - int(np.count_nonzero(valid))


def _strings(pa: Any, values: list[Any], counts: Sequence[int] | None, types: set[type], valid: Any, rows: int,
             nulls: bool) -> Any:
    _only(types, str)
    plain = ["" if v is None else v for v in values] if nulls else values
    joined = "".join(plain)
    if joined.isascii():  # one character a byte: the lengths are the texts' own
        lens = np.fromiter(map(len, plain), dtype=np.int64, count=len(plain))
        if counts is None:
            data = joined.encode("ascii")
        else:
            data = b"".join(map(operator.mul, map(str.encode, plain), counts))
    else:
        enc = list(map(str.encode, plain))  # UnicodeEncodeError (lone surrogates): pa.array decides
        lens = np.fromiter(map(len, enc), dtype=np.int64, count=len(enc))
        data = b"".join(enc) if counts is None else b"".join(map(operator.mul, enc, counts))
    if counts is not None:
        lens = np.repeat(lens, counts)
        valid = None if valid is None else np.repeat(valid, counts)
    offsets = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    if offsets[-1] > _I32[1]:  # more than 2 GiB: pa.array makes a chunked array
        raise _Fallback
    return pa.Array.from_buffers(pa.string(), rows, [_bitmap(pa, valid), pa.py_buffer(offsets.astype(np.int32)),
                                                     pa.py_buffer(data)], null_count=_nulls(valid, rows))


def _shared(values: list[Any]) -> tuple[list[Any], Any] | None:
    """``(distinct, at)`` when the values are few objects shared by many rows (at most one in eight distinct, told
    by identity): the distinct objects in the order they first come and each row's index among them (int64
    numpy array); None otherwise. (The objects' ids sorted by numpy: half the time of dicts of them.)"""
    n = len(values)
    ids = np.fromiter(map(id, values), dtype=np.uint64, count=n)
    uniq, first, at = np.unique(ids, return_index=True, return_inverse=True)
    if len(uniq) * 8 > n:
        return None
    order = np.argsort(first, kind="stable")  # the distinct objects in the order they first come
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return list(map(values.__getitem__, first[order].tolist())), rank[at.reshape(-1)]


def _bits(arr: Any) -> Any:
    """Whether each entry of ``arr`` (unsliced) is valid, as a numpy bool array."""
    n = len(arr)
    bitmap = arr.buffers()[0]
    if bitmap is None:
        return np.ones(n, dtype=np.bool_)
    return np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), count=n, bitorder="little").astype(np.bool_)


def _take(pa: Any, small: Any, at: Any) -> Any:
    """Rows ``at`` of ``small`` (a struct of string children or a string array, unsliced), laid out as the builders
    lay out those rows' values: ``small.take(at)`` without pyarrow.compute (whose import costs ~25 ms)."""
    rows = len(at)
    if pa.types.is_struct(small.type):
        valid = _bits(small)[at] if small.null_count else None
        children = [_take(pa, small.field(k), at) for k in range(small.type.num_fields)]
        return pa.Array.from_buffers(small.type, rows, [_bitmap(pa, valid)], null_count=_nulls(valid, rows),
                                     children=children)
    offs = np.frombuffer(small.buffers()[1], dtype=np.int32, count=len(small) + 1).astype(np.int64)
    data = small.buffers()[2]
    raw = b"" if data is None else data.to_pybytes()
    ends = offs.tolist()
    pieces = [raw[a:b] for a, b in zip(ends, ends[1:])]
    lens = np.diff(offs)[at]
    offsets = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    if offsets[-1] > _I32[1]:
        raise _Fallback
    valid = _bits(small)[at] if small.null_count else None
    return pa.Array.from_buffers(small.type, rows, [_bitmap(pa, valid), pa.py_buffer(offsets.astype(np.int32)),
                                                    pa.py_buffer(_joined(pieces, at))],
                                 null_count=_nulls(valid, rows))


def _joined(pieces: list[bytes], at: Any) -> bytes:
    """``b"".join(pieces[k] for k in at)``: a piece a run of equal indexes (repeated by ``bytes * n``) when the
    rows come in runs (a label column: the same value on most steps), else a piece a row."""
    rows = len(at)
    if rows < 16:
        return b"".join(map(pieces.__getitem__, at.tolist()))
    starts = np.flatnonzero(at[1:] != at[:-1]) + 1
    if 4 * len(starts) > rows:
        return b"".join(map(pieces.__getitem__, at.tolist()))
    bounds = [0, *starts.tolist(), rows]
    return b"".join(map(operator.mul, map(pieces.__getitem__, at[bounds[:-1]].tolist()),
                        map(operator.sub, bounds[1:], bounds[:-1])))


#: numpy dtypes of the fixed-width kinds' data buffers.
_DTYPES = {"f64": np.float64, "i32": np.int32, "i8": np.int8, "ts": np.int64}


def coded(pa: Any, typ: Any, values: list[Any], codes: Any, *, kind: str | None = None) -> Any:
    """``build(pa, typ, [values[c] for c in codes])`` made from the distinct ``values`` alone: their array is
    built once (:func:`build`), then its rows ``codes`` (an int64 numpy array) are taken at the buffer level. The
    parquet export's columns of few distinct values (an episode's label columns: a value per distinct label text)
    cost a few numpy operations and one ``bytes.join`` a column instead of a Python value a row.
    ``tests/exports/test_arrow_build.py`` compares it with :func:`build` of the rows' values.

    Raises:
        Whatever :func:`build` raises for the rows' values.
    """
    kind = kind or kind_of(pa, typ)
    from .base import ESCAPED  # (loaded: the exports' own module)

    before = ESCAPED[0]
    try:
        small = build(pa, typ, values, kind=kind)
    except Exception:  # noqa: BLE001 - a value the column refuses (maybe on no row here): the rows' build decides
        small = None
    if small is None or ESCAPED[0] != before:
        # (Text that is not Unicode escaped: counted a row each, as the rows' build counts it.)
        ESCAPED[0] = before
        return build(pa, typ, list(map(values.__getitem__, codes.tolist())), kind=kind)
    try:
        if kind != "other" and small.offset == 0 and (not len(codes) or 0 <= int(codes.min()) and
                                                      int(codes.max()) < len(values)):
            return _take_any(pa, small, kind, codes)
    except _Fallback:
        pass
    return build(pa, typ, list(map(values.__getitem__, codes.tolist())), kind=kind)


def _take_any(pa: Any, small: Any, kind: str, at: Any) -> Any:
    """Rows ``at`` of ``small`` (an unsliced array of :func:`kind_of` ``kind`` made by these builders)."""
    rows = len(at)
    if kind in ("str", "struct"):
        return _take(pa, small, at)
    valid = _bits(small)[at] if small.null_count else None
    if kind.startswith("list:"):
        offs = np.frombuffer(small.buffers()[1], dtype=np.int32, count=len(small) + 1).astype(np.int64)
        lens = np.diff(offs)[at]
        offsets = np.zeros(rows + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        total = int(offsets[-1])
        if total > _I32[1]:
            raise _Fallback
        # Each row's items: its value's items in the small child, in order.
        items = np.repeat(offs[:-1][at] - offsets[:-1], lens) + np.arange(total, dtype=np.int64)
        child = _take_any(pa, small.values, kind[5:], items)
        return pa.Array.from_buffers(small.type, rows, [_bitmap(pa, valid), pa.py_buffer(offsets.astype(np.int32))],
                                     null_count=_nulls(valid, rows), children=[child])
    if kind == "bool":
        bits = np.unpackbits(np.frombuffer(small.buffers()[1], dtype=np.uint8), count=len(small),
                             bitorder="little")
        data = np.packbits(bits[at], bitorder="little")
    else:
        data = np.frombuffer(small.buffers()[1], dtype=_DTYPES[kind], count=len(small))[at]
    return pa.Array.from_buffers(small.type, rows, [_bitmap(pa, valid), pa.py_buffer(data)],
                                 null_count=_nulls(valid, rows))


def _strings_at(pa: Any, values: list[Any], valid: Any, rows: int) -> Any:
    """A string column of ``rows`` rows holding ``values`` (text or None) in order where ``valid`` is True and
    empty text elsewhere: what :func:`_strings` makes of the values with "" put in those rows."""
    types = set(map(type, values))
    nulls = _NONE in types
    types.discard(_NONE)
    _only(types, str)
    plain = ["" if v is None else v for v in values] if nulls else values
    joined = "".join(plain)
    if joined.isascii():
        lens = np.fromiter(map(len, plain), dtype=np.int64, count=len(plain))
        data = joined.encode("ascii")
    else:
        enc = list(map(str.encode, plain))  # UnicodeEncodeError (lone surrogates): pa.array decides
        lens = np.fromiter(map(len, enc), dtype=np.int64, count=len(enc))
        data = b"".join(enc)
    every = np.zeros(rows, dtype=np.int64)
    every[valid] = lens
    offsets = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(every, out=offsets[1:])
    if offsets[-1] > _I32[1]:
        raise _Fallback
    mask = None
    if nulls:
        mask = np.ones(rows, dtype=np.bool_)
        mask[valid] = _valid(values)
    return pa.Array.from_buffers(pa.string(), rows, [_bitmap(pa, mask), pa.py_buffer(offsets.astype(np.int32)),
                                                     pa.py_buffer(data)], null_count=_nulls(mask, rows))


def _struct(pa: Any, typ: Any, values: list[Any], counts: Sequence[int] | None, types: set[type], nulls: bool,
            rows: int) -> Any:
    names = [typ.field(k).name for k in range(typ.num_fields)]
    _only(types, dict)
    if counts is None and rows >= 64 and not (nulls and values.count(None) * 8 >= 7 * rows):
        # (Mostly nulls: the present values alone, below, cost less than telling the shared ones apart.)
        shared = _shared(values)
        if shared is not None:  # a few maps, each on many rows (a tool call per distinct action)
            distinct, at = shared
            small = _struct(pa, typ, distinct, None, types, nulls, len(distinct))
            return _take(pa, small, at)
    if nulls and counts is None:
        # Mostly nulls (a failure column: a step in ten fails): the children made from the present values alone,
        # spread to their rows ("" under a null struct, as pa.array makes them).
        valid = _valid(values)
        present = list(filter(None, values))
        if len(present) != int(np.count_nonzero(valid)) or set(map(len, present)) - {len(names)}:
            raise _Fallback  # an empty map, other keys: pa.array decides
        children = [_strings_at(pa, list(map(operator.itemgetter(name), present)), valid, rows) for name in names]
        return pa.Array.from_buffers(typ, rows, [_bitmap(pa, valid)], null_count=_nulls(valid, rows),
                                     children=children)
    # A null struct's children hold empty text there, as pa.array makes them.
    empty = dict.fromkeys(names, "")
    filled = [empty if v is None else v for v in values] if nulls else values
    if set(map(len, filled)) - {len(names)}:
        raise _Fallback  # other keys: pa.array decides
    # A missing key (KeyError): pa.array decides.
    children = [_build(pa, pa.string(), "str", list(map(operator.itemgetter(name), filled)), counts) for name in names]
    valid = _valid(values) if nulls else None
    if counts is not None and valid is not None:
        valid = np.repeat(valid, counts)
    return pa.Array.from_buffers(typ, rows, [_bitmap(pa, valid)], null_count=_nulls(valid, rows), children=children)


def _list(pa: Any, typ: Any, inner: str, values: list[Any], counts: Sequence[int] | None, types: set[type],
          nulls: bool, rows: int) -> Any:
    if inner == "f64" and types == {np.ndarray}:
        return _float_arrays(pa, typ, values, counts, nulls)
    _only(types, list)
    if counts is not None:  # not used for lists: expand, then build
        values = list(chain.from_iterable(map(repeat, values, counts)))
    plain = [[] if v is None else v for v in values] if nulls else values
    if not nulls and not any(plain):  # every list empty (steps without recoveries)
        child = _build(pa, typ.value_type, inner, [], None)
        return pa.Array.from_buffers(typ, len(plain), [None, pa.py_buffer(np.zeros(len(plain) + 1, dtype=np.int32))],
                                     null_count=0, children=[child])
    lens = np.fromiter(map(len, plain), dtype=np.int64, count=len(plain))
    offsets = np.zeros(len(plain) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    if offsets[-1] > _I32[1]:
        raise _Fallback
    flat = list(chain.from_iterable(plain))
    child = _build(pa, typ.value_type, inner, flat, None)
    valid = _valid(values) if nulls else None
    return pa.Array.from_buffers(typ, len(values), [_bitmap(pa, valid), pa.py_buffer(offsets.astype(np.int32))],
                                 null_count=_nulls(valid, len(values)), children=[child])


def float_lists(pa: Any, typ: Any, values: list[Any]) -> Any:
    """A ``list<double>`` column from 1-D numpy arrays of ints or floats (or None), each number as
    ``astype(np.float64)`` makes it (``pa.array`` refuses ints a double cannot hold exactly: this is the export's
    own conversion, not a stand-in for ``pa.array``). The parquet export holds ``observation_values`` in the
    observations' own dtype until the column is made (a uint8 image row: 21 KB instead of 170).

    Raises:
        ValueError: a value that is no such array, or more than 2**31 numbers in the column.
    """
    try:
        return _float_arrays(pa, typ, values, None, any(v is None for v in values), cast=True)
    except _Fallback:
        raise ValueError("float_lists takes 1-D numpy arrays of ints or floats, or None") from None


def _float_arrays(pa: Any, typ: Any, values: list[Any], counts: Sequence[int] | None, nulls: bool, *,
                  cast: bool = False) -> Any:
    """A ``list<double>`` column from 1-D float64 numpy arrays (or None; ``cast``: of any int or float dtype): the
    values' buffers joined, no Python float made (the parquet export's ``observation_values``)."""
    if counts is not None:
        values = list(chain.from_iterable(map(repeat, values, counts)))
    present = [v for v in values if v is not None] if nulls else values
    if any(not isinstance(v, np.ndarray) or v.ndim != 1 or (v.dtype.kind not in "iuf" if cast else
                                                            v.dtype != np.float64) for v in present):
        raise _Fallback
    lens = np.fromiter((0 if v is None else v.size for v in values), dtype=np.int64, count=len(values))
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    if offsets[-1] > _I32[1]:
        raise _Fallback
    data = np.concatenate(present, dtype=np.float64, casting="unsafe") if present else np.zeros(0, dtype=np.float64)
    child = pa.Array.from_buffers(typ.value_type, len(data), [None, pa.py_buffer(data)], null_count=0)
    valid = _valid(values) if nulls else None
    return pa.Array.from_buffers(typ, len(values), [_bitmap(pa, valid), pa.py_buffer(offsets.astype(np.int32))],
                                 null_count=_nulls(valid, len(values)), children=[child])


def value_bytes(pa: Any, batch: Any) -> int:
    """The bytes of a record batch's values: text as its UTF-8, list items and struct fields as theirs, fixed-width
    values at their width (a bool a byte), nulls as nothing but their width; no bitmaps, offsets or padding.

    Read from the offsets, never from buffer sizes, so the same rows give the same number however their arrays were
    built, sliced or sent (an Arrow IPC stream from a worker, a slice of a bigger batch): what lets row groups be cut
    by bytes at the same rows in every process. Costs a few operations a column, whatever the rows.
    """
    return sum(_bytes_total(pa, col) for col in batch.columns)


def row_bytes(pa: Any, batch: Any) -> Any:
    """:func:`value_bytes` of each row of ``batch``, as an int64 numpy array."""
    out = np.zeros(batch.num_rows, dtype=np.int64)
    for col in batch.columns:
        out += _bytes_by_row(pa, col)
    return out


def _offsets(arr: Any) -> Any:
    """The ``len(arr) + 1`` offsets of a string or list array, its slice taken into account."""
    return np.frombuffer(arr.buffers()[1], dtype=np.int32, count=len(arr) + 1, offset=arr.offset * 4)


def _width(typ: Any) -> int:
    return max(1, typ.bit_width // 8)


def _layout(pa: Any, typ: Any) -> Any:
    """How :func:`value_bytes` counts a type's values: ``"text"``, ``"list"``, ``"struct"`` or the width of a
    fixed-width value (told once per type: a batch's columns are counted for every batch)."""
    got = _LAYOUTS.get(typ)
    if got is None:
        t = pa.types
        got = ("text" if t.is_string(typ) or t.is_binary(typ) else "list" if t.is_list(typ) else
               "struct" if t.is_struct(typ) else _width(typ))
        if len(_LAYOUTS) < 256:
            _LAYOUTS[typ] = got
    return got


_LAYOUTS: dict[Any, Any] = {}


def _bytes_total(pa: Any, arr: Any) -> int:
    n = len(arr)
    if not n:
        return 0
    typ = arr.type
    layout = _layout(pa, typ)
    if layout == "text":
        offs = _offsets(arr)
        return int(offs[-1]) - int(offs[0])
    if layout == "list":
        offs = _offsets(arr)
        return _bytes_total(pa, arr.values.slice(int(offs[0]), int(offs[-1]) - int(offs[0])))
    if layout == "struct":
        return sum(_bytes_total(pa, arr.field(k)) for k in range(typ.num_fields))
    return n * layout


def _bytes_by_row(pa: Any, arr: Any) -> Any:
    typ, n = arr.type, len(arr)
    t = pa.types
    if not n:
        return np.zeros(0, dtype=np.int64)
    if t.is_string(typ) or t.is_binary(typ):
        return np.diff(_offsets(arr).astype(np.int64))
    if t.is_list(typ):
        offs = _offsets(arr).astype(np.int64)
        start = int(offs[0])
        inner = _bytes_by_row(pa, arr.values.slice(start, int(offs[-1]) - start))
        sums = np.zeros(len(inner) + 1, dtype=np.int64)
        np.cumsum(inner, out=sums[1:])
        return sums[offs[1:] - start] - sums[offs[:-1] - start]
    if t.is_struct(typ):
        out = np.zeros(n, dtype=np.int64)
        for k in range(typ.num_fields):
            out += _bytes_by_row(pa, arr.field(k))
        return out
    return np.full(n, _width(typ), dtype=np.int64)
