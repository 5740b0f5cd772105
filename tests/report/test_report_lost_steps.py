"""`trajrec report` names the episodes that lost steps (FINDINGS27 #1: an episode whose middle a failed write kept
out of the file was reported as whole). Files made by a real file-size limit (``unwritten_run``)."""

from __future__ import annotations

from pathlib import Path

from trajrec.replay.report import build_report, render_text


def test_report_lists_the_episodes_that_lost_steps(unwritten_run: Path) -> None:
    rep = build_report([str(unwritten_run)])
    assert sorted(Path(p).name for p in rep["lost_steps"]) == ["last.msgpack.zst", "mid.msgpack.zst"]
    assert rep["episodes"] == 3 and rep["incomplete"] == 0  # each has its index: the writer closed it
    text = render_text(rep)
    assert "2 episodes lost steps (to damaged bytes, or to a failed write while recording)" in text
