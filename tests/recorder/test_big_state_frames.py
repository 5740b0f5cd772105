"""A state bigger than ``frame_bytes`` is stored once per frame, not once per step: the snapshot that opens a frame
does not count against the frame's byte budget (a repository-sized tool state used to close every frame after one
step, so every step carried the whole state). Frames stay within the bound readers enforce, and every step's
state still rebuilds exactly, from any frame."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import pytest

from trajrec.recorder import Recorder, open_episode, read_index
from trajrec.recorder.format import decompress_bounded


class RepoEnv(gym.Env):
    """A tool env over a repository-like state: ``n_files`` files of ``file_bytes`` each; a step appends a line."""

    observation_space = gym.spaces.Text(100)
    action_space = gym.spaces.Discrete(1000)

    def __init__(self, n_files: int, file_bytes: int) -> None:
        self.n_files, self.file_bytes = n_files, file_bytes

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.files = {f"src/f{k}.py": f"# file {k}\n" + "x = 1\n" * (self.file_bytes // 6) for k in range(self.n_files)}
        return "ok", {}

    def step(self, action: int):
        name = f"src/f{action % self.n_files}.py"
        self.files[name] += f"y{action} = {action}\n"
        return name, 0.0, False, False, {}

    def state_dict(self) -> dict[str, Any]:
        return self.files


def _record(tmp_path, frame_bytes: int, steps: int, n_files: int = 20, file_bytes: int = 1024):
    env = RepoEnv(n_files, file_bytes)
    rec = Recorder(env, tmp_path, frame_bytes=frame_bytes)
    rec.reset(seed=0)
    states = []
    for a in range(steps):
        rec.step(a)
        states.append({k: v for k, v in env.files.items()})
    rec.close()
    return rec.episode_path, states


@pytest.mark.parametrize("frame_bytes", [4096, 16384])
def test_a_state_bigger_than_frame_bytes_is_stored_once_per_frame(tmp_path, frame_bytes: int) -> None:
    # A ~40 KB state; a step's diff row holds the changed file before and after (~450 bytes).
    path, states = _record(tmp_path, frame_bytes, steps=120, n_files=200, file_bytes=200)
    one_state = sum(len(v) for v in states[-1].values())
    assert one_state > 2 * frame_bytes
    index = read_index(path)
    per_frame = [f[2] for f in index["frames"] if f[2] > 0]
    # A frame holds frame_bytes of diffs (4096: ~8 steps), not one step each.
    assert min(per_frame[:-1]) >= frame_bytes // 600, per_frame
    assert path.stat().st_size < len(per_frame) * one_state / 2  # compressed, one state per frame
    ep = open_episode(path)
    for i in (0, 1, 59, 60, 119, 37, 0):  # random access, across frames, backwards too
        assert ep.state_at(i) == states[i], i


def test_frames_stay_within_frame_bytes_plus_their_snapshot_and_close_on_their_diffs(tmp_path) -> None:
    path, states = _record(tmp_path, 4096, steps=300, n_files=40, file_bytes=300)
    data = path.read_bytes()
    one_state = sum(len(v) for v in states[-1].values())
    for offset, _first, steps, end in read_index(path)["frames"]:
        raw, complete = decompress_bounded(data[offset:end])
        # The opening snapshot (~one state) + frame_bytes of diffs + the step that crossed it (the formula of
        # format.MAX_FRAME_RAW, scaled down): never two snapshots' worth.
        assert complete and len(raw) < one_state + 4096 + 2 * 1024, (steps, len(raw), one_state)
    ep = open_episode(path)
    assert [ep.state_at(i) for i in range(0, 300, 7)] == states[::7]
    # Steps per frame follow the diff budget, not the state's size: several steps in each full frame.
    full = [f[2] for f in read_index(path)["frames"][1:-1]]
    assert full and min(full) >= 4, full
