"""`read_records`: an episode's index and raw step records in one pass, the same as `Episode` gives them."""

from __future__ import annotations

import gymnasium as gym
import pytest

import trajrec.recorder.reader as reader
from trajrec.recorder import Recorder, TrajrecFormatError, open_episode, read_index, read_records
from trajrec.recorder.format import packb


def _record(folder, steps: int = 30):
    env = Recorder(gym.make("CartPole-v1"), folder, frame_steps=8)  # several frames
    env.reset(seed=0)
    for i in range(steps):
        env.note(thought=f"t{i}")
        _, _, term, trunc, _ = env.step(i % 2)
        if term or trunc:
            break
    env.close()
    return env.episode_path


def _same_as_episode(path) -> None:
    index, records = read_records(path)
    with open_episode(path) as ep:
        # Compared as bytes: records hold numpy arrays, which == does not compare whole.
        assert [packb(r) for r in records] == [packb(r) for r in ep.iter_records()]
        assert index["header"] == ep.header and index["summary"] == ep.summary
        assert index["complete"] == ep.complete


def test_small_file_read_in_one_go_matches_the_episode(tmp_path):
    path = _record(tmp_path)
    index, records = read_records(path)
    assert len(index["frames"]) > 2
    assert not isinstance(records, list)  # an iterator: nothing decoded until asked
    _same_as_episode(path)
    assert index == {**read_index(path), "complete": True, "damage": []}


def test_big_file_goes_frame_by_frame(tmp_path, monkeypatch):
    path = _record(tmp_path)
    monkeypatch.setattr(reader, "_WHOLE_READ", 16)  # every file counts as big
    _same_as_episode(path)


def test_file_without_index_is_scanned(tmp_path):
    path = _record(tmp_path)
    frames = read_index(path)["frames"]
    data = path.read_bytes()
    path.write_bytes(data[: max(f[3] for f in frames)])  # what a killed writer leaves
    index, records = read_records(path)
    assert index["complete"] is False
    assert len(list(records)) == index["steps"] > 0


def test_not_an_episode_names_the_file(tmp_path):
    bad = tmp_path / "x.msgpack.zst"
    bad.write_bytes(b"hello world, not zstd")
    with pytest.raises(TrajrecFormatError, match="x.msgpack.zst"):
        read_records(bad)
