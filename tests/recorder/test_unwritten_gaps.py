"""Where an episode lost env steps to a failed write, readers and fsck say so (FINDINGS27 #1).

The Recorder numbers only the steps it wrote; the step written after a gap carries the ``recorder_errors`` entry
``where: "write"`` with ``lost_steps``, and the summary counts them (``lost_steps``) and places them
(``lost_before``). :func:`trajrec.recorder.model.gaps` and :attr:`Episode.gaps` are the one place readers learn
the gaps from. The files are made by a real file-size limit (``unwritten_run`` in tests/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from trajrec.recorder import fsck, open_episode, read_index
from trajrec.recorder.model import Gap, gaps


def test_the_gaps_are_placed_before_the_step_written_after_them(unwritten_run: Path) -> None:
    with open_episode(unwritten_run / "mid.msgpack.zst") as ep:
        assert [s.action for s in ep] == ["a1", "a2", "a5", "a6"]
        marks = [(s.index, e["lost_steps"]) for s in ep for e in s.recorder_errors if e.get("where") == "write"]
        assert marks == [(2, 2)]  # what the step records say: the index-level answer must agree
        assert [(g.first, g.n, g.numbered) for g in ep.gaps] == [(2, 2, False)]
        assert ep.summary["lost_steps"] == 2 and ep.summary["lost_before"] == [[2, 2]]
        assert ep.lost == [] and ep.readable_steps == 4  # nothing numbered is lost: every written step reads
    # Lost after the last written step: no record came after them; the summary's count places them at the end.
    index = read_index(unwritten_run / "last.msgpack.zst")
    assert [(g.first, g.n) for g in gaps(index)] == [(2, 1)] and index["steps"] == 2
    assert "1 env step not written before step 2" in gaps(index)[0].text()
    assert gaps(read_index(unwritten_run / "whole.msgpack.zst")) == []


def test_a_summary_that_only_counts_them_is_placed_from_the_step_records(unwritten_run: Path) -> None:
    # Files of trajrec 0.1 carry lost_steps but no lost_before: the index alone cannot place the gap.
    with open_episode(unwritten_run / "mid.msgpack.zst") as ep:
        del ep.summary["lost_before"]  # the index's own summary, as such a file holds it
        assert [(g.first, g.n) for g in gaps(ep.index)] == [(None, 2)]
        assert [(g.first, g.n) for g in ep.gaps] == [(2, 2)]
    assert gaps({"steps": 3, "summary": {"lost_steps": 3, "lost_before": [[1, 2]]}}) == [
        Gap(1, 2, gaps({"steps": 0, "summary": {"lost_steps": 1}})[0].why, False),
        Gap(3, 1, gaps({"steps": 0, "summary": {"lost_steps": 1}})[0].why, False)]


def test_fsck_reports_readable_with_steps_lost_while_recording(unwritten_run: Path) -> None:
    path = unwritten_run / "mid.msgpack.zst"
    before = path.read_bytes()
    report = fsck(path)
    assert not report.ok and report.recorded and report.closed and not report.damage and not report.error
    assert not report.complete  # has its index, but not the whole recording: as `ls` and the exports say
    assert report.steps == 4 and report.lost == [] and report.unwritten == [[2, 2]]
    repaired = fsck(path, repair=True)  # nothing to repair: the file says it all
    assert not repaired.repaired and repaired.backup is None and path.read_bytes() == before
    assert fsck(unwritten_run / "last.msgpack.zst").unwritten == [[2, 1]]
    assert fsck(unwritten_run / "whole.msgpack.zst").ok


def test_fsck_cli_says_partial_where_and_exits_0(unwritten_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from trajrec.cli import main

    for extra in ([], ["--repair"]):
        assert main(["fsck", str(unwritten_run), *extra]) == 0
        out = capsys.readouterr().out
        mid = next(line for line in out.splitlines() if "mid.msgpack.zst" in line)
        assert mid.startswith("PARTIAL ") and "4 readable steps" in mid
        assert "2 env steps lost while recording (2 before step 2; a write failed" in mid
        assert "nothing to repair" in mid
        assert "1 ok" in out and "2 with lost steps (recorded in the file)" in out and "run with --repair" not in out


def test_an_unwritten_gap_before_k_comes_before_a_damaged_range_starting_at_k() -> None:
    # the env step not written before step 1 was taken before step 1 was recorded (and later damaged)
    index = {"steps": 4, "damaged": [{"first": 1, "n": 2, "why": "damaged bytes"}],
             "summary": {"lost_steps": 1, "lost_before": [[1, 1]]}}
    found = gaps(index)
    assert [(g.first, g.numbered) for g in found] == [(1, False), (1, True)]
