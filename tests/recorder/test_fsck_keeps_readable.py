"""``fsck --repair`` keeps every readable frame around damaged ones, records the lost steps, and readers say so.

Files are made by the real Recorder, then damaged the way disks and copies damage them: a flipped byte inside a
frame, a cut index, a truncated tail.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from trajrec.cli import main
from trajrec.recorder import Recorder, TrajrecFormatError, fsck, open_episode, read_index


def _record(folder: Path, stub_env: Any, steps: int, frame_steps: int = 8, name: str = "") -> Path:
    env = Recorder(stub_env(), str(folder), frame_steps=frame_steps, state_fn=None)
    env.reset(seed=3)
    for k in range(steps - 1):
        env.step(f"write f{k} text number {k} " + "x" * (k % 7))
    env.step("write done yes")  # the terminal step: its check and the outcome must survive a repair
    env.close()
    path = Path(env.episode_path)
    if name:
        path = path.rename(folder / name)
    return path


def _flip(path: Path, frame_no: int, where: float = 0.5) -> list[int]:
    """Flip one byte inside frame ``frame_no`` (a frame row of the index); returns that row."""
    row = read_index(path)["frames"][frame_no]
    data = bytearray(path.read_bytes())
    at = row[0] + max(6, int((row[3] - row[0]) * where))
    data[at] ^= 0x5A
    path.write_bytes(bytes(data))
    return row


def _break_first_block(path: Path, frame_no: int) -> list[int]:
    """Mark the first block of frame ``frame_no`` with zstd's reserved block type: zstd rejects the frame at once,
    so nothing of it can be salvaged (RFC 8878, 3.1.1.2). Returns the frame's index row."""
    row = read_index(path)["frames"][frame_no]
    data = bytearray(path.read_bytes())
    fhd = data[row[0] + 4]
    single, did, fcs = (fhd >> 5) & 1, fhd & 3, fhd >> 6
    at = row[0] + 5 + (0 if single else 1) + (0, 1, 2, 4)[did] + ((1 if single else 0), 2, 4, 8)[fcs]
    data[at] |= 0b110
    path.write_bytes(bytes(data))
    return row


def _steps(path: Path) -> dict[int, tuple[Any, ...]]:
    with open_episode(path) as ep:
        return {s.index: (s.action, s.observation, s.reward, s.terminated, s.info) for s in ep}


@pytest.mark.parametrize("where", [0.3, 0.85])  # early in the frame, or late
def test_repair_keeps_frames_after_a_damaged_one(tmp_path: Path, stub_env: Any, where: float) -> None:
    path = _record(tmp_path, stub_env, 30)
    before = _steps(path)
    summary = read_index(path)["summary"]
    row = _flip(path, 1, where)
    lost = range(row[1], row[1] + row[2])

    report = fsck(path)
    assert not report.ok and report.total_steps == 30
    assert report.steps == 30 - len(lost) and report.lost == [[lost[0], lost[-1]]]
    assert any(f"steps {lost[0]}..{lost[-1]} unreadable" in d for d in report.damage)

    repaired = fsck(path, repair=True)
    assert repaired.repaired and repaired.backup is None  # every byte is carried over, the damaged ones too
    # The blocks before the damaged byte were salvaged (unverified); the rest of the frame is lost. (Where zstd
    # notices the damage depends on the bytes: a damaged literal is only caught by the checksum at the frame's
    # end, and then every record decodes, and is kept, unverified.)
    salvaged = range(lost[0], repaired.unverified[0][1] + 1) if repaired.unverified else range(lost[0], lost[0])
    gone = range(salvaged.stop, lost.stop)
    assert repaired.lost == ([[gone[0], gone[-1]]] if gone else [])
    assert repaired.steps == 30 - len(gone)
    with open_episode(path) as ep:
        assert len(ep) == 30 and ep.readable_steps == 30 - len(gone)
        assert ep.lost == ([(gone[0], len(gone))] if gone else [])
        got = {s.index: (s.action, s.observation, s.reward, s.terminated, s.info) for s in ep}
        assert sorted(got) == [i for i in range(30) if i not in gone]
        # Every verified step reads back identical (a salvaged one may carry the damaged byte: it is flagged).
        assert {i: v for i, v in got.items() if i not in salvaged} == \
            {i: v for i, v in before.items() if i not in lost}
        assert ep[29].terminated and ep.summary["outcome"] == summary["outcome"]
        assert ep.summary["steps"] == summary["steps"]
        if gone:
            lost_text = rf"step {gone[-1]} is unreadable: steps {gone[0]}\.\.{gone[-1]} were lost"
            with pytest.raises(TrajrecFormatError, match=lost_text):
                ep[gone[-1]]
        assert any(f"{30 - len(gone)} readable steps of 30" in d for d in ep.damage)
        if salvaged:
            assert any(f"({len(salvaged)} of them unverified)" in d for d in ep.damage)
            assert any(d.startswith(f"steps {salvaged[0]}..{salvaged[-1]} unverified: salvaged") for d in ep.damage)

    again = fsck(path)  # the loss is recorded: not ok, but nothing more to repair
    assert not again.ok and again.recorded and again.steps == repaired.steps and again.lost == repaired.lost
    assert again.unverified == repaired.unverified
    assert fsck(path, repair=True).repaired is False


def test_salvage_keeps_only_whole_checked_records_before_the_damage(tmp_path: Path, stub_env: Any) -> None:
    path = _record(tmp_path, stub_env, 30, frame_steps=1024)  # one frame: header, reset and every step
    before = _steps(path)
    for where, expect_some in ((0.9, True), (0.02, False)):  # late in the frame; the header's block
        copy = tmp_path / f"c{where}.msgpack.zst"
        copy.write_bytes(path.read_bytes())
        _flip(copy, 0, where)
        report = fsck(copy, repair=True)
        assert report.repaired
        if report.header_lost:
            # The header record itself is damaged (a version-3 index keeps no copy of it): it is marked lost and
            # what the blocks after it yield is kept (tests/recorder/test_lost_header.py).
            assert not expect_some and not Path(f"{copy}.orig").exists()
        assert report.steps + sum(b - a + 1 for a, b in report.lost) == 30
        with open_episode(copy) as ep:
            got = {s.index: (s.action, s.observation, s.reward, s.terminated, s.info) for s in ep}
            # A salvaged record may differ from what was recorded (a damaged byte in a literal run decompresses
            # without error): every step that differs must be one the index marks unverified.
            differ = [i for i in got if got[i] != before[i]]
            assert all(any(a <= i <= b for a, b in report.unverified) for i in differ)
            assert len(got) == report.steps == ep.readable_steps
            if expect_some:
                assert report.unverified == [[0, report.steps - 1]] and report.steps > 0
                assert ep.reset.observation == "files: notes.txt todo.txt"
            else:  # the header's block: whatever the blocks after it still yield is kept, unverified
                assert report.header_lost and report.unverified == ([[0, report.steps - 1]] if report.steps else [])


def test_cli_after_repair_says_readable_steps_and_lost_ranges(tmp_path: Path, stub_env: Any,
                                                              capsys: pytest.CaptureFixture) -> None:
    path = _record(tmp_path, stub_env, 30)
    row = _flip(path, 1, 0.85)  # past the frame's first block (the biggest: no history to match against)
    first, last = row[1], row[1] + row[2] - 1
    capsys.readouterr()
    assert main(["fsck", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"DAMAGED  {path} ({30 - row[2]} readable steps of 30; lost: steps {first}..{last})" in out
    assert "run with --repair to fix 1" in out
    assert main(["fsck", str(path), "--repair"]) == 0
    out = capsys.readouterr().out
    r = fsck(path)
    assert r.steps + sum(b - a + 1 for a, b in r.lost) == 30 and (r.lost or r.unverified)
    counts = f"{r.steps} readable steps of 30" \
        + "".join(f"; unverified (salvaged): steps {a}..{b}" for a, b in r.unverified) \
        + "".join(f"; lost: steps {a}..{b}" for a, b in r.lost)
    assert f"REPAIRED {path} ({counts})" in out
    for cmd in (["fsck", str(path)], ["fsck", str(path), "--repair"]):
        assert main(cmd) == 0
        out = capsys.readouterr().out
        assert f"PARTIAL  {path} ({counts})" in out
        assert " ok " not in out and "--repair to fix" not in out
    assert main(["ls", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    line = next(ln for ln in captured.out.splitlines() if "stub-1" in ln)
    assert f" {r.steps} " in line and "*" in line
    assert "steps lost to damage" in captured.err
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{r.steps} readable steps of 30" in out
    assert all(f"steps {a}..{b} lost" in out for a, b in r.lost)
    assert all(f"steps {a}..{b} unverified" in out for a, b in r.unverified)


def test_repair_of_a_file_without_index_steps_over_the_damage(tmp_path: Path, stub_env: Any) -> None:
    path = _record(tmp_path, stub_env, 30)
    before = _steps(path)
    index = read_index(path)
    row = index["frames"][1]
    data = path.read_bytes()
    cut = data[:data.rfind(b"\x5b\x2a\x4d\x18")]  # the writer died before the index: no index frame
    path.write_bytes(cut)
    # Inside the frame's first block (a 6-byte frame header, a 3-byte block header, then its first record): no
    # block before the damage to salvage, so the repaired file is the damaged one with an index, byte for byte.
    _flip_at = row[0] + 12
    damaged = bytearray(cut)
    damaged[_flip_at] ^= 0x5A
    path.write_bytes(bytes(damaged))
    lost = range(row[1], row[1] + row[2])

    report = fsck(path)
    assert report.steps == 30 - len(lost) and report.lost == [[lost[0], lost[-1]]]
    repaired = fsck(path, repair=True)
    assert repaired.repaired and repaired.backup is None  # every byte is carried over, the damaged ones too
    assert path.read_bytes()[:len(damaged)] == bytes(damaged)
    with open_episode(path) as ep:
        assert ep.complete and ep.readable_steps == 30 - len(lost)
        got = {s.index: (s.action, s.observation, s.reward, s.terminated, s.info) for s in ep}
        assert got == {i: v for i, v in before.items() if i not in lost}
        assert ep.summary["outcome"] == index["summary"]["outcome"]


def test_repair_of_a_truncated_file_keeps_the_original(tmp_path: Path, stub_env: Any) -> None:
    path = _record(tmp_path, stub_env, 20)
    data = path.read_bytes()
    last = read_index(path)["frames"][-1]
    cut = data[:last[0] + (last[3] - last[0]) // 2]  # inside the last frame's blocks
    path.write_bytes(cut)
    report = fsck(path, repair=True)
    assert report.repaired and report.backup is not None
    assert Path(report.backup).read_bytes() == cut
    ep = open_episode(path)
    assert ep.complete and len(ep) == report.steps == report.total_steps


def test_folder_repair_reports_each_file_and_goes_on(tmp_path: Path, stub_env: Any,
                                                     capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    good = _record(folder, stub_env, 12, name="a-good.msgpack.zst")
    flip = _record(folder, stub_env, 30, name="b-flip.msgpack.zst")
    # Late in the header/reset frame (its steps, not the header record, whose damage loses everything): its
    # steps are lost, the later frames are kept.
    _flip(flip, 0, 0.95)
    crashed = _record(folder, stub_env, 30, name="c-crashed.msgpack.zst")
    data = bytearray(crashed.read_bytes()[:crashed.read_bytes().rfind(b"\x5b\x2a\x4d\x18")])
    data[20] ^= 0xFF  # no index and a damaged first frame: nothing to rebuild an index from
    crashed.write_bytes(bytes(data))
    (folder / "d-text.msgpack.zst").write_bytes(b"hello\n")
    trunc = _record(folder, stub_env, 20, name="e-trunc.msgpack.zst")
    trunc.write_bytes(trunc.read_bytes()[:-60])
    capsys.readouterr()
    assert main(["fsck", str(folder), "--repair"]) == 1
    out = capsys.readouterr().out
    assert f"ok       {good}" in out
    assert f"REPAIRED {flip}" in out and f"REPAIRED {folder / 'e-trunc.msgpack.zst'}" in out
    assert f"BAD      {crashed}" in out and f"BAD      {folder / 'd-text.msgpack.zst'}" in out
    for name in ("b-flip", "c-crashed", "d-text", "e-trunc"):
        assert f"run `trajrec fsck {folder / name}" not in out
    assert out.splitlines()[-1].startswith("5 files, 1 ok, 2 with problems, 2 repaired")
    assert "--repair to fix" not in out  # what is left, repair cannot fix: it does not loop
    assert main(["fsck", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "--repair to fix" not in out and "2 with problems" in out


def test_a_damaged_frame_without_steps_is_repaired_once(tmp_path: Path, stub_env: Any,
                                                        capsys: pytest.CaptureFixture) -> None:
    path = _record(tmp_path, stub_env, 20)
    before = _steps(path)
    index = read_index(path)
    end_frame = index["frames"][-1][3]  # the end record's frame follows the last frame of steps
    data = bytearray(path.read_bytes())
    assert data[end_frame:end_frame + 4] == b"\x28\xb5\x2f\xfd"
    data[end_frame + 12] ^= 0x5A
    path.write_bytes(bytes(data))
    report = fsck(path)
    assert not report.ok and report.steps == 20 and report.lost == []
    assert any("a frame not holding steps is damaged" in d for d in report.damage)
    repaired = fsck(path, repair=True)
    assert repaired.repaired and repaired.error is None and repaired.backup is None
    assert path.read_bytes()[:len(data) - 1].startswith(bytes(data[:index["index_offset"]]))
    assert _steps(path) == before and read_index(path)["summary"] == index["summary"]
    again = fsck(path)
    assert again.recorded and again.steps == 20 and again.lost == []
    capsys.readouterr()
    assert main(["fsck", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"PARTIAL  {path} (20 readable steps)" in out and "a frame holding no steps lost" in out


def test_viewer_text_search_steps_over_lost_steps(tmp_path: Path, stub_env: Any) -> None:
    from trajrec.tui.step_scan import find_text

    path = _record(tmp_path, stub_env, 30)
    row = _break_first_block(path, 1)
    assert fsck(path, repair=True).repaired
    with open_episode(path) as ep:
        assert ep.is_lost(row[1] + row[2] - 1) and not ep.is_lost(row[1] + row[2])
    # From before the damaged frame to a step after it: the lost steps are passed over, not an error.
    step, wrapped = find_text(str(path), "write done yes", 0, cancelled=lambda: False)
    assert (step, wrapped) == (29, False)


def test_a_repair_keeps_no_salvaged_step_whose_state_cannot_be_rebuilt(tmp_path: Path, stub_env: Any) -> None:
    """A salvaged record may carry the damaged byte itself (zstd notices a damaged literal only at the frame's
    checksum): where that byte is in a state diff or a snapshot's key, the diff no longer applies. Every byte of a
    frame is flipped in turn: after each repair every kept step's state rebuilds, and fsck finds the loss
    recorded (a second repair has nothing to do)."""
    src = tmp_path / "src"
    src.mkdir()
    env = Recorder(stub_env(), str(src), frame_steps=8)
    env._timing = (1.0, 0.5)  # the same frame bytes whatever the run
    env.reset(seed=3)
    for k in range(23):
        env.step(f"write f{k % 3} text number {k} " + "x" * (k % 7))
    env.close()
    original = Path(env.episode_path).read_bytes()
    row = read_index(env.episode_path)["frames"][1]
    path = tmp_path / "damaged" / Path(env.episode_path).name
    path.parent.mkdir()
    salvaged_some = 0
    for at in range(row[0] + 6, row[3] - 4, 2):  # every other byte after the frame header, up to its checksum
        data = bytearray(original)
        data[at] ^= 0x5A
        path.write_bytes(bytes(data))
        for extra in path.parent.glob("*.orig*"):
            extra.unlink()
        repaired = fsck(path, repair=True)
        assert repaired.repaired, (at, repaired)
        salvaged_some += bool(repaired.unverified)
        again = fsck(path)
        assert again.recorded and not again.ok, (at, again.damage)
        with open_episode(path) as ep:
            for s in ep:
                ep.state_at(s.index)  # raises where a kept step's state cannot be rebuilt
        assert fsck(path, repair=True).repaired is False, at
    assert salvaged_some  # some flips left blocks before the damage to salvage
