"""Env steps a failed write kept out of the file (disk full, a file-size limit) are never exported as a whole
episode (FINDINGS27 #1).

The files are made by a real file-size limit (``unwritten_run`` in tests/conftest.py). By default every format
leaves such an episode out whole, counts it under its own reason and names it (and ``--keep-partial``) on stderr;
``--keep-partial`` exports its written steps with ``complete: false`` and ``lost`` saying where the gap is
(``{"before": k, "n": n}``). Outputs are read back with the real readers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trajrec.replay.exports import ExportOptions, export
from trajrec.replay.exports.pipeline import PARTIAL, UNWRITTEN

_LOSSY = ("last.msgpack.zst", "mid.msgpack.zst")


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("fmt", ["records", "chat", "parquet"])
def test_left_out_by_default_under_their_own_reason(unwritten_run: Path, tmp_path: Path, fmt: str,
                                                    workers: int) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    out = tmp_path / "out"
    report = export([unwritten_run], fmt, f"{out}/", workers=workers)
    assert sorted(Path(p).name for p in report.unwritten) == list(_LOSSY)
    assert sum(report.left_out[UNWRITTEN].values()) == 2 and PARTIAL not in report.left_out
    assert report.written == 1 and report.steps == 6  # the whole episode only
    assert f"| left out: {UNWRITTEN} |" in (out / "README.md").read_text()
    if fmt == "parquet":
        import pyarrow.parquet as pq

        files = {f for p in out.glob("*.parquet") for f in pq.read_table(str(p)).column("file").to_pylist()}
        assert files == {"whole.msgpack.zst"}
    else:
        rows = [json.loads(line) for line in (out / "data.jsonl").read_text().splitlines()]
        assert len(rows) == 1 and (rows[0].get("trajrec") or rows[0])["complete"] is True


@pytest.mark.parametrize("workers", [1, 2])
def test_keep_partial_records_say_where_the_steps_were_lost(unwritten_run: Path, tmp_path: Path,
                                                            workers: int) -> None:
    out = tmp_path / "ev.jsonl"
    report = export([unwritten_run], "records", out, workers=workers, options=ExportOptions(keep_partial=True))
    assert report.unwritten == [] and report.written == 3 and UNWRITTEN not in report.left_out
    rows = {r["file"]: r for r in map(json.loads, out.read_text().splitlines())}
    mid, last, whole = rows["mid.msgpack.zst"], rows["last.msgpack.zst"], rows["whole.msgpack.zst"]
    assert mid["complete"] is False and mid["lost"] == [{"before": 2, "n": 2}]
    assert [(s["i"], json.loads(s["action"])) for s in mid["steps"]] == [(0, "a1"), (1, "a2"), (2, "a5"), (3, "a6")]
    assert last["complete"] is False and last["lost"] == [{"before": 2, "n": 1}]  # after the last written step
    assert len(last["steps"]) == 2
    assert whole["complete"] is True and whole["lost"] == []


def test_keep_partial_parquet_chat_and_to_arrow_say_not_complete(unwritten_run: Path, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    from trajrec import open_run

    export([unwritten_run], "parquet", tmp_path / "s.parquet", options=ExportOptions(keep_partial=True))
    table = pq.read_table(str(tmp_path / "s.parquet")).to_pylist()
    complete = {(r["file"], r["step"]): r["complete"] for r in table}
    assert {f for (f, _s), c in complete.items() if not c} == set(_LOSSY)
    assert all(c for (f, _s), c in complete.items() if f == "whole.msgpack.zst")
    assert sorted(s for f, s in complete if f == "mid.msgpack.zst") == [0, 1, 2, 3]
    # The step written right after the gap says how many env steps were lost before it; none lost: 0.
    lost_before = {(r["file"], r["step"]): r["lost_before"] for r in table}
    assert {k: v for k, v in lost_before.items() if v} == {("mid.msgpack.zst", 2): 2}
    arrow = {(r["file"], r["step"]): (r["complete"], r["lost_before"])
             for r in open_run(unwritten_run).to_arrow().to_pylist()}
    assert arrow == {k: (c, lost_before[k]) for k, c in complete.items()}
    export([unwritten_run], "chat", tmp_path / "c.jsonl", options=ExportOptions(keep_partial=True))
    metas = {m["episode_id"]: m for m in (json.loads(line)["trajrec"]
                                          for line in (tmp_path / "c.jsonl").read_text().splitlines())}
    assert sorted((m["complete"], json.dumps(m["lost"])) for m in metas.values()) == [
        (False, '[{"before": 2, "n": 1}]'), (False, '[{"before": 2, "n": 2}]'), (True, "[]")]


def test_cli_names_the_files_the_reason_and_the_option(unwritten_run: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from trajrec.cli import main

    assert main(["export", str(unwritten_run), "--format", "records", "--out", str(tmp_path / "a.jsonl")]) == 0
    err = capsys.readouterr().err
    for name in _LOSSY:
        line = next(x for x in err.splitlines() if name in x)
        assert "lost while recording" in line and "--keep-partial" in line, line
    assert f"2 (0 passed, 0 failed, 1 stopped, 1 terminated): {UNWRITTEN}" in err
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 1
    assert main(["export", str(unwritten_run), "--format", "records", "--out", str(tmp_path / "b.jsonl"),
                 "--keep-partial"]) == 0
    assert "lost while recording" not in capsys.readouterr().err
    assert len((tmp_path / "b.jsonl").read_text().splitlines()) == 3


def test_keep_partial_atif_and_trl_stepwise_say_where_the_steps_were_lost(unwritten_run: Path,
                                                                          tmp_path: Path) -> None:
    """FINDINGS29 #1: atif (root ``extra.trajrec``) and trl-stepwise rows carry ``complete``/``lost`` too."""
    opts = ExportOptions(keep_partial=True, unlabeled="neutral")
    export([unwritten_run], "atif", tmp_path / "a.jsonl", options=opts)
    atif = {d["extra"]["trajrec"]["file"]: d["extra"]["trajrec"]
            for d in map(json.loads, (tmp_path / "a.jsonl").read_text().splitlines())}
    export([unwritten_run], "trl-stepwise", tmp_path / "t.jsonl", options=opts)
    trl = {r["episode_id"]: r for r in map(json.loads, (tmp_path / "t.jsonl").read_text().splitlines())}
    ids = {name: own["episode_id"] for name, own in atif.items()}
    for name, lost in (("mid.msgpack.zst", [{"before": 2, "n": 2}]), ("last.msgpack.zst", [{"before": 2, "n": 1}]),
                       ("whole.msgpack.zst", [])):
        assert atif[name]["complete"] is (not lost) and atif[name]["lost"] == lost
        row = trl[ids[name]]
        assert row["complete"] is (not lost) and row["lost"] == lost
        assert row["unverified"] == [False] * len(row["steps"])


def test_atif_round_trip_keeps_the_episode_not_whole(unwritten_run: Path, tmp_path: Path) -> None:
    """``export atif --keep-partial`` then ``import atif``: the imported episode has the same gaps (FINDINGS29 #1),
    so ``ls``/``fsck``/a default export do not take it for a whole one."""
    from trajrec import open_episode
    from trajrec.replay.importers import import_paths

    doc = tmp_path / "a.jsonl"
    export([unwritten_run], "atif", doc, options=ExportOptions(keep_partial=True))
    back = tmp_path / "back"
    import_paths("atif", [doc], back)
    gaps = {}
    for path in back.glob("*.msgpack.zst"):
        with open_episode(path) as ep:
            gaps[len(ep)] = [g.to_json() for g in ep.gaps]
    # mid: a1 a2 [2 lost] a5 a6; last: 2 written then 1 lost; whole: 6 steps
    assert gaps == {4: [{"before": 2, "n": 2}], 2: [{"before": 2, "n": 1}], 6: []}
    report = export([back], "records", tmp_path / "r.jsonl")
    assert report.written == 1 and sum(report.left_out[UNWRITTEN].values()) == 2
