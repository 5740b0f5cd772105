"""What a file costs once (issue 15, short episodes) is cheaper without changing what is written: the writer's own
compact index equals the general one, frame 0's and the end record's compression choices read back exactly,
and provenance gathered once per process is still fresh per episode."""

from __future__ import annotations

import errno
import os
import time
from types import SimpleNamespace

import gymnasium as gym
import pytest
import zstandard

from trajrec.recorder import Recorder, fsck, open_episode, read_index
from trajrec.recorder import provenance as prov_mod
from trajrec.recorder.format import (SMALL_RECORD, FrameWriter, compact_index, first_record_bytes,
                                     frame_has_checksum, new_compressor, unpackb)
from trajrec.recorder.writer import EpisodeWriter

_real_write = os.write


class _TearWrites:
    """``os.write`` that fails (ENOSPC, after writing half) on the chosen 1-based calls."""

    def __init__(self, fail_at: set[int]) -> None:
        self.fail_at, self.calls = fail_at, 0

    def __call__(self, fd: int, data) -> int:
        self.calls += 1
        if self.calls in self.fail_at:
            _real_write(fd, bytes(data[:len(data) // 2]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return _real_write(fd, data)


@pytest.fixture
def checked_compact_index(monkeypatch):
    """Every compact index the writer builds is compared with ``format.compact_index`` of its general index."""
    seen: list[dict] = []
    direct = EpisodeWriter._compact_index

    def both(self, summary):
        fast = direct(self, summary)
        general = compact_index(self.index(finished=True, summary=summary), self._head)
        assert fast == general
        assert list(fast) == list(general)  # the same keys in the same order: the same packed bytes
        seen.append(fast)
        return fast

    monkeypatch.setattr(EpisodeWriter, "_compact_index", both)
    return seen


def _play(env, actions):
    for a in actions:
        try:
            env.step(a)
        except Exception:  # noqa: BLE001  (the env's own exception, or a write the test tears)
            pass


def test_the_writers_compact_index_is_the_general_one(tmp_path, stub_env, checked_compact_index, monkeypatch):
    # Short CartPole episodes (the benchmark's case), one frame each.
    env = Recorder(gym.make("CartPole-v1"), tmp_path / "cp")
    for seed in range(5):
        env.reset(seed=seed)
        while not any(env.step(seed % 2)[2:4]):
            pass
    env.close()
    # Several frames, checks of steps and of the episode, failures, a retry and a recovery, an exception,
    # the env's own checks, and an episode closed in the middle of a frame.
    env = Recorder(stub_env(), tmp_path / "tool", frame_steps=3)
    env.reset(seed=0)
    _play(env, ["cat nope", "cat nope", "cat notes.txt", "boom", "write a b", "cat todo.txt", "bad"])
    env.check(True, judge="t@1")
    env.check(False, judge="t@1", target="episode")
    _play(env, ["write done yes"])
    env.reset(seed=1)
    _play(env, ["cat notes.txt", "cat x"])
    env.close()
    # A torn write: the frame it cut is closed early (or dropped) and the index must say so.
    monkeypatch.setattr(FrameWriter, "write_fd", staticmethod(_TearWrites({4, 9})))
    env = Recorder(stub_env(), tmp_path / "torn", frame_steps=4)
    env.reset(seed=0)
    _play(env, [f"cat notes.txt {k}" for k in range(10)])
    env.close()
    monkeypatch.undo()
    assert len(checked_compact_index) == 8  # 5 CartPole files, 2 tool env files, 1 torn file
    assert any(len(c["f"]) > 3 for c in checked_compact_index)  # several frames listed
    assert any(c.get("c") and c.get("sc") and c["m"] for c in checked_compact_index)
    for folder in ("cp", "tool", "torn"):
        for path in (tmp_path / folder).iterdir():
            report = fsck(path)  # sound; the torn file's lost env steps are recorded in it (not ok, nothing to do)
            assert report.ok or (report.recorded and report.unwritten and not report.damage), path


def test_frame_0_of_a_small_reset_takes_the_fast_compressor_and_reads_back(tmp_path):
    cc = new_compressor(3)
    assert cc.compressobj(10, header=True) is not None and cc._head is not None
    # Only frame 0 (the header's) of a small reset record; not later frames, big records or higher levels.
    assert type(cc.compressobj(10)) is type(cc.compressobj(SMALL_RECORD, header=True))
    high = new_compressor(9)
    high.compressobj(10, header=True)
    assert high._head is None
    env = Recorder(gym.make("CartPole-v1"), tmp_path)
    env.reset(seed=3)
    written = []
    while True:
        obs, reward, term, trunc, info = env.step(1)
        written.append((obs.tolist(), reward, term))
        if term or trunc:
            break
    env.close()
    path = env.episode_path
    data = path.read_bytes()
    index = read_index(path)
    # Frame 0 is one standard zstd frame with its content checksum; the header is its first block's record.
    assert frame_has_checksum(data, 0)
    raw0 = zstandard.ZstdDecompressor().decompressobj().decompress(data[:index["frames"][0][3]])
    assert len(first_record_bytes(raw0)) > 0
    ep = open_episode(path)
    assert [(s.observation.tolist(), s.reward, s.terminated) for s in ep] == written
    assert ep.summary["outcome"] == "terminated"
    assert fsck(path).ok


def test_the_end_records_frame_is_a_checked_frame_of_its_own(tmp_path, stub_env):
    env = Recorder(stub_env(), tmp_path)
    env.reset(seed=0)
    env.step("cat notes.txt")
    env.step("write done yes")  # terminates: the step closes frame 0, so the end record takes the one-call path
    env.close()
    data = env.episode_path.read_bytes()
    index = read_index(env.episode_path)
    end_at = index["frames"][-1][3]
    assert frame_has_checksum(data, end_at)
    tail = zstandard.ZstdDecompressor().decompressobj().decompress(data[end_at:index["index_offset"]])
    assert unpackb(tail)["t"] == "end"
    assert open_episode(env.episode_path).summary["outcome"] == "passed"  # the env's own check of the episode
    assert fsck(env.episode_path).ok


def test_provenance_is_gathered_once_but_fresh_per_episode(tmp_path, stub_env, monkeypatch):
    env = stub_env()
    a = prov_mod.gather(env, agent={"name": "x"}, extra=None, run_id="r1")
    b = prov_mod.gather(env, agent=None, extra={"lineage": {"from": "y"}}, run_id="r2")
    for key in ("packages", "env_package"):
        assert a[key] == b[key] and a[key] is not b[key]
    a["packages"]["numpy"] = "edited"
    a["env_package"]["class"] = "edited"
    c = prov_mod.gather(env, agent=None, extra=None, run_id="r3")
    assert c["packages"]["numpy"] != "edited" and c["env_package"]["class"] != "edited"
    assert (a["agent"], b["agent"], b["lineage"], c["run_id"]) == ({"name": "x"}, None, {"from": "y"}, "r3")
    assert a["pid"] == os.getpid()
    assert list(a) == ["recorder", "python", "platform", "host", "argv", "pid", "packages", "env_package",
                       "code_revision", "start_time", "run_id", "agent", "lineage"]
    # The code revision follows the working folder from one episode to the next.
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text(sha + "\n")
    monkeypatch.chdir(repo)
    assert prov_mod.gather(env, agent=None, extra=None, run_id=None)["code_revision"]["commit"] == sha
    monkeypatch.chdir(tmp_path)
    assert (prov_mod.gather(env, agent=None, extra=None, run_id=None)["code_revision"] or {}).get("commit") != sha


def test_the_start_time_text_is_the_clocks(monkeypatch):
    for _ in range(3):  # retried if the second turns between the two readings
        before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        text = prov_mod._utc_text()
        if before == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()):
            assert text == before
            break
    fixed = 1_800_000_000.7
    monkeypatch.setattr(prov_mod, "time", SimpleNamespace(time=lambda: fixed, strftime=time.strftime, gmtime=time.gmtime))
    assert prov_mod._utc_text() == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(fixed))
