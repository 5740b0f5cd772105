"""The export encoding never lets two recorded keys, or a recorded dict and a marker, come out as the same JSON:
non-finite float keys and None, a tuple and a frozenset, a recorded {"$bytes": ...} and bytes; and ints beyond 64
bits inside sets keep their marker (docs/EXPORT.md, "JSON: exact or explicit")."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.json as pj

from trajrec import Recorder
from trajrec.cli import main
from trajrec.replay.exports.encode import dumps

KEYS = {float("nan"): "nan", None: "none", float("inf"): "inf", float("-inf"): "-inf", (1,): "tuple",
        frozenset({1}): "frozenset", 1: "int", "1": "text", 1.0: "float?", -0.0: "negative zero"}


def test_no_two_keys_share_a_name() -> None:
    out = json.loads(dumps(KEYS))
    # 1 and 1.0 are one key in a Python dict already; every other key keeps its own name and value
    assert len(out) == len(KEYS)
    assert sorted(out.values()) == sorted(KEYS.values())


def test_recorded_dicts_shaped_like_markers_are_told_apart() -> None:
    recorded = {"$bytes": "01"}
    assert json.loads(dumps(recorded)) != json.loads(dumps(b"\x01"))
    assert json.loads(dumps({"$int": "5"})) == {"$$int": "5"}
    assert json.loads(dumps(b"\x01")) == {"$bytes": "01"}  # the marker itself is unchanged


def test_big_ints_inside_sets_keep_their_marker() -> None:
    assert json.loads(dumps({2**70})) == [{"$int": str(2**70)}]
    assert json.loads(dumps({"ids": frozenset({-2**64})})) == {"ids": [{"$int": str(-2**64)}]}
    assert json.loads(dumps([{(1.5, 2**63)}])) == [[[1.5, {"$int": str(2**63)}]]]


class _Env:
    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        return "start", {}

    def step(self, action):  # type: ignore[no-untyped-def]
        return dict(KEYS), 0.0, True, False, {"$bytes": "01", "ids": {2**70}}


def test_a_records_export_keeps_every_key_and_reads_with_pyarrow(tmp_path: Path) -> None:
    env = Recorder(_Env(), tmp_path / "run")
    env.reset(seed=0)
    env.step(0)
    env.close()
    out = tmp_path / "r.jsonl"
    assert main(["export", str(tmp_path / "run"), "--format", "records", "--out", str(out)]) == 0
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    step = row["steps"][0]
    assert len(json.loads(step["observation"])) == len(KEYS)
    assert json.loads(step["info"]) == {"$$bytes": "01", "ids": [{"$int": str(2**70)}]}
    assert pj.read_json(out).num_rows == 1


def test_a_built_row_with_a_nan_keeps_its_markers_as_they_are() -> None:
    """A row an export built (values through `exact`) that also holds a NaN takes the strict pass without escaping
    the markers its values carry a second time."""
    from trajrec.replay.exports.encode import dumps_built, exact

    row = {"a": exact(b"x"), "b": exact({"$bytes": "01"}), "r": float("nan"), "l": [exact({2**70})]}
    assert json.loads(dumps_built(row)) == {"a": {"$bytes": "78"}, "b": {"$$bytes": "01"}, "r": None,
                                            "l": [[{"$int": str(2**70)}]]}
