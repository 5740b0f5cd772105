"""Damaged episode files (a flipped bit in a steps frame, a cut file) never stop an export: every format, with and
without ``--workers``, leaves the damaged episode out whole, names it with the ``trajrec fsck`` fix, counts it as
unreadable in the report and the dataset card, and writes the others exactly as it would without that file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

from trajrec.recorder import Recorder, open_episode
from trajrec.replay.exports import export
from trajrec.replay.exports import parallel
from trajrec.replay.exports.pipeline import FORMATS, PARALLEL_FORMATS, UNREADABLE


def _long_episode(folder: Path) -> Path:
    """A Shell episode in frames of 2 steps, so damage in its last frame is met after its first rows were made."""
    import trajrec.envs  # noqa: F401 - registers the ids
    from trajrec.envs.agents import make_agent
    from trajrec.envs.runner import run_episode

    env = Recorder(gym.make("trajrec/Shell-v0"), folder, frame_steps=2)
    for seed in range(40):  # the first seed whose episode spans 3 frames or more
        run_episode(env, make_agent("trajrec/Shell-v0", seed=seed, skill=0.3), seed=seed)
        path = sorted(folder.glob("*.msgpack.zst"), key=lambda p: p.stat().st_mtime_ns)[-1]
        if len(open_episode(path).index["frames"]) >= 3:
            env.close()
            return path
        path.unlink()
    raise AssertionError("no Shell episode of 3 frames in 40 seeds")


@pytest.fixture
def damaged(builtin_run: Path, tmp_path: Path) -> tuple[Path, Path, list[Path]]:
    """``(damaged run, the same run without the damaged files, the damaged files)``."""
    from trajrec.replay.autolabel import label_with_rules

    flipped = _long_episode(builtin_run / "shell")
    label_with_rules([flipped])  # labeled like the others, so no format leaves it out before reading its steps
    frame = open_episode(flipped).index["frames"][-1]
    data = bytearray(flipped.read_bytes())
    data[(frame[0] + frame[3]) // 2] ^= 0x10  # inside the last steps frame: its checksum catches it
    flipped.write_bytes(bytes(data))
    with pytest.raises(Exception):
        list(open_episode(flipped))
    assert open_episode(flipped)[0] is not None  # the first frame still reads: rows were made before the damage
    cut = sorted((builtin_run / "support").glob("*.msgpack.zst"))[2]
    cut.write_bytes(cut.read_bytes()[:40])  # cut inside the header frame: nothing readable
    clean = tmp_path / "clean"
    shutil.copytree(builtin_run, clean)
    for f in (flipped, cut):
        (clean / f.relative_to(builtin_run)).unlink()
    return builtin_run, clean, [flipped, cut]


def _data(out: Path, fmt: str) -> object:
    """What an export wrote, without its dataset card (which counts the damaged files)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return [pq.read_table(p).to_pylist() for p in sorted(out.rglob("*.parquet"))]
    if fmt == "atif":
        return {p.name: p.read_text() for p in sorted(out.glob("*.trajectory.json"))}
    return (out / "data.jsonl").read_text()


@pytest.mark.parametrize(("fmt", "workers"), [(f, 1) for f in FORMATS] + [(f, 2) for f in PARALLEL_FORMATS])
def test_damaged_episodes_are_left_out_whole_and_the_rest_written(
        damaged: tuple[Path, Path, list[Path]], tmp_path: Path, fmt: str, workers: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "HEAD_START", False)  # every batch through the pool
    run, clean, bad = damaged
    rep = export([run], fmt, f"{tmp_path / 'out'}/", workers=workers)
    want = export([clean], fmt, f"{tmp_path / 'want'}/", workers=1)

    assert _data(tmp_path / "out", fmt) == _data(tmp_path / "want", fmt)  # no row of a damaged episode
    assert [p for p, _ in rep.errors] == [str(bad[0])]  # the cut one holds no whole record: skipped as empty
    assert sum(rep.left_out[UNREADABLE].values()) == 1
    assert rep.written == want.written > 0
    if fmt != "atif":  # atif writes trajectories, no dataset card
        card = (tmp_path / "out" / "README.md").read_text()
        assert f"| left out: {UNREADABLE} | 1 |" in card


@pytest.mark.parametrize("workers", ["1", "2"])
def test_cli_names_each_damaged_file_with_the_fsck_fix(damaged: tuple[Path, Path, list[Path]], tmp_path: Path,
                                                        workers: str) -> None:
    run, _, bad = damaged
    out = tmp_path / "x.jsonl"
    proc = subprocess.run([sys.executable, "-m", "trajrec", "export", str(run), "--format", "records", "--out",
                           str(out), "--workers", workers], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr  # written, with files left out: as `report` and `label auto`
    skipped = [line for line in proc.stderr.splitlines() if line.startswith("trajrec export: skipped ")]
    assert len(skipped) == 2 and all("trajrec fsck" in line for line in skipped), proc.stderr
    assert all(any(str(b) in line for line in skipped) for b in bad)
    assert f"1 (1 passed, 0 failed): {UNREADABLE}" in proc.stderr
    ids = {json.loads(line)["episode_id"] for line in out.read_text().splitlines()}
    assert not ids & {open_episode(bad[0]).episode_id}


@pytest.mark.parametrize("workers", [1, 2])
def test_a_file_cut_mid_steps_exports_its_readable_steps_as_incomplete(builtin_run: Path, tmp_path: Path,
                                                                        workers: int,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A cut file reads as a recording whose writer was killed (no way to tell them apart): its whole frames are
    exported as an ``incomplete`` episode, which ``--where outcome!=incomplete`` leaves out."""
    monkeypatch.setattr(parallel, "HEAD_START", False)
    path = _long_episode(builtin_run / "shell")
    frames = open_episode(path).index["frames"]
    path.write_bytes(path.read_bytes()[:frames[-1][0] + 5])  # the last steps frame cut
    kept = frames[-1][1]  # the steps of the whole frames before it
    out = tmp_path / "x.jsonl"
    rep = export([builtin_run], "records", out, workers=workers)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    mine = [r for r in rows if r["episode_id"] == open_episode(path).episode_id]
    assert len(mine) == 1 and mine[0]["complete"] is False and mine[0]["damage"] and not rep.errors
    assert len(json.loads(mine[0]["steps"]) if isinstance(mine[0]["steps"], str) else mine[0]["steps"]) == kept


def test_run_rows_leave_a_damaged_episode_out_whole(damaged: tuple[Path, Path, list[Path]]) -> None:
    pytest.importorskip("pyarrow")
    from trajrec import open_run

    run, clean, bad = damaged
    r = open_run(run)
    with pytest.warns(UserWarning, match="trajrec fsck"):
        table = r.to_arrow()
    assert table.to_pylist() == open_run(clean).to_arrow().to_pylist()
    assert str(bad[0]) in [p for p, _ in r.errors]
    with pytest.warns(UserWarning, match="left out, damaged") as seen:
        rows = list(open_run(run).steps())
    assert len(rows) == table.num_rows
    for w in seen:  # the fix named once (FINDINGS12 #6: the reader's advice, then the same advice again)
        assert str(w.message).count("trajrec fsck") == 1, w.message
