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


def test_diff_compares_the_readable_steps_of_a_repaired_file(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A file fsck --repair kept around a damaged frame is compared on the steps it still holds, the lost range
    named (FINDINGS31 #4: diff refused it, even against itself, with advice to run fsck)."""
    import shutil
    import sys

    from damage import break_frame

    from trajrec.recorder import Recorder, fsck, read_index

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from synthetic_env import SyntheticToolEnv

    env = Recorder(SyntheticToolEnv(), tmp_path / "rec", frame_steps=4)
    env.reset(seed=0)
    for i in range(20):
        env.step(json.dumps({"tool": "cat", "args": {"path": f"file{i}.txt"}}))
    env.close()
    original = tmp_path / "original.msgpack.zst"
    shutil.copy(env.episode_path, original)
    damaged = tmp_path / "damaged.msgpack.zst"
    shutil.copy(original, damaged)
    break_frame(damaged, read_index(damaged)["frames"][2])  # steps 8..11: nothing of it can be salvaged
    fsck(damaged, repair=True)
    with open_episode(damaged) as ep:
        assert ep.lost == [(8, 4)]
    assert main(["diff", str(damaged), str(damaged)]) == 0  # itself: the same (its readable steps, its gap)
    out = capsys.readouterr().out
    assert "A: steps 8..11 lost" in out and "B: steps 8..11 lost" in out and out.rstrip().endswith(
        "same: 16 steps, task, reset and every compared field equal")
    assert main(["diff", str(original), str(damaged)]) == 1  # the gap differs; the 16 steps both hold are equal
    out = capsys.readouterr().out
    assert "B: steps 8..11 lost" in out and "differ" not in out
    assert out.rstrip().endswith("steps lost to damage are not compared (B lost 4)")
