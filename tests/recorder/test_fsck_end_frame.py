"""``fsck --repair`` never stops with a traceback: a damaged end frame whose block headers do not walk is left
out (the original kept), and a folder repair reports every file in one line each and goes on.

Files are made by the real Recorder and damaged in the small frame holding the end record, just before the index.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import trajrec.recorder
from trajrec.cli import main
from trajrec.recorder import Recorder, fsck, open_episode, read_index


def _record(folder: Path, stub_env: Any, steps: int, name: str) -> Path:
    """A whole number of 8-step frames: the end record gets a small frame of its own."""
    env = Recorder(stub_env(), str(folder), frame_steps=8, state_fn=None)
    env.reset(seed=3)
    for k in range(steps):
        env.step(f"write f{k} text number {k}")
    env.close()
    return Path(env.episode_path).rename(folder / name)


def _steps(path: Path) -> list[tuple[Any, ...]]:
    with open_episode(path) as ep:
        return [(s.index, s.action, s.observation, s.reward) for s in ep]


def _damage_end_frame(path: Path, at: int) -> int:
    """Flip a byte ``at`` bytes into the end record's frame; returns that frame's offset."""
    index = read_index(path)
    data = bytearray(path.read_bytes())
    end_frame = data.rfind(b"\x28\xb5\x2f\xfd", 0, index["index_offset"])
    assert end_frame >= index["frames"][-1][3]  # after every frame of steps
    data[end_frame + at] ^= 0x5A
    path.write_bytes(bytes(data))
    return end_frame


# 1: the zstd magic; 4: the frame header descriptor (the sizes read after it are nonsense)
@pytest.mark.parametrize("at", [1, 4])
def test_repair_of_a_damaged_end_frame_leaves_it_out(tmp_path: Path, stub_env: Any,
                                                     capsys: pytest.CaptureFixture, at: int) -> None:
    path = _record(tmp_path, stub_env, 40, "ep.msgpack.zst")
    before, summary, original = _steps(path), read_index(path)["summary"], path.read_bytes()
    _damage_end_frame(path, at)
    damaged = path.read_bytes()
    report = fsck(path)
    assert not report.ok and any("a frame not holding steps is damaged" in d for d in report.damage)
    assert not any(d.count("28 b5 2f fd") == 2 for d in report.damage)  # never "expected X, found X"
    repaired = fsck(path, repair=True)
    assert repaired.error is None and repaired.repaired, repaired
    assert repaired.steps == 40 and repaired.lost == []
    if repaired.backup:
        assert Path(repaired.backup).read_bytes() == damaged
    assert _steps(path) == before and read_index(path)["summary"] == summary
    assert path.read_bytes() != original  # the damaged frame is gone, not the original restored
    again = fsck(path)
    assert not again.damage or again.recorded
    capsys.readouterr()
    assert main(["fsck", str(path), "--repair"]) == 0


def test_damaged_frame_message_does_not_contradict_itself(tmp_path: Path, stub_env: Any) -> None:
    path = _record(tmp_path, stub_env, 16, "ep.msgpack.zst")
    _damage_end_frame(path, 4)
    text = " ".join(fsck(path).damage)
    assert "a damaged zstd frame" in text and "expected a zstd frame" not in text


def test_folder_repair_goes_on_past_an_unforeseen_fault(tmp_path: Path, stub_env: Any,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "runs"
    folder.mkdir()
    paths = [_record(folder, stub_env, 16, f"{c}.msgpack.zst") for c in "abc"]
    _damage_end_frame(paths[0], 4)
    real = trajrec.recorder.fsck

    def faulty(path: Any, **kw: Any) -> Any:  # a fault no code path foresaw, in the middle file only
        if str(path) == str(paths[1]):
            raise RuntimeError("unforeseen")
        return real(path, **kw)

    monkeypatch.setattr(trajrec.recorder, "fsck", faulty)
    capsys.readouterr()
    assert main(["fsck", str(folder), "--repair"]) == 1
    out = capsys.readouterr().out
    assert f"REPAIRED {paths[0]}" in out and f"ok       {paths[2]}" in out
    line = next(x for x in out.splitlines() if str(paths[1]) in x)
    assert line.startswith("BAD") and "RuntimeError: unforeseen" in line
    assert out.splitlines()[-1].startswith("3 files, 1 ok, 1 with problems, 1 repaired")


def _cut_after_header(path: Path) -> bytes:
    """Cut ``path`` inside its first frame, after the header's block and before the reset record's."""
    from trajrec.recorder import EmptyEpisodeError

    data = path.read_bytes()
    for cut in range(8, read_index(path)["frames"][0][3]):
        path.write_bytes(data[:cut])
        try:
            if read_index(path).get("has_reset") is False:
                return data[:cut]
        except EmptyEpisodeError:
            continue
    raise AssertionError("no cut leaves the header without the reset record")


def test_a_file_cut_inside_its_first_frame_is_bad_not_a_repair_loop(tmp_path: Path, stub_env: Any,
                                                                     capsys: pytest.CaptureFixture) -> None:
    from trajrec.recorder.fsck import _repair

    path = _record(tmp_path, stub_env, 16, "ep.msgpack.zst")
    cut = _cut_after_header(path)
    capsys.readouterr()
    assert main(["fsck", str(path)]) == 1
    first = capsys.readouterr().out
    assert f"BAD      {path}: nothing of the episode can be read" in first and "--repair" not in first.splitlines()[-1]
    assert main(["fsck", str(path), "--repair"]) == 1
    out = capsys.readouterr().out
    assert "REPAIRED" not in out and f"BAD      {path}" in out and path.read_bytes() == cut
    assert main(["fsck", str(path)]) == 1  # the second check agrees with the repair's verdict
    assert capsys.readouterr().out == first
    # A file an earlier version "repaired" (an index over the header alone) is BAD as well, not DAMAGED again.
    _repair(str(path), read_index(path))
    report = fsck(path, repair=True)
    assert not report.repaired and report.error and "nothing of the episode can be read" in report.error
