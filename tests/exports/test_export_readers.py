"""Every export read back by the readers people use, unchanged: ``datasets``, ``pyarrow``, Polars and DuckDB.

* records: loads in all four with one stable row shape; every number exact (JSON-text fields decode to the
  recorded values, typed times are the recorded floats), also for a run mixing text envs and CartPole.
* lossless JSON (issue 11): dict keys that plain JSON would merge (``1`` and ``"1"``, ``None`` and ``"null"``) and
  ints beyond 64 bits, through every format, read back with ``datasets``.
* parquet: shards of different runs, envs and label maps union in DuckDB, Polars and ``datasets`` with no type
  error and no changed value; ``Run.to_arrow()`` is the export's schema and rows.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from trajrec import open_run
from trajrec.recorder import Recorder, open_episode
from trajrec.replay.exports import ExportOptions, export, episode_files
from trajrec.replay.exports.encode import dumps
from trajrec.replay.labels import LabelStore


def plain(value: Any) -> Any:
    """A recorded value as JSON data would hold it (numpy arrays as lists, tuples as lists)."""
    return json.loads(dumps(value))


class _Rows(list):  # type: ignore[type-arg]
    def to_list(self) -> list[Any]:
        return list(self)


def hf(kind: str, files: Any, tmp: Path) -> Any:
    """The rows ``datasets`` loads, read row by row (``Dataset.to_list()`` of datasets 4.7 leaves ``Json``
    columns as text; indexing decodes them in every version)."""
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset(kind, data_files=files, split="train", cache_dir=str(tmp / "hf"))
    return _Rows(ds[i] for i in range(ds.num_rows))


# -- records -----------------------------------------------------------------------------------------------------


def test_records_load_unchanged_in_every_reader(builtin_run: Path, cartpole_run: Path, tmp_path: Path) -> None:
    pj = pytest.importorskip("pyarrow.json")
    pl = pytest.importorskip("polars")
    duckdb = pytest.importorskip("duckdb")
    out = tmp_path / "records.jsonl"
    rep = export([builtin_run, cartpole_run], "records", out)
    mine = [json.loads(line) for line in out.read_text().splitlines()]
    assert rep.written == len(mine) == 24 + 3
    readers = {
        "datasets": hf("json", str(out), tmp_path).to_list(),
        "pyarrow.json": pj.read_json(out).to_pylist(),
        "polars": pl.read_ndjson(out).to_dicts(),
        "duckdb": [dict(zip([d[0] for d in rel.description], row)) for rel in
                   [duckdb.sql(f"select * from read_json('{out}')")] for row in rel.fetchall()],
    }
    for name, rows in readers.items():
        assert len(rows) == len(mine), name
        for got, want in zip(rows, mine):
            assert got["episode_id"] == want["episode_id"], name
            assert got["task"] == want["task"] and got["reset"]["observation"] == want["reset"]["observation"]
            for gs, ws in zip(got["steps"], want["steps"], strict=True):
                assert (gs["observation"], gs["action"], gs["reward"], gs["time"], gs["duration"]) == (
                    ws["observation"], ws["action"], ws["reward"], ws["time"], ws["duration"]), name
    # The file's values are the recorded ones, exactly (CartPole's float32 observations included).
    by_id = {r["episode_id"]: r for r in mine}
    checked = 0
    for f in episode_files([builtin_run, cartpole_run]):
        with open_episode(f) as ep:
            row = by_id[ep.episode_id]
            for rec, st in zip((ep.record(i) for i in range(len(ep))), row["steps"], strict=True):
                assert json.loads(st["observation"]) == plain(rec["observation"])
                assert json.loads(st["action"]) == plain(rec["action"])
                assert st["time"] == rec["time"] and st["duration"] == rec["duration"]
                checked += 1
    assert checked == rep.steps


# -- lossless JSON ---------------------------------------------------------------------------------------------

TOOLS = [{"type": "function", "function": {"name": "put", "description": "Store values.",
                                           "parameters": {"type": "object", "properties": {}}}}]
HOSTILE = {1: "int one", "1": "text one", None: "none", "null": "text null", "$1": "dollar one",
           "big": 2**70, "small": -(2**65), "fine": 2**63 - 1}
ENCODED = {"$1": "int one", "1": "text one", "$null": "none", "null": "text null", "$$1": "dollar one",
           "big": {"$int": str(2**70)}, "small": {"$int": str(-(2**65))}, "fine": 2**63 - 1}


class HostileEnv(gym.Env):
    """Observations and tool-call arguments whose keys collide once turned into JSON text, and huge ints."""

    metadata = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Text(100)
        self.action_space = gym.spaces.Text(100)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return "Store the values.", {"task": {"id": "hostile", "text": "Store the values.", "split": "train"},
                                     "tools": TOOLS}

    def step(self, action: Any):
        return dict(HOSTILE), 2**70, True, False, {"counts": {1: 1, "1": 2}}


def test_colliding_keys_and_huge_ints_survive_every_format(tmp_path: Path) -> None:
    run = tmp_path / "run"
    env = Recorder(HostileEnv(), run)
    for seed in (0, 1):  # two attempts at one task: dpo pairs them
        env.reset(seed=seed)
        env.step({"tool": "put", "args": dict(HOSTILE)})
    env.close()
    store = LabelStore(run)
    for n, eid in enumerate(sorted(e.episode_id for e in open_run(run))):
        store.add(eid, 0, 1, judge="human:ana")
        store.add(eid, "episode", 1 if n == 0 else -1, judge="human:ana")
    seen = {}
    for fmt in ("records", "chat", "trl-stepwise", "kto", "dpo"):
        out = tmp_path / f"{fmt}.jsonl"
        export([run], fmt, out)
        text = out.read_text()
        assert str(2**70) in text and "2361183241434822606848," not in text  # big ints only as marked strings
        seen[fmt] = hf("json", str(out), tmp_path / fmt).to_list()  # 'Value is too big' before the marker
    rec = seen["records"][0]
    assert json.loads(rec["steps"][0]["observation"]) == ENCODED  # 8 of 8 values, no key lost
    assert json.loads(rec["steps"][0]["reward"]) == {"$int": str(2**70)}
    assert json.loads(rec["steps"][0]["info"]) == {"counts": {"$1": 1, "1": 2}}
    chat = seen["chat"][0]["messages"]
    assert chat[1]["tool_calls"][0]["function"]["arguments"] == ENCODED
    assert json.loads(seen["chat"][0]["trajrec"]["final_observation"]) == ENCODED
    assert json.loads(seen["trl-stepwise"][0]["completions"][0]) == {"tool": "put", "args": ENCODED}
    assert seen["kto"][0]["completion"][0]["tool_calls"][0]["function"]["arguments"] == ENCODED
    assert seen["dpo"][0]["chosen"][0]["tool_calls"][0]["function"]["arguments"] == ENCODED
    import pyarrow.parquet as pq

    export([run], "parquet", tmp_path / "s.parquet")
    row = pq.read_table(tmp_path / "s.parquet").to_pylist()[0]
    assert json.loads(row["observation"]) == ENCODED and json.loads(row["tool_call"]["arguments"]) == ENCODED
    assert row["reward"] == float(2**70)  # the typed column is a double; the text columns keep it exact


# -- parquet ---------------------------------------------------------------------------------------------------


def test_parquet_shards_of_different_runs_envs_and_label_maps_union(builtin_run: Path, cartpole_run: Path,
                                                                    tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    pl = pytest.importorskip("polars")
    duckdb = pytest.importorskip("duckdb")
    a = export([builtin_run], "parquet", tmp_path / "a", options=ExportOptions(
        label_map="strict", shard_rows=25, partition_by="env"))
    b = export([cartpole_run], "parquet", tmp_path / "b", options=ExportOptions(label_map="float", shard_rows=40))
    c = export([builtin_run], "parquet", tmp_path / "c.parquet", options=ExportOptions(label_map="unit"))
    files = sorted([*(tmp_path / "a").rglob("*.parquet"), *(tmp_path / "b").rglob("*.parquet"),
                    tmp_path / "c.parquet"])
    assert len(files) > 4 and all(f.name.startswith("part-") for f in files if f.name != "c.parquet")
    assert {p.name for p in (tmp_path / "a").iterdir()} == {"README.md", "env=trajrec_MathCalc-v0",
                                                             "env=trajrec_Shell-v0", "env=trajrec_SupportTicket-v0"}
    assert all(pq.ParquetFile(f).metadata.num_rows <= 40 for f in files if f.name != "c.parquet")
    want = [r for f in files for r in pq.read_table(f).to_pylist()]
    assert len(want) == a.rows + b.rows + c.rows
    maps = {pq.read_schema(f).metadata[b"trajrec.label_map"] for f in files}
    assert maps == {b"strict", b"float", b"unit"}

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r["episode_id"], r["step"], r["label_judge"] or "", -9 if r["label"] is None else r["label"])

    names = ", ".join(f"'{f}'" for f in files)
    rel = duckdb.sql(f"select * from read_parquet([{names}])")
    cols = [d[0] for d in rel.description]
    got_duck = [dict(zip(cols, row)) for row in rel.fetchall()]
    got_polars = pl.concat([pl.read_parquet(f) for f in files]).to_dicts()
    got_hf = hf("parquet", [str(f) for f in files], tmp_path).to_list()
    for name, got in (("duckdb", got_duck), ("polars", got_polars), ("datasets", got_hf)):
        assert len(got) == len(want), name
        for g, w in zip(sorted(got, key=key), sorted(want, key=key)):
            for col in ("label", "label_rating", "label_score", "reward", "observation", "observation_values",
                        "episode_return", "step", "tool_call", "failure"):
                gv, wv = g[col], w[col]
                assert gv == wv or (isinstance(wv, float) and math.isnan(wv)), (name, col, gv, wv)
            assert _micros(g["time"]) == _micros(w["time"]), name
    # CartPole's observations as numbers, exactly (float32 values as doubles), beside their text.
    cp = [r for r in want if r["env_id"] == "CartPole-v1"]
    assert cp and all(r["observation_values"] == json.loads(r["observation"]) for r in cp)


def _micros(t: Any) -> int:
    import datetime

    if isinstance(t, datetime.datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=datetime.timezone.utc)
        return round(t.timestamp() * 1_000_000)
    if hasattr(t, "timestamp"):  # pandas Timestamp
        return round(t.timestamp() * 1_000_000)
    raise AssertionError(f"not a timestamp: {t!r}")


def test_run_to_arrow_is_the_parquet_export(builtin_run: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    export([builtin_run], "parquet", tmp_path / "s.parquet", options=ExportOptions(label_map="lenient"))
    written = pq.read_table(tmp_path / "s.parquet")
    table = open_run(builtin_run).to_arrow(label_map="lenient")
    assert table.schema.equals(written.schema, check_metadata=False)
    assert table.schema.metadata[b"trajrec.format"] == written.schema.metadata[b"trajrec.format"]
    assert sorted(table.to_pylist(), key=lambda r: (r["episode_id"], r["step"])) == sorted(
        written.to_pylist(), key=lambda r: (r["episode_id"], r["step"]))


def test_numeric_observations_list_column() -> None:
    from trajrec.replay.exports.parquet import numeric_values

    assert numeric_values(np.array([[1, 2], [3, 4]], dtype=np.float32)) == [1.0, 2.0, 3.0, 4.0]
    assert numeric_values({"a": 1}) is None and numeric_values([1, [2]]) is None and numeric_values(2**70) is None


def test_parquet_folder_output_rules(builtin_run: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from trajrec.recorder import TrajrecUsageError
    from trajrec.replay.exports.parquet import schema

    # No row to a folder: no folder (datasets cannot load one of no rows); to a file: the schema.
    rep = export([builtin_run], "parquet", tmp_path / "none", where=["steps>100000"])
    assert rep.written == 0 and rep.files == [] and not (tmp_path / "none").exists()
    rep = export([builtin_run], "parquet", tmp_path / "none.parquet", where=["steps>100000"])
    assert rep.written == 0 and pq.read_schema(tmp_path / "none.parquet").equals(schema(), check_metadata=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("x")
    with pytest.raises(TrajrecUsageError, match="is a folder that is not empty; name a new or empty folder"):
        export([builtin_run], "parquet", tmp_path / "full")
    with pytest.raises(TrajrecUsageError, match="parquet is a binary format; pass --out FILE.parquet or --out DIR"):
        export([builtin_run], "parquet", "-")
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary folder left behind
