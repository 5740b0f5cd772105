"""An episode with no readable step is left out as "no step" by every format that writes steps (FINDINGS30 #3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trajrec import open_episode
from trajrec.cli import main


@pytest.mark.parametrize("fmt", ["parquet", "chat", "kto", "trl-stepwise"])
def test_keep_partial_leaves_an_episode_with_no_readable_step_out_as_no_step(
        no_readable_steps_run: Path, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pyarrow") if fmt == "parquet" else None
    ep = open_episode(next(no_readable_steps_run.glob("*.msgpack.zst")))
    assert len(ep) == 4 and ep.readable_steps == 0 and ep.reset is not None
    out = tmp_path / ("out.parquet" if fmt == "parquet" else "out.jsonl")
    code = main(["export", str(no_readable_steps_run), "--format", fmt, "--keep-partial", "--out", str(out),
                 "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["written"] == 0 and report["rows"] == 0
    assert report["written_splits"] == {} and report["written_outcomes"] == {}
    assert report["left_out"] == {"no step": {"failed": 1}}
