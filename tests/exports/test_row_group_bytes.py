"""Parquet row groups bounded by bytes as well as rows: the same cuts, values and bytes with ``--workers`` as in one
process, the rows where groups end as a one-row-at-a-time rule with its own byte count says, and runs whose row
groups stay under the bounds written exactly as when groups were cut by rows alone."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from trajrec.recorder import Recorder  # noqa: E402
from trajrec.replay.exports import ExportOptions, export, parallel  # noqa: E402
from trajrec.replay.exports import parquet  # noqa: E402
from trajrec.replay.exports.arrow_build import build, float_lists, row_bytes, value_bytes  # noqa: E402


class _WideEnv(gym.Env):
    """Observations of every width: short and long text (some not ASCII), images of several dtypes, nothing."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Text(max_length=100_000)
        self.action_space = gym.spaces.Discrete(3)
        self.rng = np.random.default_rng(7)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        self.seed = seed or 0
        return "start", {"task": {"id": f"wide-{seed}", "split": "train" if (seed or 0) % 2 else "test"}}

    def step(self, action: int):
        self.t += 1
        pick = int(self.rng.integers(0, 6))
        size = int(self.rng.integers(1, 40))
        obs: Any = [
            lambda: "é" * int(self.rng.integers(0, 3000)),
            lambda: "x" * int(self.rng.integers(0, 20)),
            lambda: self.rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
            lambda: self.rng.random(size * 7).astype(np.float32),
            lambda: np.arange(size, dtype=np.int64) * (2**40),
            lambda: None,
        ][pick]()
        info: dict[str, Any] = {"error": "boom"} if pick == 5 else {}
        if self.t == 5:  # the env's own check of step 4: a rating, or +inf (an env's value, recorded as given)
            info["checks"] = [{"value": 1 if self.seed % 3 else float("inf"), "judge": "rule@1", "kind": "rule"}]
        return obs, 0.5, False, self.t >= 9, info


@pytest.fixture(scope="module")
def wide_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wide") / "run"
    env = Recorder(_WideEnv(), out, agent="wide")
    for seed in range(14):
        env.reset(seed=seed)
        for k in range(9):
            env.step(k % 3)
    env.close()
    return out


_WIDTH = {"double": 8, "int32": 4, "int8": 1, "bool": 1, "timestamp[us, tz=UTC]": 8}


def _value_size(typ: Any, v: Any) -> int:
    """Bytes of one value, counted from Python values (independently of the export's count from Arrow offsets)."""
    if pa.types.is_string(typ):
        return 0 if v is None else len(v.encode("utf-8"))
    if pa.types.is_list(typ):
        return 0 if v is None else sum(_value_size(typ.value_type, x) for x in v)
    if pa.types.is_struct(typ):
        return 0 if v is None else sum(_value_size(typ.field(k).type, v.get(typ.field(k).name))
                                       for k in range(typ.num_fields))
    return _WIDTH[str(typ)]


def _groups_one_row_at_a_time(rows: list[tuple[Any, ...]], max_rows: int, max_bytes: int) -> list[int]:
    schema = parquet.schema()
    sizes = [sum(_value_size(f.type, v) for f, v in zip(schema, row)) for row in rows]
    out, n, size = [], 0, 0
    for s in sizes:
        n, size = n + 1, size + s
        if n >= max_rows or size >= max_bytes:
            out.append(n)
            n, size = 0, 0
    return out + ([n] if n else [])


@pytest.fixture
def small_bounds(monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """Row groups of at most 40 rows or 60 KB, record batches of 8 rows or 9 KB (this process: the one that cuts),
    and every batch to the pool, so the workers' rows are the ones cut."""
    monkeypatch.setattr(parquet, "_BATCH", 40)
    monkeypatch.setattr(parquet, "_GROUP_BYTES", 60_000)
    monkeypatch.setattr(parquet, "_CHUNK", 8)
    monkeypatch.setattr(parquet, "_CHUNK_BYTES", 9_000)
    monkeypatch.setattr(parquet, "_HELD_BYTES", 5_000)
    monkeypatch.setattr(parallel, "HEAD_START", False)
    return 40, 60_000


def test_groups_end_where_rows_added_one_at_a_time_end_them(wide_run: Path, tmp_path: Path,
                                                            small_bounds: tuple[int, int]) -> None:
    from trajrec.replay.run import open_run

    export([wide_run], "parquet", tmp_path / "one.parquet", options=ExportOptions(unlabeled="false"))
    rows = [tuple(r.values()) for r in open_run(wide_run).steps()]
    want = _groups_one_row_at_a_time(rows, *small_bounds)
    meta = pq.ParquetFile(tmp_path / "one.parquet").metadata
    got = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
    assert got == want
    assert len(got) > 4 and any(n < small_bounds[0] for n in got[:-1])  # some groups were ended by their bytes
    schema = parquet.schema()
    table = pq.read_table(tmp_path / "one.parquet")
    expected = pa.Table.from_arrays([pa.array([r[k] for r in rows], type=f.type) for k, f in enumerate(schema)],
                                    schema=schema)
    assert table.cast(schema).equals(expected)


def test_workers_cut_the_same_groups_and_write_the_same_bytes(wide_run: Path, tmp_path: Path,
                                                              small_bounds: tuple[int, int]) -> None:
    one = export([wide_run], "parquet", tmp_path / "one.parquet", workers=1)
    two = export([wide_run], "parquet", tmp_path / "two.parquet", workers=2)
    assert one.steps == two.steps == 14 * 9
    a, b = pq.ParquetFile(tmp_path / "one.parquet"), pq.ParquetFile(tmp_path / "two.parquet")
    bounds = [[a.metadata.row_group(g).num_rows for g in range(a.metadata.num_row_groups)],
              [b.metadata.row_group(g).num_rows for g in range(b.metadata.num_row_groups)]]
    assert bounds[0] == bounds[1] and len(bounds[0]) > 4
    for g in range(a.metadata.num_row_groups):
        assert a.read_row_group(g).equals(b.read_row_group(g))
    assert (tmp_path / "one.parquet").read_bytes() == (tmp_path / "two.parquet").read_bytes()
    # shards and partitions too
    opts = ExportOptions(shard_rows=50, partition_by="split")
    export([wide_run], "parquet", tmp_path / "d1", options=opts, workers=1)
    export([wide_run], "parquet", tmp_path / "d2", options=opts, workers=2)
    files = sorted(p.relative_to(tmp_path / "d1") for p in (tmp_path / "d1").rglob("*.parquet"))
    assert len(files) > 2
    assert files == sorted(p.relative_to(tmp_path / "d2") for p in (tmp_path / "d2").rglob("*.parquet"))
    for f in files:
        assert (tmp_path / "d1" / f).read_bytes() == (tmp_path / "d2" / f).read_bytes()


def test_runs_under_the_bounds_are_written_as_when_cut_by_rows_alone(wide_run: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parquet, "_BATCH", 30)
    monkeypatch.setattr(parquet, "_CHUNK", 8)
    export([wide_run], "parquet", tmp_path / "bounded.parquet")  # the real bounds, far above this run's rows
    meta = pq.ParquetFile(tmp_path / "bounded.parquet").metadata
    assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups)] == [30, 30, 30, 30, 6]
    for name, value in (("_GROUP_BYTES", 1 << 60), ("_CHUNK_BYTES", 1 << 60), ("_HELD_BYTES", 1 << 60)):
        monkeypatch.setattr(parquet, name, value)
    export([wide_run], "parquet", tmp_path / "rows.parquet")  # cut by rows alone
    # rows made Arrow a few at a time (pieces joined into batches of 8 rows): the same batches, the same pages
    monkeypatch.setattr(parquet, "_HELD_BYTES", 3_000)
    export([wide_run], "parquet", tmp_path / "pieces.parquet")
    data = (tmp_path / "rows.parquet").read_bytes()
    assert (tmp_path / "bounded.parquet").read_bytes() == data
    assert (tmp_path / "pieces.parquet").read_bytes() == data


def test_value_bytes_count_values_however_the_arrays_were_made() -> None:
    typ = parquet.schema()
    rows = {"s": ["a", None, "é" * 5, ""], "l": [[1.0], None, [2.0, 3.0], []],
            "st": [{"kind": "x", "message": "yy"}, None, {"kind": "é", "message": None}, None],
            "tags": [["ab"], [], None, ["c", "dé"]], "i": [1, None, 3, 4]}
    types = {"s": pa.string(), "l": pa.list_(pa.float64()), "st": typ.field("failure").type,
             "tags": pa.list_(pa.string()), "i": pa.int32()}
    made = pa.RecordBatch.from_arrays([build(pa, types[k], v) for k, v in rows.items()], names=list(rows))
    general = pa.RecordBatch.from_arrays([pa.array(v, type=types[k]) for k, v in rows.items()], names=list(rows))
    want = [1 + 8 + 3 + 2 + 4, 0 + 0 + 0 + 0 + 4, 10 + 16 + 2 + 0 + 4, 0 + 0 + 0 + 4 + 4]
    for batch in (made, general):
        assert row_bytes(pa, batch).tolist() == want
        assert value_bytes(pa, batch) == sum(want)
        for start, length in ((1, 3), (2, 1), (0, 0), (3, 1)):
            part = batch.slice(start, length)
            assert row_bytes(pa, part).tolist() == want[start:start + length]
            assert value_bytes(pa, part) == sum(want[start:start + length])


def test_float_lists_are_the_numbers_as_float64() -> None:
    values = [np.uint8([1, 255]), None, np.int64([-(2**62) - 1, 7]), np.float32([1.5, np.nan, -0.0]),
              np.zeros(0, np.int16), np.uint64([2**64 - 1])]
    typ = pa.list_(pa.float64())
    got = float_lists(pa, typ, values).to_pylist()
    assert [g is None for g in got] == [v is None for v in values]
    for g, v in zip(got, values):
        if v is not None:
            assert np.array_equal(np.array(g, dtype=np.float64), v.astype(np.float64), equal_nan=True)
    with pytest.raises(ValueError):
        float_lists(pa, typ, [np.array(["a"])])
    with pytest.raises(ValueError):
        float_lists(pa, typ, [np.zeros((2, 2))])


def test_an_infinite_check_value_is_no_rating_as_it_is_no_label(wide_run: Path, tmp_path: Path) -> None:
    """FINDINGS5 #20: +inf read as rating +1 (its sign) beside a null label and score."""
    export([wide_run], "parquet", tmp_path / "x.parquet", options=ExportOptions(unlabeled="false"))
    rows = pq.read_table(tmp_path / "x.parquet").to_pylist()
    judged = [r for r in rows if r["label_judge"] == "rule@1"]
    inf = [r for r in judged if r["label_value"] == "null"]
    one = [r for r in judged if r["label_value"] == "1"]
    assert len(inf) == 5 and len(one) == 9
    assert all(r["label"] is None and r["label_rating"] is None and r["label_score"] is None for r in inf)
    assert all(r["label"] == 1.0 and r["label_rating"] == 1 for r in one)
