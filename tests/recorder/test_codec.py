from __future__ import annotations

import math
import socket
import warnings
from collections import OrderedDict
from enum import IntEnum

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trajrec.recorder import CodecWarning, Unencodable
from trajrec.recorder.format import packb, unpackb

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**100), max_value=2**100)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text() | st.binary())
keys = st.text(max_size=8) | st.integers(-5, 5)
values = st.recursive(
    scalars,
    lambda children: (st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=5)
                      | st.tuples(children, children)),
    max_leaves=30,
)


def same(a, b) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


@settings(max_examples=300, deadline=None)
@given(values)
def test_round_trip_plain_values(value):
    assert same(unpackb(packb(value)), value)


dtypes = st.sampled_from(["<f4", "<f8", "<i1", "<i8", "<u2", "|b1", "<c16", "<U3", "|S2"])


@settings(max_examples=150, deadline=None)
@given(dtypes, st.lists(st.integers(0, 4), min_size=0, max_size=3), st.data())
def test_round_trip_numpy(dtype, shape, data):
    n = int(np.prod(shape)) if shape else 1
    raw = data.draw(st.binary(min_size=n * np.dtype(dtype).itemsize, max_size=n * np.dtype(dtype).itemsize))
    arr = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    out = unpackb(packb(arr))
    assert out.dtype == arr.dtype and out.shape == arr.shape
    assert out.tobytes() == arr.tobytes()
    scalar = arr.reshape(-1)[0] if n else None
    if scalar is not None and not isinstance(scalar, (np.bool_, np.str_, np.bytes_)):
        back = unpackb(packb(scalar))
        assert type(back) is type(scalar) and back.tobytes() == scalar.tobytes()
    elif isinstance(scalar, np.bytes_):
        assert unpackb(packb(scalar)) == scalar.item()


def test_numpy_string_scalars_become_plain_strings():
    assert unpackb(packb([np.str_("héllo"), np.str_(""), np.bytes_(b"x")])) == ["héllo", "", b"x"]


def test_special_values():
    value = {"nan": float("nan"), "inf": -math.inf, "big": 2**200, "neg": -(2**70), "t": (1, (2, "x")),
             "s": {1, 2}, "fs": frozenset({"a"}), "b": b"\x00\xff", "u": "héllo ☃ \U0001F600",
             "od": OrderedDict(a=1), "bool": np.bool_(True), "obj": np.array([1, "x", None], dtype=object),
             (1, 2): "tuple key"}
    out = unpackb(packb(value))
    assert math.isnan(out["nan"]) and out["inf"] == -math.inf
    assert out["big"] == 2**200 and out["neg"] == -(2**70)
    assert out["t"] == (1, (2, "x")) and isinstance(out["t"][1], tuple)
    assert out["s"] == {1, 2} and out["fs"] == frozenset({"a"}) and isinstance(out["fs"], frozenset)
    assert out["b"] == b"\x00\xff" and out["u"] == "héllo ☃ \U0001F600"
    assert out["od"] == {"a": 1} and out["bool"] is True
    assert list(out["obj"]) == [1, "x", None] and out[(1, 2)] == "tuple key"


def test_complex_numbers_round_trip_exactly_and_a_bad_payload_is_refused():
    import msgpack

    from trajrec.recorder.codec import EXT_COMPLEX

    class Z(complex):
        pass

    values = [1 + 2j, complex(-0.0, -0.0), complex(math.inf, math.nan), Z(3, 4), {"k": 0j}]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a value, not a fallback: no CodecWarning
        out = unpackb(packb(values))
    assert [type(v) for v in out[:4]] == [complex] * 4 and out[0] == 1 + 2j and out[3] == 3 + 4j
    assert math.copysign(1, out[1].real) == -1 and math.copysign(1, out[1].imag) == -1
    assert out[2].real == math.inf and math.isnan(out[2].imag) and out[4] == {"k": 0j}
    evil = msgpack.packb(msgpack.ExtType(EXT_COMPLEX, packb(["1", 2.0])))
    with pytest.raises(ValueError, match="complex payload holds str and float"):
        unpackb(evil)


def test_subclasses_are_stored_as_their_base_value():
    class Color(IntEnum):
        RED = 3

    assert unpackb(packb([Color.RED])) == [3]


def test_unencodable_value_becomes_marked_fallback_with_one_warning():
    import trajrec.recorder.codec as codec

    codec._warned_types.discard("socket.socket")
    s = socket.socket()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = unpackb(packb({"sock": s, "again": s}))
        assert isinstance(out["sock"], Unencodable)
        assert out["sock"].type == "socket.socket" and "socket" in out["sock"].repr
        assert len([w for w in caught if issubclass(w.category, CodecWarning)]) == 1
        # and the fallback survives a re-encode unchanged (fsck --repair re-encodes records)
        assert unpackb(packb(out))["sock"] == out["sock"]
    finally:
        s.close()


def test_object_dtype_payload_in_raw_array_is_refused():
    import msgpack

    from trajrec.recorder.codec import EXT_NDARRAY

    evil = msgpack.packb(msgpack.ExtType(EXT_NDARRAY, packb(["|O", [1], b"\x00" * 8])))
    with pytest.raises(ValueError, match="object dtype"):
        unpackb(evil)


def test_array_payload_prefixes_follow_dtype_and_shape():
    # The encoder caches each plain array's payload prefix by (dtype, shape): arrays that differ only in byte
    # order, unit, width or shape, in any order, read back exactly.
    import numpy as np

    from trajrec.recorder.format import new_packer, unpackb

    packer = new_packer()
    arrays = [np.arange(4, dtype="<i4"), np.arange(4, dtype=">i4"), np.arange(4, dtype="<i8"),
              np.arange(4, dtype="<i4").reshape(2, 2), np.zeros(4, dtype="M8[s]"), np.zeros(4, dtype="M8[ms]"),
              np.array(["ab", "c", "d", "e"]), np.array([b"ab", b"c", b"d", b"e"]), np.zeros(4, dtype="<f2")]
    for _ in range(2):  # the second pass hits the cache
        for a in arrays:
            b = unpackb(packer.pack({"o": a}))["o"]
            assert b.dtype == a.dtype and b.dtype.str == a.dtype.str and b.shape == a.shape
            assert b.tobytes() == a.tobytes()
