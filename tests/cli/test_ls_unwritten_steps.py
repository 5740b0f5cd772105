"""`trajrec ls` and the filter grammar count an episode that lost env steps to a failed write as not whole
(FINDINGS27 #1: `complete: true`, and `--where ended=false` matched nothing). Files made by a real file-size limit
(``unwritten_run`` in tests/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trajrec.cli import main
from trajrec.recorder import open_episode

_LOSSY = ["last.msgpack.zst", "mid.msgpack.zst"]


def _names(out: str) -> list[str]:
    return sorted(Path(json.loads(line)["path"]).name for line in out.splitlines())


def test_ls_json_and_where_say_not_complete(unwritten_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ls", str(unwritten_run), "--json"]) == 0
    rows = {Path(r["path"]).name: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert {name: r["complete"] for name, r in rows.items()} == {
        "last.msgpack.zst": False, "mid.msgpack.zst": False, "whole.msgpack.zst": True}
    assert rows["mid.msgpack.zst"]["outcome"] == "terminated" and rows["mid.msgpack.zst"]["steps"] == 4
    for query in ("ended=false", "complete=false", "incomplete"):
        assert main(["ls", str(unwritten_run), "--where", query, "--json"]) == 0
        assert _names(capsys.readouterr().out) == _LOSSY, query
    assert main(["ls", str(unwritten_run), "--where", "ended=true", "--json"]) == 0
    assert _names(capsys.readouterr().out) == ["whole.msgpack.zst"]
    # Again from the summary cache the first listing wrote: the same answer.
    assert main(["ls", str(unwritten_run), "--where", "complete=false", "--json"]) == 0
    assert _names(capsys.readouterr().out) == _LOSSY


def test_ls_marks_them_and_says_why(unwritten_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ls", str(unwritten_run)]) == 0
    out = capsys.readouterr()
    text = out.out + out.err
    ids = {name: open_episode(unwritten_run / name).episode_id for name in [*_LOSSY, "whole.msgpack.zst"]}
    marked = {name for name, eid in ids.items() for line in text.splitlines()
              if line.startswith(eid) and "*" in line.split()}
    assert sorted(marked) == _LOSSY
    assert "a failed write while recording" in text


def test_open_run_where_and_library_agree(unwritten_run: Path) -> None:
    from trajrec import open_run

    run = open_run(unwritten_run)
    assert sorted(Path(p).name for p in (e.path for e in run.where("complete=false").entries)) == _LOSSY
    assert sorted(Path(p).name for p in (e.path for e in run.where("incomplete").entries)) == _LOSSY


def test_show_says_where_the_env_steps_were_not_written(unwritten_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", str(unwritten_run / "mid.msgpack.zst")]) == 0
    out = capsys.readouterr().out
    assert "could not be written (a write failed while recording: 2 before step 2)" in out
    lines = [line.strip() for line in out.splitlines()]
    gap = lines.index("✗ 2 env steps not written (a write failed)")
    assert lines[gap - 1].startswith("1 ") and lines[gap + 1].startswith("2 ")  # between steps 1 and 2
    assert main(["show", str(unwritten_run / "last.msgpack.zst")]) == 0
    out = capsys.readouterr().out
    assert "1 after the last step" in out and out.rstrip().endswith("✗ 1 env step not written (a write failed)")
    assert main(["show", str(unwritten_run / "whole.msgpack.zst")]) == 0
    assert "not written" not in capsys.readouterr().out
