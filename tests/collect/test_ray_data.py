"""Parquet shards of an export read in Ray Data (and DuckDB), the way a cluster pipeline takes them.

Heavy (starts a local Ray): ``pip install -e '.[ray,test]' && python -m pytest -m heavy tests/collect``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from trajrec.replay.exports import ExportOptions, export

SAMPLES = Path(__file__).resolve().parents[2] / "sample_runs"


@pytest.mark.heavy
def test_ray_data_reads_the_parquet_shards(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install -e '.[ray]'")
    runs = tmp_path / "runs"
    shutil.copytree(SAMPLES, runs, ignore=shutil.ignore_patterns(".trajrec"))
    out = tmp_path / "steps"
    report = export([runs], "parquet", out, options=ExportOptions(shard_rows=10, partition_by="env"))
    shards = sorted(out.rglob("*.parquet"))
    assert len(shards) > 4  # several shards per env partition
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        ds = ray.data.read_parquet(str(out))
        assert ds.count() == report.steps
        rows = ds.filter(lambda r: r["failure"] is not None).take_all()
        assert rows and all(r["failure"]["kind"] for r in rows)
        assert set(ds.unique("env_id")) == {"trajrec/CodeRepair-v0", "trajrec/MathCalc-v0", "trajrec/Shell-v0",
                                              "trajrec/SupportTicket-v0"}
    finally:
        ray.shutdown()
    duckdb = pytest.importorskip("duckdb")
    n = duckdb.sql(f"select count(*) from read_parquet('{out}/**/*.parquet', hive_partitioning=true)").fetchall()[0][0]
    assert n == report.steps
