"""Parquet keeps apart what the recording keeps apart: a None action or observation is null, not the "" an empty
text is; and a float observation is a number whatever its size (1e20 was null in `observation_values` while the
same value in a one-element array was kept). The same for `Run.to_arrow()`, which builds the same columns."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trajrec import Recorder, open_run
from trajrec.replay.exports import export

pq = pytest.importorskip("pyarrow.parquet")

# (observation, its observation_values)
OBS: list[tuple[Any, list[float] | None]] = [
    (1e19, [1e19]), (1e20, [1e20]), (-1e20, [-1e20]), (np.float64(1e20), [1e20]), (np.array([1e20]), [1e20]),
    (float("inf"), [math.inf]), (float("nan"), [math.nan]), (np.array([math.nan]), [math.nan]),
    (None, None), ("", None), (3, [3.0]), (2**70, None),
]
ACTIONS: list[Any] = [None, "", "null", 0, "0", None, "", "x", None, "", 1, 2]
WANT_ACTIONS = [None, "", "null", "0", "0", None, "", "x", None, "", "1", "2"]


class _Env:
    def reset(self, *, seed: Any = None, options: Any = None) -> tuple[str, dict[str, Any]]:
        self.t = 0
        return "start", {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs = OBS[self.t][0]
        self.t += 1
        return obs, 0.0, self.t == len(OBS), False, {}


def _same(a: list[float] | None, b: list[float] | None) -> bool:
    if a is None or b is None:
        return a is b
    return len(a) == len(b) and all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b))


def test_none_is_null_and_floats_of_any_size_are_numbers(tmp_path: Path) -> None:
    env = Recorder(_Env(), tmp_path / "run")
    env.reset(seed=0)
    for a in ACTIONS:
        env.step(a)
    env.close()
    export([tmp_path / "run"], "parquet", tmp_path / "x.parquet")
    tables = {"parquet": pq.read_table(tmp_path / "x.parquet"), "to_arrow": open_run(tmp_path / "run").to_arrow()}
    for name, table in tables.items():
        cols = table.to_pydict()
        assert cols["action"] == WANT_ACTIONS, name
        assert [o is None for o in cols["observation"]] == [o is None for o, _ in OBS], name
        assert cols["observation"][9] == "" and OBS[9][0] == ""
        for (obs, want), got in zip(OBS, cols["observation_values"]):
            assert _same(got, want), (name, obs, got)
