"""The parquet export's Arrow arrays built from buffers (``replay/exports/arrow_build.py``) against ``pa.array``,
its row groups against rows added one at a time, and what the export process loads (no pandas)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from trajrec.replay.exports import ExportOptions, export  # noqa: E402
from trajrec.replay.exports import parquet  # noqa: E402
from trajrec.replay.exports.arrow_build import build, kind_of  # noqa: E402


class Text(str):
    pass


STRUCT = pa.struct([("name", pa.string()), ("arguments", pa.string())])
#: Per type: the values the export makes, and hostile ones it never makes (the builders must hand those to
#: pa.array, never accept them differently).
POOLS: dict[Any, list[Any]] = {
    pa.string(): ["", "a", "plain ascii text", "é", "日本語", "🙂 emoji", "\x00nul", None, None, "\ud800", 1,
                  b"x", Text("sub"), 1.5],
    pa.float64(): [0.0, -0.0, 1.5, -2.25e300, 5e-324, float("nan"), float("inf"), None, None, 1, True, "1.5",
                   np.float64(2.5), 2**70],
    pa.int32(): [0, 1, -1, 2**31 - 1, -(2**31), None, None, 2**31, -(2**31) - 1, 2**70, True, 1.0, "1",
                 np.int64(3)],
    pa.int8(): [0, 1, -1, 127, -128, None, 128, -129, False],
    pa.bool_(): [True, False, None, None, 1, 0, "x", np.bool_(True)],
    pa.timestamp("us", tz="UTC"): [0, 1_700_000_000_000_000, -5, None, 2**63 - 1, 2**63, 1.5, True],
    STRUCT: [{"name": "cat", "arguments": "{}"}, {"name": "é", "arguments": None}, None, None,
             {"name": "x"}, {"name": "a", "arguments": "b", "extra": "c"}, {"name": 1, "arguments": "b"}, "s",
             {"arguments": "a", "name": "b"}, {"name": "x", "other": "y"}, {}, {"name": "\ud800", "arguments": "x"},
             None, {"name": "日本", "arguments": "é"}],
    pa.list_(pa.float64()): [[], [1.0, 2.5], [float("nan")], None, None, [1], [None, 1.0], ["a"], (1.0,),
                             [[1.0]]],
    pa.list_(pa.int32()): [[], [1, 2], None, [2**31], [True], [None]],
    pa.list_(pa.string()): [[], ["a", "é"], None, [None], ["x", 1], [Text("t")]],
}


def _escaped(v: Any) -> Any:
    if isinstance(v, str):
        return v.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(v, dict):
        return {_escaped(k): _escaped(x) for k, x in v.items()}
    return [_escaped(x) for x in v] if isinstance(v, list) else v


def _reference(typ: Any, values: list[Any]) -> tuple[str, Any]:
    try:
        try:
            return "ok", pa.array(values, type=typ)
        except UnicodeEncodeError:  # lone surrogates: written as their \udcXX escapes (docs/EXPORT.md)
            return "ok", pa.array([_escaped(v) for v in values], type=typ)
    except Exception as exc:  # noqa: BLE001 - the test compares what each path raises
        return type(exc).__name__, None


def _mine(typ: Any, values: list[Any], counts: list[int] | None = None) -> tuple[str, Any]:
    try:
        return "ok", build(pa, typ, values, counts)
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__, None


def _same(a: Any, b: Any) -> None:
    assert a.type == b.type and len(a) == len(b) and a.null_count == b.null_count
    a.validate(full=True)
    if pa.types.is_timestamp(a.type):  # to_pylist makes datetimes: some of these ints are out of their range
        a, b = a.view(pa.int64()), b.view(pa.int64())
    # equals() says NaN != NaN: the values' JSON text (NaN, -0.0 spelled out) where it disagrees
    assert a.equals(b) or json.dumps(a.to_pylist(), default=repr) == json.dumps(b.to_pylist(), default=repr)
    assert json.dumps(a.to_pylist(), default=repr) == json.dumps(b.to_pylist(), default=repr)
    if pa.types.is_struct(a.type):  # the children too, null rows included (what the writer sees)
        for k in range(a.type.num_fields):
            assert a.field(k).to_pylist() == b.field(k).to_pylist()


def test_builders_match_pa_array_on_hostile_columns() -> None:
    rng = random.Random(15)
    for typ, pool in POOLS.items():
        for _ in range(300):
            values = [rng.choice(pool) for _ in range(rng.randint(0, 12))]
            status, want = _reference(typ, values)
            got_status, got = _mine(typ, values)
            assert got_status == status, (typ, values)
            if status == "ok":
                _same(got, want)
            counts = [rng.randint(0, 3) for _ in values]
            expanded = [v for v, c in zip(values, counts) for _ in range(c)]
            status, want = _reference(typ, expanded)
            got_status, got = _mine(typ, values, counts)
            if status == "ok":
                assert got_status == "ok", (typ, values, counts)
                _same(got, want)
            else:  # only values that reach the array can make it fail
                assert got_status == status, (typ, expanded)


def test_builders_take_the_usual_values_without_pa_array(monkeypatch: pytest.MonkeyPatch) -> None:
    """The values an export's columns hold go through the buffers (pa.array would import pandas)."""
    usual = {
        pa.string(): ["a", "é", None, "", "🙂"],
        pa.float64(): [0.0, 1.5, None, -0.0, float("inf")],
        pa.int32(): [0, -(2**31), 2**31 - 1, None],
        pa.int8(): [-1, 0, 1, None],
        pa.bool_(): [True, False, None],
        pa.timestamp("us", tz="UTC"): [0, None, 2**62],
        STRUCT: [{"name": "a", "arguments": "{}"}, None, {"name": None, "arguments": "é"}],
        pa.list_(pa.float64()): [[1.0, 2.0], None, []],
        pa.list_(pa.int32()): [[1, 2], []],
        pa.list_(pa.string()): [["a", "é"], []],
    }
    want = {t: pa.array(v, type=t) for t, v in usual.items()}
    twice = {t: pa.array([x for x in v for _ in range(2)], type=t) for t, v in usual.items()}
    monkeypatch.setattr(pa, "array", lambda *a, **k: pytest.fail("pa.array called"))
    for typ, values in usual.items():
        assert kind_of(pa, typ) != "other"
        _same(build(pa, typ, values), want[typ])
        _same(build(pa, typ, values, [2] * len(values)), twice[typ])


def test_open_writer_writes_what_pyarrow_parquet_writes(builtin_run: Path, cartpole_run: Path,
                                                        tmp_path: Path) -> None:
    from trajrec.replay.run import open_run

    table = pa.concat_tables([open_run(builtin_run).to_arrow(), open_run(cartpole_run).to_arrow()])
    assert table.num_rows > 40 and table.column("failure").null_count < table.num_rows
    w = parquet.open_writer(str(tmp_path / "a.parquet"), table.schema, pa.system_memory_pool())
    w.write_table(table.slice(0, 20))
    w.write_table(table.slice(20))
    w.close()
    with pq.ParquetWriter(str(tmp_path / "b.parquet"), table.schema, compression="zstd", use_dictionary=False) as w:
        w.write_table(table.slice(0, 20))
        w.write_table(table.slice(20))
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def _row_groups_one_row_at_a_time(rows: list[tuple[Any, ...]], key_of: Any, batch: int, shard_rows: int
                                  ) -> dict[str, list[list[tuple[Any, ...]]]]:
    """The rule the export follows, one row at a time: a partition's rows close a row group at ``batch`` rows or
    where its shard (``shard_rows``) ends. Returns shard name -> its row groups."""
    pending: dict[str, list[Any]] = {}
    shard: dict[str, tuple[int, int]] = {}  # key -> (number, rows in it)
    out: dict[str, list[list[Any]]] = {}
    for row in rows:
        key = key_of(row)
        pending.setdefault(key, []).append(row)
        number, have = shard.get(key, (0, 0))
        if len(pending[key]) >= min(batch, shard_rows - have):
            out.setdefault(f"{key}/part-{number:05d}", []).append(pending.pop(key))
            have += len(out[f"{key}/part-{number:05d}"][-1])
            shard[key] = (number + 1, 0) if have >= shard_rows else (number, have)
    for key, rest in pending.items():
        number, _ = shard.get(key, (0, 0))
        out.setdefault(f"{key}/part-{number:05d}", []).append(rest)
    return out


@pytest.mark.parametrize("batch,chunk,shard_rows", [(5, 2, 7), (8, 3, 1000), (4, 4, 3), (7, 1024, 11)])
def test_row_groups_and_values_as_rows_added_one_at_a_time(builtin_run: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch, batch: int,
                                                            chunk: int, shard_rows: int) -> None:
    from trajrec.replay.run import open_run

    monkeypatch.setattr(parquet, "_BATCH", batch)
    monkeypatch.setattr(parquet, "_CHUNK", chunk)
    opts = ExportOptions(shard_rows=shard_rows, partition_by="env")
    rep = export([builtin_run], "parquet", tmp_path / "out", options=opts)
    run = open_run(builtin_run)
    rows = [tuple(r.values()) for r in run.steps()]  # the general path: rows, then pa.array
    env = parquet.COLUMNS.index("env_id")
    want = _row_groups_one_row_at_a_time(rows, lambda r: f"env={r[env].replace('/', '_')}", batch, shard_rows)
    files = sorted((tmp_path / "out").rglob("*.parquet"))
    assert rep.steps == len(rows) > 20 and len(files) == len(want)
    schema = parquet.schema()
    for f in files:
        name = f"{f.parent.name}/{f.stem}"
        meta = pq.ParquetFile(f).metadata
        assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups)] == [len(g) for g in want[name]]
        expected = pa.Table.from_arrays([pa.array(list(c), type=t.type) for c, t in
                                         zip(zip(*[r for g in want[name] for r in g]), schema)], schema=schema)
        assert pq.read_table(f).cast(schema).equals(expected)


def test_export_process_loads_no_pandas_and_uses_the_system_allocator(builtin_run: Path, tmp_path: Path) -> None:
    """What keeps the export's memory down: checked in a fresh process (pandas is installed here)."""
    code = (
        "import sys, json\n"
        "from trajrec.replay.exports import export\n"
        f"export([{str(builtin_run)!r}], 'parquet', {str(tmp_path / 'a.parquet')!r})\n"
        "import pyarrow as pa\n"
        "print(json.dumps([sorted(m for m in sys.modules if m.split('.')[0] == 'pandas' or m == 'pyarrow.fs'),"
        " pa.default_memory_pool().backend_name]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [[], "system"]
    # the user's own choice of allocator wins
    env = {**__import__("os").environ, "ARROW_DEFAULT_MEMORY_POOL": "jemalloc"}
    code2 = code.replace("a.parquet", "b.parquet")
    out = subprocess.run([sys.executable, "-c", code2], capture_output=True, text=True, check=True, env=env).stdout
    assert json.loads(out)[1] in ("jemalloc", "mimalloc")  # mimalloc where pyarrow was built without jemalloc
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_float_arrays_build_what_lists_of_floats_build() -> None:
    """``observation_values`` is held as float64 numpy arrays (8 bytes a number, not a Python float): the column
    is the one ``pa.array`` builds from the same numbers as lists, nulls, NaN and counts included."""
    from trajrec.replay.exports.parquet import _numeric_array, numeric_values

    rng = np.random.default_rng(3)
    obs = [np.float32([1.5, np.nan, -0.0]), None, np.arange(6, dtype=np.int64).reshape(2, 3), None,
           rng.random((4, 4)), np.zeros(0), [[1, 2], [3, 4]], 7]
    arrays = [_numeric_array(o) for o in obs]
    lists = [numeric_values(o) for o in obs]
    typ = pa.list_(pa.float64())
    got, want = build(pa, typ, arrays), pa.array(lists, type=typ)
    _same(got, want)
    counts = [2, 0, 1, 3, 1, 1, 2, 1]
    expanded = [v for v, c in zip(lists, counts) for _ in range(c)]
    _same(build(pa, typ, arrays, counts), pa.array(expanded, type=typ))
    recorded = np.float64([[1, 2], [3, 4]])
    assert not np.shares_memory(_numeric_array(recorded), recorded)  # a copy, never a view of the recorded array


def test_observation_values_of_a_masked_array_are_null_where_values_are_masked() -> None:
    from trajrec.replay.exports.parquet import numeric_values

    assert numeric_values(np.ma.array([1, 2, 3], mask=[0, 1, 0])) is None  # 2 is under the mask: no value
    assert numeric_values(np.ma.array([1, 2, 3])) == [1.0, 2.0, 3.0]


def test_columns_of_shared_maps_match_pa_array() -> None:
    """A struct column whose rows share a few map objects (the parquet export's tool calls: one per distinct
    action) is made from the distinct maps and spread to the rows: the array pa.array makes, the same nulls and
    children (null rows included), and pa.array's error or fallback for maps it refuses."""
    rng = random.Random(21)
    pool = POOLS[STRUCT]
    took = 0
    for _ in range(120):
        objs = [rng.choice(pool) for _ in range(rng.randint(1, 6))]
        values = [rng.choice(objs) for _ in range(rng.randint(64, 700))]
        status, want = _reference(STRUCT, values)
        got_status, got = _mine(STRUCT, values)
        assert got_status == status, values[:3]
        if status == "ok":
            _same(got, want)
            took += 1
    assert took > 20


def test_shared_maps_take_no_pa_array(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = [{"name": "cat", "arguments": '{"path": "a"}'}, {"name": "é", "arguments": None}, None]
    values = [calls[k % 3] for k in range(300)]
    want = pa.array(values, type=STRUCT)
    monkeypatch.setattr(pa, "array", lambda *a, **k: pytest.fail("pa.array called"))
    _same(build(pa, STRUCT, values), want)


def test_coded_columns_match_the_rows_build() -> None:
    """``coded`` (distinct values and each row's index: the parquet export's label columns) makes what ``build``
    makes of the rows' values, or raises what it raises: hostile pools of every type, indexes in runs (a label on
    most steps) and scattered, a value on no row, no rows; lone surrogates counted a row each as the rows count."""
    from trajrec.replay.exports import base
    from trajrec.replay.exports.arrow_build import coded

    rng = random.Random(10)
    for typ, pool in POOLS.items():
        for case in range(200):
            values = [rng.choice(pool) for _ in range(rng.randint(1, 6))]
            n = rng.choice([0, 1, 5, 40, 300])
            if case % 2:  # runs: the same value on many rows in a row
                codes: list[int] = []
                while len(codes) < n:
                    codes += [rng.randrange(len(values))] * rng.randint(1, 30)
                codes = codes[:n]
            else:
                codes = [rng.randrange(len(values)) for _ in range(n)]
            rows = [values[c] for c in codes]
            base.ESCAPED[0] = 0
            want_status, want = _mine(typ, rows)
            want_escaped = base.ESCAPED[0]
            base.ESCAPED[0] = 0
            try:
                got_status, got = "ok", coded(pa, typ, values, np.array(codes, dtype=np.int64))
            except Exception as exc:  # noqa: BLE001 - compared with what build raises
                got_status, got = type(exc).__name__, None
            assert got_status == want_status, (typ, values, codes)
            if want_status == "ok":
                _same(got, want)
                assert base.ESCAPED[0] == want_escaped, (typ, values, codes)
    base.ESCAPED[0] = 0
