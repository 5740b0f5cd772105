"""`trajrec diff` says where a side lost env steps to a failed write, in text and --json (FINDINGS29 #6): steps
are compared by number, and the steps after such a gap are numbered lower than the env's. Files made by a real
file-size limit (``unwritten_run`` in tests/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trajrec.cli import main
from trajrec.recorder import open_episode
from trajrec.replay.episode_diff import diff_episodes


def test_diff_names_the_gap_in_text(unwritten_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    whole, mid = str(unwritten_run / "whole.msgpack.zst"), str(unwritten_run / "mid.msgpack.zst")
    assert main(["diff", whole, mid]) == 1
    out = capsys.readouterr().out
    assert "B: 2 env steps not written before step 2" in out and "A: " not in out.replace("A  ", "")
    assert "renumbered across a gap (B lost 2)" in out.splitlines()[-1]
    assert main(["diff", mid, whole]) == 1  # the other way round: the same gap, on side A
    assert "A: 2 env steps not written before step 2" in capsys.readouterr().out


def test_diff_json_names_the_gap(unwritten_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", str(unwritten_run / "whole.msgpack.zst"), str(unwritten_run / "last.msgpack.zst"),
                 "--json"]) == 1
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["type"] == "summary" and summary["lost_a"] == [] and summary["lost_b"] == [{"before": 2, "n": 1}]
    assert summary["gaps"] == ["B: 1 env step not written before step 2: a write failed while recording (disk full, "
                               "file-size limit)"]


def test_the_same_file_is_the_same_with_its_gaps(unwritten_run: Path) -> None:
    with open_episode(unwritten_run / "mid.msgpack.zst") as a, open_episode(unwritten_run / "mid.msgpack.zst") as b:
        result = diff_episodes(a, b)
        assert result.same and result.gaps_a == result.gaps_b and len(result.gaps_a) == 1
        # The same written steps with a gap on one side only are not the same episode.
        result.gaps_b = []
        assert not result.same and "renumbered" in result.summary()
