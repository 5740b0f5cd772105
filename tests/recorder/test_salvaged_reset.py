"""A reset record ``fsck --repair`` salvages from a damaged first frame is marked unverified (or dropped as lost),
never shown with values the file does not hold.

Damage in the reset's own zstd block: a flipped byte that renames a key (``duration`` read back as the default 0.0),
cuts a map short (``time`` and ``state`` read back as 0.0 and null), or makes a list swallow the step after it. The
salvage keeps a record only where it ends with its block (the writer flushes every record as a block of its own)
and holds only the format's keys; what it keeps of frame 0 is marked unverified, the reset record included.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from damage import blocks, record_stub_episode, repair_after_a_flip_that

from trajrec.cli import main
from trajrec.recorder import ResetLostError, fsck, open_episode, read_index


def _raw_reset(path: Path) -> dict[str, Any]:
    """The reset record as stored (every key it holds, no defaults filled in)."""
    with open_episode(path) as ep:
        return next(r for r in ep._decode(ep.index["frames"][0]) if r.get("t") == "reset")


def _steps(path: Path) -> dict[int, tuple[Any, ...]]:
    with open_episode(path) as ep:
        return {s.index: (s.action, s.observation, s.reward, s.terminated, s.info) for s in ep}


def test_a_salvaged_reset_is_unverified_or_lost_never_filled_with_defaults(tmp_path: Path, stub_env: Any) -> None:
    path = record_stub_episode(tmp_path / "run", stub_env)
    original = path.read_bytes()
    reset = _raw_reset(path)
    before = _steps(path)
    start, stop = blocks(original)[1]  # the reset record's block (the header's is the first)
    copy = tmp_path / "copy" / path.name
    copy.parent.mkdir()
    kept = lost = 0
    for at in range(start + 3, stop):  # every byte of the block's body: each a different kind of damage
        for junk in copy.parent.iterdir():
            junk.unlink()
        data = bytearray(original)
        data[at] ^= 0x01
        copy.write_bytes(bytes(data))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            report = fsck(copy, repair=True)
        assert report.repaired, (at, report)
        with open_episode(copy) as ep:
            try:
                ep.reset
            except ResetLostError:  # dropped as lost with the steps of frame 0: recorded as such
                lost += 1
                assert ep.reset_unverified is None and not report.unverified_reset
                assert ep.lost and ep.lost[0][0] == 0
                continue
            kept += 1
            # Kept: holding exactly the keys the writer wrote (a value read as a default would be shown as
            # recorded), and marked, everywhere a reader looks.
            assert _raw_reset(copy).keys() == reset.keys(), at
            assert ep.reset_unverified and report.unverified_reset, at
            assert any(d.startswith("the reset record unverified: salvaged") for d in ep.damage)
        # Nothing recorded is lost: every step outside the damaged frame reads back as it was.
        got = _steps(copy)
        assert {i: v for i, v in got.items() if i >= 8} == {i: v for i, v in before.items() if i >= 8}
        assert fsck(copy).recorded  # the loss and the doubt are on record: nothing more to repair
    assert kept and lost  # both outcomes were met on this block


def _damaged_reset_kept(tmp_path: Path, stub_env: Any) -> Path:
    """A run folder whose one episode ``fsck --repair`` rewrote keeping its reset record, salvaged from a flipped
    byte in the reset's block (the flip that leaves a record the salvage keeps depends on the compressed bytes)."""
    path = record_stub_episode(tmp_path / "run", stub_env)
    reset = _raw_reset(path)

    def salvaged(p: Path) -> bool:
        with open_episode(p) as ep:
            try:
                ep.reset  # noqa: B018
            except ResetLostError:
                return False
        return _raw_reset(p) != reset

    repair_after_a_flip_that(path, 1, salvaged, "left a salvaged reset record")
    return path.parent


def test_fsck_show_and_exports_say_the_reset_is_unverified(tmp_path: Path, stub_env: Any,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    run = _damaged_reset_kept(tmp_path, stub_env)
    path = next(run.glob("*.msgpack.zst"))
    assert read_index(path)["damaged"][0]["reset"] is True

    assert main(["fsck", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["unverified_reset"] is True and report["recorded"] and report["total_steps"] == 30
    salvaged = report["unverified"][0][1] + 1 if report["unverified"] else 0  # steps of frame 0 kept with it
    assert report["unverified"] == ([[0, salvaged - 1]] if salvaged else [])
    assert report["lost"] == ([[salvaged, 7]] if salvaged < 8 else [])

    assert main(["fsck", str(path)]) == 0  # recorded by the repair: nothing more to do
    out = capsys.readouterr().out
    assert f"PARTIAL  {path} ({report['steps']} readable steps of 30; unverified (salvaged): the reset record" in out
    assert "- the reset record unverified: salvaged from the damaged frame at byte 0" in out

    assert main(["show", str(path)]) == 0
    assert "damage    the reset record unverified: salvaged" in capsys.readouterr().out

    # Every format's prompt is the reset's observation: left out by default, under its own reason (or as a file
    # with lost steps, when some of frame 0's were lost with the damage).
    out_file = tmp_path / "out.jsonl"
    assert main(["export", str(run), "--format", "chat", "--out", str(out_file), "--json"]) == 0
    captured = capsys.readouterr()
    exported = json.loads(captured.out)
    assert exported["written"] == 0
    if not report["lost"]:
        assert exported["unverified"] == [str(path)]
        assert list(exported["left_out"]) == ["reset record unverified (salvaged after damage; --keep-partial "
                                              "exports it)"]
        assert "its reset record was salvaged from damaged bytes" in captured.err

    # --keep-partial exports it, and records says which part no checksum vouches for.
    assert main(["export", str(run), "--format", "records", "--keep-partial", "--out", str(tmp_path / "r.jsonl"),
                 "--json"]) == 0
    capsys.readouterr()
    row = json.loads((tmp_path / "r.jsonl").read_text())
    assert row["reset"]["unverified"] is True
    assert [s["i"] for s in row["steps"] if s["unverified"]] == list(range(salvaged))


def test_files_repaired_before_rows_said_reset_are_read_the_same(tmp_path: Path, stub_env: Any) -> None:
    # A repair by an earlier trajrec wrote the unverified row of a salvaged frame 0 without ``reset``: the layout
    # (the salvaged records at byte 0, the damaged frame's copy right after them) still says the reset is among them.
    from trajrec.recorder.reader import unverified_reset

    index = {"frames": [[0, 0, 8, 900], [900, 8, 0, 1500], [1500, 8, 8, 2300]],
             "damaged": [{"first": 0, "n": 8, "unverified": True, "why": "salvaged"},
                         {"first": 8, "n": 0, "offset": 900, "salvaged": True, "why": "damaged bytes"}]}
    assert unverified_reset(index) == "salvaged"
    # A later frame salvaged (frame 0 whole, no steps in it): the reset is not among the salvaged records.
    index = {"frames": [[0, 0, 0, 300], [300, 0, 8, 900], [900, 8, 0, 1500]],
             "damaged": [{"first": 0, "n": 8, "unverified": True, "why": "salvaged"},
                         {"first": 8, "n": 0, "offset": 900, "salvaged": True, "why": "damaged bytes"}]}
    assert unverified_reset(index) is None
