"""An export that writes nothing says so, with the reason and the fix; its counts are of what was written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trajrec.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("unpaired") / "run"  # seeds 0..2: three tasks, one attempt each
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "3", "--out", str(out), "--json"]) == 0
    return out


def test_dpo_with_nothing_to_pair_counts_zero_steps_and_says_why(run: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    capsys.readouterr()
    out = tmp_path / "dpo.jsonl"
    assert main(["export", str(run), "--format", "dpo", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "exported 0 episodes" in err and "; 0 steps, 0 rows)" in err
    line = next(x for x in err.splitlines() if "nothing written:" in x)
    assert "no attempt at the same task to pair it with" in line and "record several attempts per task" in line
    assert out.read_text() == ""
    assert main(["export", str(run), "--format", "dpo", "--out", str(out), "--json", "--overwrite"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["written"], report["rows"], report["steps"]) == (0, 0, 0)


def test_dpo_steps_count_the_paired_attempts(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    for skill in ("1.0", "0.0"):  # one task (seed 0), a passing and a failing attempt
        sub = run / f"skill{skill}"
        assert main(["record", "trajrec/MathCalc-v0", "--episodes", "1", "--skill", skill, "--out", str(sub),
                     "--json"]) == 0
    capsys.readouterr()
    assert main(["export", str(run), "--format", "dpo", "--out", str(tmp_path / "d.jsonl"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == 1 and report["written"] == 2
    assert main(["ls", str(run), "--json"]) == 0
    steps = sum(json.loads(x)["steps"] for x in capsys.readouterr().out.splitlines())
    assert report["steps"] == steps
