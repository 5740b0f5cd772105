"""A repaired file whose reset record was lost with step 0 is left out under one named reason by every format
with --keep-partial, exit 0 and no advice to run fsck (which has nothing to repair) (FINDINGS30 #1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trajrec import open_episode
from trajrec.cli import main
from trajrec.recorder import ResetLostError, fsck

RESET_LOST = "reset record lost (repaired after damage)"


def _episode(run: Path) -> Path:
    return next(run.glob("*.msgpack.zst"))


def test_the_reader_says_the_reset_was_lost_and_fsck_has_nothing_to_repair(reset_lost_run: Path) -> None:
    path = _episode(reset_lost_run)
    with open_episode(path) as ep:
        assert ep.lost and ep.lost[0][0] == 0 and ep.readable_steps == 3
        with pytest.raises(ResetLostError, match="reset record was lost") as caught:
            ep.reset
        assert "fsck" in str(caught.value) and "run `trajrec fsck" not in str(caught.value)
    report = fsck(path)
    assert report.error is None and not report.repaired


@pytest.mark.parametrize("fmt", ["records", "chat", "kto", "trl-stepwise", "parquet", "atif"])
def test_keep_partial_leaves_it_out_as_reset_lost_in_every_format(
        reset_lost_run: Path, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    out = tmp_path / ("out.parquet" if fmt == "parquet" else "out.jsonl")
    code = main(["export", str(reset_lost_run), "--format", fmt, "--keep-partial", "--out", str(out), "--json"])
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert code == 0, captured.err
    assert list(report["left_out"]) == [RESET_LOST] and report["written"] == 0
    assert "fsck" not in captured.err


def test_without_keep_partial_it_is_a_partial_file_as_before(
        reset_lost_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["export", str(reset_lost_run), "--format", "records", "--out", str(tmp_path / "o.jsonl"), "--json"])
    assert code == 0
    captured = capsys.readouterr()
    assert list(json.loads(captured.out)["left_out"]) == ["lost steps (repaired after damage)"]
    # The --keep-partial hint says when it does not help (FINDINGS31 #5): a reset lost with the steps.
    assert "--keep-partial exports its readable steps" in captured.err
    assert "not when the reset record was lost with them" in captured.err
