"""A damaged header record (the first block of frame 0; a version-3 index keeps only its CRC-32, no copy) no longer
makes a file permanently unreadable: ``fsck`` says what is damaged and where, ``fsck --repair`` keeps every
readable record with the header marked lost (no invented task or provenance), and readers and exports treat the
repaired file as a partial one.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import pytest
from damage import blocks

from trajrec.cli import main
from trajrec.recorder import ResetLostError, Recorder, fsck, open_episode, read_index


def _record(folder: Path, stub_env: Any) -> Path:
    env = Recorder(stub_env(), str(folder), frame_steps=8)  # state recorded (the stub's state_dict)
    env.reset(seed=3)
    for k in range(29):
        env.step(f"write f{k} text number {k} " + "x" * (k % 7))
    env.step("write done yes")  # the terminal step: its check and the outcome are in the index
    env.close()
    return Path(env.episode_path)


def _steps(path: Path) -> dict[int, tuple[Any, ...]]:
    with open_episode(path) as ep:
        return {s.index: (s.action, s.observation, s.reward, s.terminated, s.info) for s in ep}


def _damage(path: Path, how: str) -> str:
    """Damage the header record's block, or frame 0's own header before it; returns how ``fsck`` names the place."""
    data = bytearray(path.read_bytes())
    start, stop = blocks(bytes(data))[0]
    if how == "flip":  # a flipped byte inside the block: zstd may decode it to a wrong byte, or stop
        data[(start + 3 + stop) // 2] ^= 0x5A
        where = f"frame 0's first zstd block, bytes {start}..{stop - 1}, which held it alone, is damaged"
    elif how == "reserved":  # zstd's reserved block type: nothing of frame 0 can be decompressed (RFC 8878, 3.1.1.2)
        data[start] |= 0b110
        # The block's true extent is still found (what it decompresses to, given a mended header, matches the
        # header record's length and CRC-32 in the index: FINDINGS34 B8).
        where = (f"frame 0's first zstd block, bytes {start}..{stop - 1} (its block header is damaged: zstd refuses "
                 "it), which held it alone, is damaged")
    elif how == "size":  # the block's size field: its own extent would be read wrong (FINDINGS34 B8)
        data[start + 1] ^= 0x10  # the size grows or shrinks by 512 bytes
        claimed = int.from_bytes(data[start:start + 3], "little") >> 3
        where = (f"frame 0's first zstd block, bytes {start}..{stop - 1} (its block header is damaged: it gives "
                 f"{claimed} bytes, which do not end where the next block starts), which held it "
                 "alone, is damaged")
    elif how == "block-head":  # the block header and the record both: the extent cannot be told, and is not made up
        data[start] |= 0b110
        data[(start + 3 + stop) // 2] ^= 0x5A
        where = f"the header of frame 0's first zstd block (the header record's), at byte {start}, is damaged"
    else:  # frame 0's zstd magic number (byte 0 is no zstd frame any more), or its frame descriptor (a reserved bit)
        data[0 if how == "magic" else 4] ^= 0x5A
        where = "the zstd frame header of frame 0, from byte 0, is damaged"
    path.write_bytes(bytes(data))
    return where


@pytest.mark.parametrize("how", ["flip", "reserved", "size", "block-head", "magic", "descriptor"])
def test_fsck_repair_keeps_the_steps_of_a_file_whose_header_record_is_damaged(
        tmp_path: Path, stub_env: Any, capsys: pytest.CaptureFixture[str], how: str) -> None:
    path = _record(tmp_path / "run", stub_env)
    with open_episode(path) as ep:
        header, summary, checks = ep.header, ep.summary, [c.to_record() for c in ep.checks]
        state_29 = ep.state_at(29)
    before = _steps(path)
    where = _damage(path, how)
    damaged = path.read_bytes()
    frame0 = damaged[:read_index(path)["frames"][0][3]]

    # Before the repair: the reader names what is damaged, and where, instead of refusing the file.
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the index is sound: no fallback to a scan
        index = read_index(path)
    assert index["complete"] and index["header"]["lost"]["why"].startswith(where.removesuffix(" is damaged"))
    assert "task" not in index["header"] and "provenance" not in index["header"]
    assert main(["fsck", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"DAMAGED  {path} (header record lost (task and provenance unknown); 22 readable steps of 30; lost: " \
           "steps 0..7)" in out
    assert f"- the header record lost: {where}: " in out
    assert "run with --repair to fix 1" in out

    assert main(["fsck", str(path), "--repair"]) == 0
    out = capsys.readouterr().out
    assert f"REPAIRED {path} (header record lost (task and provenance unknown); " in out
    assert list(path.parent.iterdir()) == [path]  # no FILE.orig: every byte is carried over, see below
    assert frame0 in path.read_bytes()  # the damaged frame, byte for byte (forensics)

    report = fsck(path)
    assert report.recorded and not report.ok and not report.complete and report.closed
    assert report.header_lost and report.header_lost.startswith(where)
    salvaged = report.unverified[0][1] + 1 if report.unverified else 0
    assert report.lost == ([[salvaged, 7]] if salvaged < 8 else []) and report.steps == 22 + salvaged
    assert fsck(path, repair=True).repaired is False  # nothing more to repair

    with open_episode(path) as ep:
        # Nothing invented: the task and provenance are absent; the id comes from the file name, and says so.
        lost = ep.header_lost
        assert lost is not None and lost["why"] == report.header_lost and lost["crc32"] == index["header"]["lost"][
            "crc32"] and lost["length"] == index["header"]["lost"]["length"]
        assert ep.task == {} and ep.provenance == {} and "task" not in ep.header
        assert ep.header["episode_id"] == header["episode_id"] == path.name.removesuffix(".msgpack.zst")
        assert "file name" in lost["from"]["episode_id"]
        assert ep.header["version"] == header["version"] and ep.header["magic"] == "trajrec"
        # Nothing recorded is lost: the summary, the checks and every step after frame 0 are as recorded.
        assert ep.summary == summary and [c.to_record() for c in ep.checks] == checks
        got = {s.index: (s.action, s.observation, s.reward, s.terminated, s.info) for s in ep}
        assert {i: v for i, v in got.items() if i >= 8} == {i: v for i, v in before.items() if i >= 8}
        assert sorted(got) == list(range(salvaged)) + list(range(8, 30))
        assert ep.state_at(29) == state_29
        assert any(d.startswith("the header record lost: ") and "task and the provenance it held are unknown" in d
                   for d in ep.damage)
        if salvaged or ep.reset_unverified:
            assert ep.reset_unverified  # salvaged from after the damaged block: unverified, like its steps
        else:
            with pytest.raises(ResetLostError, match="lost to damaged bytes with the header record"):
                ep.reset

    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "header    LOST to damaged bytes: env, task, agent and provenance unknown" in out
    assert "env       " not in out

    from trajrec.tui.episode_header import header_text  # the viewer's header says why env and task are "-"

    with open_episode(path) as ep:
        assert "(header record lost to damage: task and provenance unknown)" in header_text(ep).plain

    assert main(["ls", str(path.parent), "--json"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert row["complete"] is False and row["steps"] == 22 + salvaged

    # Exports leave it out (no row could say which task it was), --keep-partial writes it marked.
    assert main(["export", str(path.parent), "--format", "records", "--out", str(tmp_path / "a.jsonl"),
                 "--json"]) == 0
    captured = capsys.readouterr()
    assert list(json.loads(captured.out)["left_out"]) == [
        "header record lost (repaired after damage: task and provenance unknown; --keep-partial exports it)"]
    assert "its header record was lost to damage" in captured.err
    assert main(["export", str(path.parent), "--format", "records", "--keep-partial", "--out",
                 str(tmp_path / "b.jsonl"), "--json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    if exported["written"]:
        row = json.loads((tmp_path / "b.jsonl").read_text())
        assert row["complete"] is False and row["task"] == "null" and row["provenance"] == "null"
        assert row["reset"]["unverified"] is True
    else:  # the reset record went with the header: no first observation to write
        assert list(exported["left_out"]) == ["reset record lost (repaired after damage)"]


def test_a_sound_first_frame_that_does_not_match_the_index_is_still_scanned(tmp_path: Path, stub_env: Any) -> None:
    # Only damage in frame 0 makes the header lost: an index whose header CRC-32 names another header (frame 0
    # verifies) is the inconsistent one, and the reader scans the frames instead, as before.
    from trajrec.recorder.format import packb, write_index_to

    path = _record(tmp_path / "run", stub_env)
    index = read_index(path)
    data = path.read_bytes()[:index["index_offset"]]
    path.write_bytes(data)
    with open(path, "ab") as fh:
        write_index_to(str(path), {k: v for k, v in index.items() if k in ("version", "steps", "frames", "header",
                                                                           "summary", "checks", "step_checks")},
                       fh.fileno(), head=packb({"t": "header", "magic": "trajrec", "version": 3, "episode_id": "x"}))
        os.fsync(fh.fileno())
    with pytest.warns(RuntimeWarning, match="header record does not match"):
        with open_episode(path) as ep:
            assert not ep.complete and ep.header_lost is None and ep.header["episode_id"] != "x"


def test_a_frame_whose_steps_were_all_salvaged_is_not_called_a_frame_holding_no_steps(
        tmp_path: Path, stub_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """FINDINGS34 B8: after the repair of a flipped byte in the header record's block, `show` and `fsck` listed
    "a frame holding no steps lost" beside "steps 0..7 unverified" salvaged from that same frame."""
    path = _record(tmp_path / "run", stub_env)
    _damage(path, "flip")
    assert main(["fsck", str(path), "--repair"]) == 0
    with open_episode(path) as ep:
        assert ep.readable_steps == 30 and not ep.lost  # every step of frame 0 salvaged
    capsys.readouterr()
    for argv in (["show", str(path)], ["fsck", str(path)]):
        main(argv)
        out = capsys.readouterr().out
        assert "steps 0..7 unverified" in out and "a frame holding no steps" not in out
        assert ("no step lost from the damaged frame of steps 0..7: every one was salvaged (unverified, above), "
                "and the frame's damaged bytes are kept as they were: ") in " ".join(out.split())
