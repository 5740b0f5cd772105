"""x87 extended precision (``np.longdouble`` on x86): 10 bytes of number in 16, the rest whatever the memory held.
Equal values must be stored as equal bytes and be the same operation to the failure/retry classifier."""

from __future__ import annotations

import numpy as np
import pytest

from trajrec.recorder.classify import default_action_key
from trajrec.recorder.codec import array_bytes
from trajrec.recorder.format import packb, unpackb

X87 = np.finfo(np.longdouble).nmant == 63 and np.dtype(np.longdouble).itemsize in (12, 16)
pytestmark = pytest.mark.skipif(not X87, reason="np.longdouble is not x87 extended precision on this machine")


def _with_padding(values, dtype, fill: int):
    """An array of ``values`` whose padding bytes hold ``fill`` (as memory left there would)."""
    a = np.array(values, dtype=dtype)
    half = a.dtype.itemsize // (2 if a.dtype.kind == "c" else 1)
    raw = a.view(np.uint8).reshape(-1, half)
    raw[:, 10:] = fill
    return a


@pytest.mark.parametrize("dtype", [np.longdouble, np.clongdouble])
def test_equal_values_are_stored_as_equal_bytes_and_read_back_equal(dtype):
    a, b = _with_padding([1.5, -0.0, 1e300], dtype, 0xAB), _with_padding([1.5, -0.0, 1e300], dtype, 0x17)
    assert a.tobytes() != b.tobytes()  # the padding differs; the numbers do not
    assert packb(a) == packb(b)
    assert packb(a[0]) == packb(b[0])  # a scalar too
    assert packb(a) == packb(a)  # the array's cached route gives the same bytes the second time
    back = unpackb(packb(a))
    assert back.dtype == a.dtype and np.array_equal(back, a) and np.array_equal(np.signbit(back.real),
                                                                              np.signbit(a.real))
    assert unpackb(packb(a[2])) == a[2]


def test_other_dtypes_keep_every_byte():
    a = np.array([1.5, 2.5], dtype=np.float64)
    assert array_bytes(a) == a.tobytes()
    s = np.array([(1, 2.0)], dtype=[("i", "<i4"), ("f", "<f8")])
    assert unpackb(packb(s)).tobytes() == s.tobytes()


def test_the_action_key_of_equal_arrays_is_the_same():
    a, b = _with_padding([3.0], np.longdouble, 0x01), _with_padding([3.0], np.longdouble, 0xFE)
    assert default_action_key(a) == default_action_key(b)
    assert default_action_key(a) != default_action_key(np.array([4.0], dtype=np.longdouble))
    # object arrays: their raw bytes are addresses; two equal arrays are the same operation
    o1 = np.array([[int("1000001"), "open " + "file".strip()]], dtype=object)
    o2 = np.array([[int("1000001"), "open " + "file".strip()]], dtype=object)  # equal elements, other addresses
    assert o1.tobytes() != o2.tobytes()
    assert default_action_key(o1) == default_action_key(o2)
    assert default_action_key(o1) != default_action_key(np.array([[2, "open file"]], dtype=object))
