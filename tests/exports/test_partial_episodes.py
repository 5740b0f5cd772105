"""Repaired episodes with lost steps are never exported as if whole.

Real Shell episodes in frames of 2 steps are damaged (a flipped byte inside a steps frame) and repaired with
``fsck --repair``, which keeps the readable frames and declares the lost (and salvaged, unverified) steps in the
index. By default every format leaves such an episode out whole, counts it in the report and the dataset card and
names it on stderr; ``--keep-partial`` exports its readable steps with ``complete: false``, the lost ranges and a
per-step ``unverified`` flag. Outputs are read back with the real readers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

from trajrec.recorder import Recorder, fsck, open_episode, read_index
from trajrec.replay.exports import ExportOptions, export
from trajrec.replay.exports.pipeline import FORMATS, PARALLEL_FORMATS, PARTIAL


def _run(folder: Path) -> list[Path]:
    import trajrec.envs  # noqa: F401 - registers the ids
    from trajrec.envs.agents import make_agent
    from trajrec.envs.runner import run_episode

    env = Recorder(gym.make("trajrec/Shell-v0"), folder, frame_steps=2)
    for seed in range(3):
        run_episode(env, make_agent("trajrec/Shell-v0", seed=seed, skill=0.3), seed=seed)
    env.close()
    return sorted(folder.glob("*.msgpack.zst"), key=lambda p: -read_index(p)["steps"])


def _damage_and_repair(path: Path, *, want_unverified: bool) -> Any:
    """Flip a byte of the second frame and repair; try places in the frame until the repair salvaged some steps
    (``want_unverified``) or salvaged none. Returns the fsck report of the repair."""
    orig = path.read_bytes()
    row = read_index(path)["frames"][1]
    # Places spread over the frame first, then every byte: where zstd notices a damaged byte (at its block, or
    # only at the frame's checksum, which salvages every record) depends on how the frame was coded.
    spread = [row[0] + max(6, int((row[3] - row[0]) * k / 20)) for k in range(1, 20)]
    for at in [*spread, *(at for at in range(row[0] + 6, row[3]) if at not in spread)]:
        data = bytearray(orig)
        data[at] ^= 0x5A
        path.write_bytes(bytes(data))
        rep = fsck(path, repair=True)
        for extra in path.parent.glob("*.orig"):
            extra.unlink()
        if rep.lost and bool(rep.unverified) == want_unverified:
            return rep
        path.write_bytes(orig)
    raise AssertionError(f"no place in frame 1 of {path} gave lost steps with unverified={want_unverified}")


@pytest.fixture(scope="module")
def partial_master(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any]:
    run = tmp_path_factory.mktemp("partial") / "run"
    files = _run(run)
    rep = _damage_and_repair(files[0], want_unverified=True)
    return run, files[0], rep


@pytest.fixture
def partial(partial_master: tuple[Path, Path, Any], tmp_path: Path) -> tuple[Path, Path, Any]:
    run, damaged, rep = partial_master
    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    return dst, dst / damaged.name, rep


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("fmt", ["records", "chat", "parquet", "kto", "trl-stepwise"])
def test_partial_episodes_left_out_by_default(partial: tuple[Path, Path, Any], tmp_path: Path, fmt: str,
                                              workers: int) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    assert workers == 1 or fmt in PARALLEL_FORMATS
    run, damaged, _rep = partial
    out = tmp_path / "out"
    report = export([run], fmt, f"{out}/", workers=workers,
                    options=ExportOptions(unlabeled="neutral") if fmt == "trl-stepwise" else None)
    assert report.partial == [str(damaged)]
    assert sum(report.left_out[PARTIAL].values()) == 1
    assert report.episodes == 3 and report.written + sum(sum(v.values()) for v in report.left_out.values()) == 3
    card = (out / "README.md").read_text()
    assert f"| left out: {PARTIAL} | 1 |" in card
    with open_episode(damaged) as ep:
        eid = ep.episode_id
    if fmt == "parquet":
        import pyarrow.parquet as pq

        ids = {i for f in out.glob("*.parquet") for i in pq.read_table(str(f)).column("episode_id").to_pylist()}
    else:
        ids = {json.loads(line).get("episode_id") or json.loads(line).get("trajrec", {}).get("episode_id")
               for line in (out / "data.jsonl").read_text().splitlines()}
    assert eid not in ids


@pytest.mark.parametrize("workers", [1, 2])
def test_keep_partial_records_say_incomplete_lost_and_unverified(partial: tuple[Path, Path, Any], tmp_path: Path,
                                                                 workers: int) -> None:
    run, damaged, rep = partial
    out = tmp_path / "ev.jsonl"
    report = export([run], "records", out, workers=workers, options=ExportOptions(keep_partial=True))
    assert report.partial == [] and report.written == 3 and PARTIAL not in report.left_out
    rows = {r["file"]: r for r in map(json.loads, out.read_text().splitlines())}
    row = rows[damaged.name]
    with open_episode(damaged) as ep:
        lost = [list(x) for x in ep.lost]
        readable = ep.readable_steps
    assert row["complete"] is False and row["lost"] == lost and lost
    assert len(row["steps"]) == readable
    unverified = {i for first, last in rep.unverified for i in range(first, last + 1)}
    assert unverified
    assert {s["i"] for s in row["steps"] if s["unverified"]} == unverified
    for name, other in rows.items():
        if name != damaged.name:
            assert other["complete"] is True and other["lost"] == []
            assert not any(s["unverified"] for s in other["steps"])


def test_keep_partial_parquet_and_to_arrow_flag_steps(partial: tuple[Path, Path, Any], tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    from trajrec import open_run

    run, damaged, rep = partial
    out = tmp_path / "steps.parquet"
    export([run], "parquet", out, options=ExportOptions(keep_partial=True))
    table = pq.read_table(str(out))
    unverified = {i for first, last in rep.unverified for i in range(first, last + 1)}
    with open_episode(damaged) as ep:
        eid = ep.episode_id
    rows = [r for r in table.to_pylist() if r["episode_id"] == eid]
    assert rows and all(r["complete"] is False for r in rows)
    assert {r["step"] for r in rows if r["unverified"]} == unverified
    assert all(r["complete"] and not r["unverified"] for r in table.to_pylist() if r["episode_id"] != eid)
    arrow = open_run(run).to_arrow()
    assert arrow.schema.remove_metadata() == table.schema.remove_metadata()
    got = {(r["episode_id"], r["step"]): (r["complete"], r["unverified"]) for r in arrow.to_pylist()}
    assert got == {(r["episode_id"], r["step"]): (r["complete"], r["unverified"]) for r in table.to_pylist()}


def test_keep_partial_chat_rows_carry_the_lost_ranges(partial: tuple[Path, Path, Any], tmp_path: Path) -> None:
    run, damaged, _rep = partial
    out = tmp_path / "chat.jsonl"
    export([run], "chat", out, options=ExportOptions(keep_partial=True))
    with open_episode(damaged) as ep:
        eid, lost = ep.episode_id, [list(x) for x in ep.lost]
    metas = {r["trajrec"]["episode_id"]: r["trajrec"] for r in map(json.loads, out.read_text().splitlines())}
    assert metas[eid]["complete"] is False and metas[eid]["lost"] == lost
    assert all(m["complete"] is True and m["lost"] == [] for k, m in metas.items() if k != eid)


def test_cli_names_the_partial_file_and_the_option(partial: tuple[Path, Path, Any], tmp_path: Path) -> None:
    run, damaged, _rep = partial
    cmd = [sys.executable, "-m", "trajrec", "export", str(run), "--format", "records"]
    proc = subprocess.run(cmd + ["--out", str(tmp_path / "a.jsonl")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert str(damaged) in proc.stderr and "--keep-partial" in proc.stderr
    assert f"1 (0 passed, 0 failed, 1 " in proc.stderr or f": {PARTIAL}" in proc.stderr
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 2
    proc = subprocess.run(cmd + ["--out", str(tmp_path / "b.jsonl"), "--keep-partial"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert str(damaged) not in proc.stderr
    assert len((tmp_path / "b.jsonl").read_text().splitlines()) == 3


def test_every_format_knows_the_option() -> None:
    assert "records" in FORMATS and ExportOptions().keep_partial is False


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "parquet"])
def test_partition_by_refused_for_formats_without_partitions(partial: tuple[Path, Path, Any], tmp_path: Path,
                                                             fmt: str) -> None:
    from trajrec.recorder.errors import TrajrecUsageError

    run, _damaged, _rep = partial
    with pytest.raises(TrajrecUsageError, match="only --format parquet writes partitions"):
        export([run], fmt, f"{tmp_path / 'api'}/", options=ExportOptions(partition_by="split"))
    out = tmp_path / "cli"
    proc = subprocess.run([sys.executable, "-m", "trajrec", "export", str(run), "--format", fmt, "--out", f"{out}/",
                           "--partition-by", "split"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "--format parquet --out DIR --partition-by split" in proc.stderr and "--where 'split=train'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not out.exists()


def test_a_file_that_is_no_episode_is_not_counted_as_one(partial: tuple[Path, Path, Any], tmp_path: Path) -> None:
    run, _damaged, _rep = partial
    notes = run / "notes.msgpack.zst"
    notes.write_text("these are my notes, not a recording\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "trajrec", "export", str(run), "--format", "records", "--out",
                           f"{out}/", "--keep-partial"], capture_output=True, text=True, timeout=120)
    assert str(notes) in proc.stderr and "not a trajrec episode" in proc.stderr
    assert "--repair" not in proc.stderr and "fsck" not in proc.stderr
    assert "left out 1 file that is not an episode" in proc.stderr and "left out 1 episode" not in proc.stderr
    assert "exported 3 episodes" in proc.stderr
    assert "| left out: not episode files | 1 | - |" in (out / "README.md").read_text()
    report = export([run], "records", tmp_path / "api.jsonl", options=ExportOptions(keep_partial=True))
    assert report.episodes == 3 and report.left_out == {"not episode files": {"unknown": 1}}


def test_atif_to_one_file_takes_workers(partial: tuple[Path, Path, Any], tmp_path: Path) -> None:
    from trajrec.recorder.errors import TrajrecUsageError

    run, _damaged, _rep = partial
    one = export([run], "atif", tmp_path / "one.jsonl", options=ExportOptions(keep_partial=True))
    two = export([run], "atif", tmp_path / "two.jsonl", workers=2, options=ExportOptions(keep_partial=True))
    assert two.written == one.written == 3
    assert (tmp_path / "two.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
    docs = [json.loads(x) for x in (tmp_path / "two.jsonl").read_text().splitlines()]
    assert all(d["schema_version"].startswith("ATIF") for d in docs)
    with pytest.raises(TrajrecUsageError, match=r"atif to a folder writes a file per episode \(--out FILE.jsonl"):
        export([run], "atif", f"{tmp_path / 'docs'}/", workers=2)


def test_damaged_file_messages_say_ls_reads_only_the_index(partial: tuple[Path, Path, Any],
                                                           tmp_path: Path) -> None:
    run, _damaged, _rep = partial
    whole = sorted(p for p in run.glob("*.msgpack.zst") if p != _damaged)[0]
    row = read_index(whole)["frames"][0]
    data = bytearray(whole.read_bytes())
    data[(row[0] + row[3]) // 2] ^= 0x5A  # inside its first frame; the index stays intact
    whole.write_bytes(bytes(data))
    ls = subprocess.run([sys.executable, "-m", "trajrec", "ls", "--help"], capture_output=True, text=True)
    assert "index" in ls.stdout and "`trajrec fsck PATH`" in ls.stdout and "checks every frame" in ls.stdout
    for cmd in (["export", str(run), "--format", "records", "--out", str(tmp_path / "x.jsonl")],
                ["report", str(run)]):
        proc = subprocess.run([sys.executable, "-m", "trajrec", *cmd], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1
        line = next(x for x in proc.stderr.splitlines() if str(whole) in x)
        assert "`trajrec ls` may still list it" in line, line


def test_keep_partial_atif_and_trl_stepwise_mark_the_repaired_file(partial: tuple[Path, Path, Any],
                                                                   tmp_path: Path) -> None:
    """FINDINGS29 #1: atif and trl-stepwise carry ``complete``, ``lost`` and ``unverified`` as records do, and the
    atif export counts the steps it wrote (the readable ones), as trl-stepwise does."""
    run, damaged, rep = partial
    opts = ExportOptions(keep_partial=True, unlabeled="neutral")
    with open_episode(damaged) as ep:
        eid, lost, readable = ep.episode_id, [list(x) for x in ep.lost], ep.readable_steps
    unverified = {i for first, last in rep.unverified for i in range(first, last + 1)}
    a = export([damaged], "atif", tmp_path / "a.jsonl", options=opts)
    t = export([damaged], "trl-stepwise", tmp_path / "t.jsonl", options=opts)
    assert a.steps == t.steps == readable
    doc = json.loads((tmp_path / "a.jsonl").read_text())
    own = doc["extra"]["trajrec"]
    assert own["episode_id"] == eid and own["complete"] is False and own["lost"] == lost
    steps = [s["extra"]["trajrec"] for s in doc["steps"] if s["source"] == "agent"]
    assert len(steps) == readable
    assert {s["step"] for s in steps if s.get("unverified")} == unverified
    row = json.loads((tmp_path / "t.jsonl").read_text())
    assert row["complete"] is False and row["lost"] == lost
    assert {i for i, u in zip(row["steps"], row["unverified"]) if u} == unverified
