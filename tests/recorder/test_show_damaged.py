"""``trajrec show`` of a repaired file says which steps were lost (where they were) and which were salvaged."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from trajrec.cli import main
from trajrec.recorder import Recorder, fsck, read_index


def _record(folder: Path, stub_env: Any, steps: int) -> Path:
    env = Recorder(stub_env(), str(folder), frame_steps=8, state_fn=None)
    env.reset(seed=3)
    for k in range(steps):
        env.step(f"write f{k} text number {k} " + "x" * (k % 7))
    env.close()
    return Path(env.episode_path)


def _flip(path: Path, frame_no: int, where: float) -> None:
    row = read_index(path)["frames"][frame_no]
    data = bytearray(path.read_bytes())
    data[row[0] + max(6, int((row[3] - row[0]) * where))] ^= 0x5A
    path.write_bytes(bytes(data))


def _step_lines(out: str) -> dict[int, str]:
    return {int(m.group(1)): line for line in out.splitlines() if (m := re.match(r"^\s*(\d+) ", line))}


@pytest.mark.parametrize("frame_no", [1, 3])  # lost steps in the middle, and at the end
def test_show_lists_lost_and_unverified_steps(tmp_path: Path, stub_env: Any, capsys: pytest.CaptureFixture,
                                              frame_no: int) -> None:
    path = _record(tmp_path, stub_env, 32)
    original = path.read_bytes()
    # Ids and times make every recording's bytes differ: a flipped byte may land where zstd's salvage keeps every
    # step (only unverified). Flip further in until one costs steps (the first place almost always does).
    for where in (0.9, 0.75, 0.6, 0.45, 0.3):
        path.write_bytes(original)
        for orig in tmp_path.glob("*.orig*"):
            orig.unlink()
        _flip(path, frame_no, where)
        report = fsck(path, repair=True)
        if report.lost:
            break
    assert report.repaired and report.lost and report.total_steps == 32
    capsys.readouterr()
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    spans = ", ".join(f"{a}..{b}" for a, b in report.lost)
    assert f"lost      {report.steps} of 32 steps readable; lost to damaged bytes: {spans}" in out
    assert "as recorded, before the damage" in out
    for a, b in report.lost:  # a line where the lost steps were, in order among the step lines
        lines = out.splitlines()
        at = lines.index(f"{'':>5} ✗ steps {a}..{b} lost (damaged bytes)")
        if a > 0:
            assert lines[at - 1].lstrip().startswith(f"{a - 1} ")
    steps = _step_lines(out)
    lost = {i for a, b in report.lost for i in range(a, b + 1)}
    assert set(steps) == set(range(32)) - lost
    unverified = {i for a, b in report.unverified for i in range(a, b + 1)}
    assert unverified  # the blocks before the flipped byte were salvaged
    assert {i for i, line in steps.items() if "unverified" in line} == unverified


def test_show_of_an_undamaged_file_has_no_lost_line(tmp_path: Path, stub_env: Any,
                                                     capsys: pytest.CaptureFixture) -> None:
    path = _record(tmp_path, stub_env, 10)
    capsys.readouterr()
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "lost" not in out and "unverified" not in out and "before the damage" not in out


def test_a_repaired_file_with_no_readable_step_claims_no_failures() -> None:
    """ls and the library read an episode's row from its index: with every step lost, the summary's counts (the
    writer's, from before the damage) are not claimed for steps nobody can read."""
    from trajrec.replay.library import EpisodeEntry
    from trajrec.replay.query import index_facts

    summary = {"steps": 5, "outcome": "failed", "failures": 2, "retries": 2, "recoveries": 1}
    index = {"steps": 5, "complete": True, "summary": summary, "header": {"episode_id": "e"},
             "damaged": [{"first": 0, "n": 5, "why": "damaged bytes"}]}
    facts = index_facts("e.msgpack.zst", index)
    assert (facts["steps"], facts["failures"], facts["retries"], facts["recoveries"]) == (0, 0, 0, 0)
    assert facts["complete"] is False
    entry = EpisodeEntry.from_index("e.msgpack.zst", index)
    assert (entry.failures, entry.retries, entry.recoveries, entry.complete) == (0, 0, 0, False)
    some = {**index, "damaged": [{"first": 0, "n": 3, "why": "damaged bytes"}]}  # 2 steps left: the counts stay
    assert index_facts("e.msgpack.zst", some)["failures"] == 2


def test_salvaged_steps_leave_an_episode_whole_as_the_exports_say() -> None:
    """`ls`/`--where` and the exports give one answer: steps fsck --repair salvaged (unverified, readable) leave
    the episode complete, as the exports write it (with the steps flagged); lost steps, or a damaged row that
    cannot be read, do not."""
    from trajrec.replay.exports.chat import episode_complete
    from trajrec.replay.query import index_facts

    base = {"steps": 5, "complete": True, "summary": {"steps": 5, "outcome": "terminated"},
            "header": {"episode_id": "e"}}
    salvaged = {**base, "damaged": [{"first": 1, "n": 2, "why": "checksum", "unverified": True}]}
    lost = {**base, "damaged": [{"first": 1, "n": 2, "why": "damaged bytes"}]}
    odd = {**base, "damaged": ["not a row"]}
    assert index_facts("e.msgpack.zst", salvaged)["complete"] is True
    assert index_facts("e.msgpack.zst", lost)["complete"] is False
    assert index_facts("e.msgpack.zst", odd)["complete"] is False

    class Ep:  # what episode_complete reads of an Episode
        complete = True
        gaps: list = []

    assert episode_complete(Ep()) is True  # the same file as the exports see it
