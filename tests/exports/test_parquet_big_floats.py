"""parquet's `observation_values`: a float observation is a number whatever its size (1e20 as a scalar was null,
while the same value in a 1-element array was kept)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyarrow")

from trajrec.replay.exports.parquet import _numeric_array  # noqa: E402


@pytest.mark.parametrize("value", [1e19, 1e20, -1e20, np.float64(1e20), 1e300, float("inf")])
def test_a_float_of_any_size_is_a_number(value: float) -> None:
    got = _numeric_array(value)
    assert got is not None and got.tolist() == _numeric_array(np.array([value])).tolist() == [float(value)]


def test_ints_beyond_int64_and_nan_stay_null() -> None:
    assert _numeric_array(2**70) is None and _numeric_array(float("nan")) is None
    assert _numeric_array(2**63 - 1).tolist() == [float(2**63 - 1)]
