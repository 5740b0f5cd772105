"""`trajrec report` counts the readable steps, as `ls` and the exports do, and says the lost ones apart
(FINDINGS30 #2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trajrec.cli import main
from trajrec.replay.report import build_report


def test_report_counts_readable_steps_like_ls_and_says_the_lost_ones(
        no_readable_steps_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ls", str(no_readable_steps_run), "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    ls_steps = sum(row["steps"] for row in listed)
    rep = build_report([no_readable_steps_run])
    assert rep["steps"] == ls_steps == 0
    assert rep["damaged_steps"] == 4 and rep["unwritten_steps"] == 0
    assert rep["failures"]["steps"] == 0
    assert main(["report", str(no_readable_steps_run)]) == 0
    text = capsys.readouterr().out
    assert "1 episode, 0 steps" in text and "4 lost to damage" in text
    assert "no failed step in" not in text and "no readable step" in text
