"""``label auto --judge ... --keep-going``: every failed call's line names its judge (by the id its labels get),
the episode and the step, whether the judge raised or answered something unusable, on one thread or several."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from trajrec.replay.autolabel import AutoResult, judge_id_of, label_with_judge


def nan_judge(ctx: Any) -> Any:
    return {"value": float("nan")} if ctx.index == 0 else 1


def raising_judge(ctx: Any) -> Any:
    if ctx.index == 1:
        raise RuntimeError("model server said 503")
    return -1


@pytest.mark.parametrize("concurrency", [1, 3])
def test_each_failure_names_its_judge(run_dir: Path, ids: dict[int, str], concurrency: int) -> None:
    merged = AutoResult(judge="several")
    for judge in (nan_judge, raising_judge):
        res = label_with_judge([run_dir], judge, keep_going=True, concurrency=concurrency)
        assert res.judge_errors
        merged.judge_errors += res.judge_errors
    nan_id, raise_id = judge_id_of(nan_judge), judge_id_of(raising_judge)
    assert f"judge {nan_id} on episode {ids[0]} step 0 returned an unusable value: a score must be a finite " \
        "number, got nan" in merged.judge_errors
    assert f"judge {raise_id} on episode {ids[0]} step 1 raised RuntimeError: model server said 503" \
        in merged.judge_errors
    for line in merged.judge_errors:
        assert line.startswith((f"judge {nan_id} on episode ", f"judge {raise_id} on episode ")), line
        assert "judge judge" not in line


def test_the_cli_line_names_the_judge(run_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "weird.py").write_text("def judge(ctx):\n    return {'value': float('nan')}\n")
    proc = subprocess.run([sys.executable, "-m", "trajrec", "label", "auto", str(run_dir), "--judge",
                           f"{tmp_path / 'weird.py'}:judge", "--keep-going"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if "judge call failed" in ln]
    assert lines and all(ln.startswith("trajrec label: judge call failed: judge model:weird.judge on episode ")
                         and "returned an unusable value: a score must be a finite number, got nan" in ln
                         for ln in lines), proc.stderr
