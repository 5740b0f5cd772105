"""``export --workers N``: the same output as one process, for every format that splits, on real recorded runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trajrec.recorder.errors import TrajrecUsageError
from trajrec.replay.exports import ExportOptions, export
from trajrec.replay.exports import parallel
from trajrec.replay.exports.parallel import batches
from trajrec.replay.exports.pipeline import PARALLEL_FORMATS
from trajrec.replay.exports.source import Source


def _with_bad_files(run: Path) -> Path:
    """The run plus a file that is no episode and one that holds nothing, in the middle of the listing."""
    (run / "shell" / "Shell-v0-0-not-an-episode.msgpack.zst").write_bytes(b"not an episode at all")
    (run / "mathcalc" / "MathCalc-v0-0-empty.msgpack.zst").write_bytes(b"")
    return run


def _report(rep: object) -> dict:
    d = rep.to_dict()  # type: ignore[attr-defined]
    for key in ("seconds", "steps_per_second", "out", "files"):
        d.pop(key)
    return d


@pytest.fixture(autouse=True)
def every_batch_to_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small runs would be done by the exporting process before a worker is up (its head start): send every
    batch to the pool, so the tests see the workers' output (the CLI tests keep the head start)."""
    monkeypatch.setattr(parallel, "HEAD_START", False)


@pytest.mark.parametrize("fmt", [f for f in PARALLEL_FORMATS if f != "parquet"])
def test_workers_write_the_same_jsonl_bytes_and_report(builtin_run: Path, tmp_path: Path, fmt: str) -> None:
    run = _with_bad_files(builtin_run)
    opts = ExportOptions(unlabeled="false")
    assert len(batches(Source([run]).listed, 2)) > 2  # several batches, so the order is really put back together
    one = export([run], fmt, tmp_path / "one.jsonl", options=opts, workers=1)
    two = export([run], fmt, tmp_path / "two.jsonl", options=opts, workers=2)
    data = (tmp_path / "one.jsonl").read_bytes()
    assert one.written > 10 and data.count(b"\n") == one.rows
    assert (tmp_path / "two.jsonl").read_bytes() == data
    assert _report(two) == _report(one)
    assert [Path(p).name for p, _ in two.errors] == ["Shell-v0-0-not-an-episode.msgpack.zst"]


def test_workers_filters_and_skips_count_as_one_process(builtin_run: Path, tmp_path: Path) -> None:
    where = ["outcome=passed"]
    one = export([builtin_run], "trl-stepwise", tmp_path / "one.jsonl", where=where, workers=1)
    two = export([builtin_run], "trl-stepwise", tmp_path / "two.jsonl", where=where, workers=2)
    assert one.left_out and _report(two) == _report(one)
    assert (tmp_path / "two.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()


def test_workers_write_the_same_parquet_shards(builtin_run: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    from trajrec.replay.exports import parquet

    monkeypatch.setattr(parquet, "_BATCH", 5)  # row groups end mid-episode (the workers encode with their own size)
    run = _with_bad_files(builtin_run)
    opts = ExportOptions(shard_rows=7, partition_by="env")  # several shards per env, cut mid-episode
    one = export([run], "parquet", tmp_path / "one", options=opts, workers=1)
    two = export([run], "parquet", tmp_path / "two", options=opts, workers=2)
    shards = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.parquet"))
    assert len(shards) > 5 and shards == sorted(p.relative_to(tmp_path / "two")
                                                for p in (tmp_path / "two").rglob("*.parquet"))
    for shard in shards:
        a, b = pq.ParquetFile(tmp_path / "one" / shard), pq.ParquetFile(tmp_path / "two" / shard)
        assert a.metadata.num_row_groups == b.metadata.num_row_groups
        assert a.read().equals(b.read())
    assert _report(two) == _report(one) and one.steps == sum(pq.ParquetFile(tmp_path / "one" / s).metadata.num_rows
                                                             for s in shards)
    # one file: the same bytes
    export([run], "parquet", tmp_path / "one.parquet", workers=1)
    export([run], "parquet", tmp_path / "two.parquet", workers=2)
    assert pq.ParquetFile(tmp_path / "one.parquet").metadata.num_row_groups > 10
    assert (tmp_path / "one.parquet").read_bytes() == (tmp_path / "two.parquet").read_bytes()


def test_workers_refused_for_formats_across_episodes(builtin_run: Path, tmp_path: Path) -> None:
    with pytest.raises(TrajrecUsageError, match="workers=2: dpo pairs .* pass workers=1"):
        export([builtin_run], "dpo", tmp_path / "x.jsonl", workers=2)
    with pytest.raises(TrajrecUsageError, match="workers=2: atif to a folder writes a file per episode"):
        export([builtin_run], "atif", f"{tmp_path / 'x'}/", workers=2)  # to one file it takes --workers
    with pytest.raises(TrajrecUsageError, match="workers= is a number of processes"):
        export([builtin_run], "records", tmp_path / "x.jsonl", workers=0)
    assert not list(tmp_path.glob("x.jsonl*")) and not list(tmp_path.glob(".x.jsonl*"))


def test_cli_workers_reports_bad_files_and_progress_as_one_process(builtin_run: Path, tmp_path: Path) -> None:
    run = _with_bad_files(builtin_run)
    outs = []
    for w in ("1", "2"):
        proc = subprocess.run([sys.executable, "-m", "trajrec", "export", str(run), "--format", "chat", "--out",
                               str(tmp_path / f"{w}.jsonl"), "--workers", w, "--json"],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1, proc.stderr  # a file was skipped
        assert "skipped" in proc.stderr and "Shell-v0-0-not-an-episode.msgpack.zst" in proc.stderr
        rep = json.loads(proc.stdout)
        outs.append((rep["written"], rep["steps"], rep["errors"][0]["path"]))
    assert outs[0] == outs[1]
    assert (tmp_path / "1.jsonl").read_bytes() == (tmp_path / "2.jsonl").read_bytes()


def test_workers_to_stdout(builtin_run: Path) -> None:
    outs = [subprocess.run([sys.executable, "-m", "trajrec", "export", str(builtin_run), "--format", "records",
                            "--out", "-", "--workers", w], capture_output=True, timeout=120) for w in ("1", "2")]
    assert outs[0].returncode == 0 and outs[0].stdout.count(b"\n") > 10
    assert outs[1].stdout == outs[0].stdout


def test_head_start_then_workers_give_the_same_bytes(builtin_run: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The exporting process does batches itself until a worker is up, then hands the rest to the pool."""
    monkeypatch.setattr(parallel, "HEAD_START", True)
    asked = []

    def up_after_two_batches(starter):  # type: ignore[no-untyped-def]
        asked.append(1)
        if len(asked) > 2:
            starter.pool().apply(parallel.os.getpid)  # the pool is up: every later batch goes to the workers
            return True
        return False

    monkeypatch.setattr(parallel, "_worker_up", up_after_two_batches)
    one = export([builtin_run], "records", tmp_path / "one.jsonl", workers=1)
    two = export([builtin_run], "records", tmp_path / "two.jsonl", workers=2)
    assert len(asked) == 3 and len(batches(Source([builtin_run]).listed, 2)) > 3  # 2 batches here, the rest there
    assert (tmp_path / "two.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
    assert _report(two) == _report(one)
