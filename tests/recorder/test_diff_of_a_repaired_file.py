"""`trajrec diff` against a file `fsck --repair` kept after its header or its reset record was lost to damage
(FINDINGS34 B4): the lost part is unknown, not different. diff said "the tasks differ" (every task field → None)
for a lost header, and said nothing of a lost reset; it now names what was not compared on which side."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
from damage import blocks, record_stub_episode, repair_after_a_flip_that

from trajrec.cli import main
from trajrec.recorder import ResetLostError, fsck, open_episode


def _pair(tmp_path: Path, stub_env: Any) -> tuple[Path, Path]:
    original = record_stub_episode(tmp_path / "run", stub_env)
    (tmp_path / "damaged").mkdir()
    return original, Path(shutil.copy(original, tmp_path / "damaged"))


def test_a_lost_header_is_named_not_called_a_task_difference(tmp_path: Path, stub_env: Any,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    original, damaged = _pair(tmp_path, stub_env)
    data = bytearray(damaged.read_bytes())
    start, stop = blocks(bytes(data))[0]  # the header record's block
    data[(start + 3 + stop) // 2] ^= 0x5A
    damaged.write_bytes(bytes(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fsck(damaged, repair=True)
    with open_episode(damaged) as ep:
        assert ep.header_lost is not None and not ep.task

    assert main(["diff", str(original), str(damaged)]) == 1  # not the same: B's task is unknown
    out = capsys.readouterr().out
    assert "✗ B: header record lost (task unknown): task not compared" in out
    assert "task differs" not in out and "the tasks differ" not in out and "→ None" not in out
    assert out.rstrip().splitlines()[-1].startswith("B's header record lost (task unknown): task not compared")

    assert main(["diff", str(original), str(damaged), "--json"]) == 1
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["task"] == [] and summary["same"] is False
    assert summary["not_compared_a"] == [] and summary["not_compared_b"] == [
        "header record lost (task unknown): task not compared"]

    # The file against itself: both sides lost the same, everything they hold is equal, and the summary says what
    # was not compared instead of "task ... equal".
    assert main(["diff", str(damaged), str(damaged)]) == 0
    last = capsys.readouterr().out.rstrip().splitlines()[-1]
    assert last == ("same: 30 steps and every compared field equal (on both sides: header record lost (task "
                    "unknown): task not compared)")
    # --ignore task: nothing to say about the task
    assert main(["diff", str(original), str(damaged), "--ignore", "task"]) == 0
    assert "header record lost" not in capsys.readouterr().out


def test_a_lost_reset_is_named_as_not_compared(tmp_path: Path, stub_env: Any,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    original, damaged = _pair(tmp_path, stub_env)

    def reset_lost(path: Path) -> bool:
        with open_episode(path) as ep:
            try:
                ep.reset  # noqa: B018
            except ResetLostError:
                return True
        return False

    repair_after_a_flip_that(damaged, 1, reset_lost, "lost the reset record")

    assert main(["diff", str(original), str(damaged)]) == 1
    out = capsys.readouterr().out
    assert "✗ B: reset record lost to damage (with step 0): reset not compared" in out
    assert "reset differs" not in out
    last = out.rstrip().splitlines()[-1]
    assert "B's reset record lost to damage (with step 0): reset not compared" in last
    assert main(["diff", str(damaged), str(original), "--ignore", "reset"]) == 1  # the lost steps still differ
    out = capsys.readouterr().out
    assert "reset record lost" not in out and "A: steps 0..7 lost" in out
