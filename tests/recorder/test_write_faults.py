"""Write faults never lose what was written before them: a failed write is rolled back to the last whole block,
or the file is marked broken and takes no more writes; fsck tells the truth; a live file is locked; a file
killed at its first write is an empty stub that readers skip and repair removes."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import pytest

from trajrec.recorder import EmptyEpisodeError, Recorder, TrajrecIOError, fsck, open_episode, read_index
from trajrec.recorder.format import FrameWriter

_real_write = os.write  # the fake below may itself be installed as os.write


class FailingWrites:
    """An ``os.write`` stand-in that tears chosen writes: writes part of the bytes, then fails with ``err``.

    ``fail_at`` holds the numbers (1-based, counted over the file's writes) of the writes that fail;
    ``always`` makes every write from the first failing one on fail (a disk that stays full).
    """

    def __init__(self, fail_at: set[int], *, part: float = 0.5, err: int = errno.ENOSPC, always: bool = False):
        self.fail_at = fail_at
        self.part = part
        self.err = err
        self.always = always
        self.calls = 0
        self.failed = 0

    def __call__(self, fd: int, data) -> int:
        self.calls += 1
        if self.calls in self.fail_at or (self.always and self.failed):
            self.failed += 1
            n = int(len(data) * self.part)
            if n:
                _real_write(fd, bytes(data[:n]))
            raise OSError(self.err, os.strerror(self.err))
        return _real_write(fd, data)


def _steps(env, n, start=0):
    done = []
    for k in range(start, start + n):
        try:
            env.step(f"cat notes.txt {k}")
            done.append(k)
        except TrajrecIOError as exc:
            done.append(exc)
    return done


@pytest.mark.parametrize("part", [0.0, 0.3, 0.99])
def test_a_torn_write_is_rolled_back_and_recording_goes_on(tmp_path, stub_env, part):
    env = Recorder(stub_env(), tmp_path, frame_steps=8)
    env.reset(seed=0)
    _steps(env, 5)
    fake = FailingWrites({3, 7}, part=part)  # the 3rd and 7th writes from now on fail half way
    env._writer._fw.write_fd = fake
    results = _steps(env, 12, start=5)
    env.close()
    errors = [r for r in results if isinstance(r, TrajrecIOError)]
    assert len(errors) == 2
    for e in errors:  # one clear error each, naming the file and the cause
        assert str(env.episode_path) in str(e) and "No space left on device" in str(e)
    ep = open_episode(env.episode_path)
    written = [k for k in range(5)] + [r for r in results if not isinstance(r, TrajrecIOError)]
    assert [s.observation for s in ep] == ["hello"] * len(written)
    assert [s.action for s in ep] == [f"cat notes.txt {k}" for k in written]
    assert [s.index for s in ep] == list(range(len(written)))  # no gap where the lost records were
    report = fsck(env.episode_path)  # sound, and says the two env steps whose records were lost
    assert report.closed and not report.complete and not report.damage and report.steps == len(written)
    assert not report.ok and report.recorded and sum(n for _k, n in report.unwritten) == 2


def test_state_after_a_lost_step_is_resynchronised_by_a_snapshot(tmp_path, stub_env):
    def step_fn(env, action):
        env.state["log"].append(action)
        return "ok", 0.0, False, False, {}

    env = Recorder(stub_env(step_fn=step_fn), tmp_path, frame_steps=100)
    env.reset(seed=0)
    env._writer._fw.write_fd = FailingWrites({3})
    outcome = []
    for k in range(6):
        try:
            env.step(f"a{k}")
            outcome.append(k)
        except TrajrecIOError:
            outcome.append(None)
    env.close()
    ep = open_episode(env.episode_path)
    assert len(ep) == 5
    # The env's state went on through the lost step; each recorded step's state is the env's state then.
    assert ep.state_at(len(ep) - 1)["log"] == [f"a{k}" for k in range(6)]
    assert ep.state_at(1)["log"] == ["a0", "a1"]
    assert ep.state_at(2)["log"] == ["a0", "a1", "a2", "a3"]  # a2's record was lost, its change was not


def test_a_disk_that_stays_full_breaks_nothing_written_before(tmp_path, stub_env):
    env = Recorder(stub_env(), tmp_path, frame_steps=4)
    env.reset(seed=0)
    _steps(env, 6)
    env._writer._fw.write_fd = FailingWrites({1}, always=True)
    results = _steps(env, 3, start=6)
    assert all(isinstance(r, TrajrecIOError) for r in results)
    with pytest.raises(TrajrecIOError, match="No space left on device"):
        env.close()  # the end record and the index cannot be written either: said once, at close
    assert [s.action for s in open_episode(env.episode_path)] == [f"cat notes.txt {k}" for k in range(6)]
    report = fsck(env.episode_path)
    assert not report.ok and not report.complete and report.steps == 6  # the truth: no index, 6 steps
    assert fsck(env.episode_path, repair=True).repaired
    assert fsck(env.episode_path).ok


def test_when_the_roll_back_fails_too_the_file_is_broken_and_refuses_writes(tmp_path, stub_env, monkeypatch):
    env = Recorder(stub_env(), tmp_path, frame_steps=100)
    env.reset(seed=0)
    _steps(env, 4)
    fw = env._writer._fw
    fw.write_fd = FailingWrites({1}, part=0.5)

    def no_truncate(fd, size):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "ftruncate", no_truncate)
    with pytest.raises(TrajrecIOError, match="could not be rolled back"):
        env.step("cat notes.txt")
    monkeypatch.undo()
    with pytest.raises(TrajrecIOError, match="is broken since an earlier write failed"):
        env.step("cat notes.txt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env.close()  # no second error: the agent was told; a warning says the index is missing
    assert any("closed without its index" in str(w.message) for w in caught)
    # Never appended after the torn bytes: the 4 steps read back, fsck reports the torn tail.
    assert [s.index for s in open_episode(env.episode_path)] == [0, 1, 2, 3]
    report = fsck(env.episode_path)
    assert not report.ok and report.steps == 4 and not report.complete


def test_a_failed_first_write_leaves_the_empty_stub_repair_removes(tmp_path, stub_env, monkeypatch):
    """The header and reset are the first write; when it fails, closing the episode writes nothing more: the file
    stays the empty stub readers skip and repair removes (FINDINGS18 #2: close wrote the header, an end record and
    an index with no reset, which ls listed as a whole episode, export called damaged and fsck failed on for good,
    --repair unable to help). Recording goes on in the next episode's file."""
    fake = FailingWrites({1})
    monkeypatch.setattr(FrameWriter, "write_fd", staticmethod(fake))
    env = Recorder(stub_env(), tmp_path)
    with pytest.raises(TrajrecIOError):
        env.reset(seed=0)
    failed = env.episode_path
    assert os.path.getsize(failed) == 0  # rolled back to nothing, not a torn header
    env.reset(seed=1)  # space is back: the failed episode is closed, the next one recorded
    env.step("cat notes.txt")
    env.close()
    assert os.path.getsize(failed) == 0
    with pytest.raises(EmptyEpisodeError):
        open_episode(failed)
    assert len(open_episode(env.episode_path)) == 1
    assert fsck(failed, repair=True).removed and not os.path.exists(failed)
    assert fsck(env.episode_path).ok


def test_a_live_writer_holds_a_lock_and_repair_refuses_it(tmp_path, stub_env):
    env = Recorder(stub_env(), tmp_path)
    env.reset(seed=0)
    _steps(env, 3)
    before = env.episode_path.read_bytes()
    report = fsck(env.episode_path, repair=True)
    assert report.live and not report.repaired
    assert "being written by a live Recorder" in report.error
    assert env.episode_path.read_bytes() == before
    _steps(env, 2, start=3)
    env.close()
    assert len(open_episode(env.episode_path)) == 5  # nothing lost to a repair under the writer's feet
    assert fsck(env.episode_path).ok


def test_repair_of_a_dead_writers_file_from_another_process(tmp_path):
    # A real child process records 3 steps and is killed (SIGKILL: no close); the lock dies with it.
    code = (
        "import os, sys, gymnasium as gym\n"
        "from trajrec.recorder import Recorder\n"
        "env = Recorder(gym.make('CartPole-v1'), sys.argv[1])\n"
        "env.reset(seed=0)\n"
        "for _ in range(3): env.step(0)\n"
        "print(env.episode_path, flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    path = Path(out.stdout.strip())
    report = fsck(path, repair=True)
    assert report.repaired and not report.live
    assert len(open_episode(path)) == 3 and fsck(path).ok


@pytest.mark.parametrize("content", [b"", b"\x28", b"\x28\xb5\x2f\xfd", b"\x28\xb5\x2f\xfd\x00\x58"])
def test_a_stub_is_an_empty_episode_that_readers_skip_and_repair_removes(tmp_path, stub_env, content, capsys):
    from trajrec.replay.library import scan

    env = Recorder(stub_env(), tmp_path)
    env.reset(seed=0)
    _steps(env, 1)
    env.close()
    stub = tmp_path / "stub.msgpack.zst"
    stub.write_bytes(content)
    with pytest.raises(EmptyEpisodeError, match="empty episode, nothing recorded"):
        read_index(stub)
    batches = list(scan([tmp_path], use_catalog=False))
    entries = [e for b in batches for e in b.entries]
    assert [e.path for e in entries] == [str(env.episode_path)]
    assert any("empty episode, nothing recorded" in p for b in batches for p in b.problems)
    report = fsck(stub)
    assert report.empty and not report.ok
    removed = fsck(stub, repair=True)
    assert removed.removed and not stub.exists()


def test_cli_ls_and_fsck_on_a_stub(tmp_path, stub_env):
    from trajrec.cli import main

    env = Recorder(stub_env(), tmp_path)
    env.reset(seed=0)
    _steps(env, 1)
    env.close()
    (tmp_path / "stub.msgpack.zst").write_bytes(b"")
    assert main(["ls", str(tmp_path)]) == 0
    assert main(["fsck", str(tmp_path)]) == 1
    assert main(["fsck", "--repair", str(tmp_path)]) == 0
    assert not (tmp_path / "stub.msgpack.zst").exists()


# -- a real full disk: a tiny tmpfs -------------------------------------------------------------------------------

@pytest.fixture
def tiny_fs():
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root on Linux; the injected-fault tests above cover the same paths")
    mnt = tempfile.mkdtemp(prefix="trajrec-tmpfs-")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt], capture_output=True, text=True)
    if res.returncode != 0:
        os.rmdir(mnt)
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield Path(mnt)
    finally:
        subprocess.run(["umount", "-l", mnt], check=False)
        os.rmdir(mnt)


def test_disk_full_on_a_real_tmpfs_then_space_freed(tiny_fs, stub_env):
    def step_fn(env, action):
        return os.urandom(3000).hex(), 0.0, False, False, {}  # incompressible: fills the disk fast

    filler = tiny_fs / "filler"
    filler.write_bytes(os.urandom(700 * 1024))
    env = Recorder(stub_env(step_fn=step_fn), tiny_fs / "run", frame_steps=16)
    env.reset(seed=0)
    written, errors = 0, 0
    for _ in range(400):
        try:
            env.step("x")
            written += 1
        except TrajrecIOError as exc:
            errors += 1
            assert "No space left on device" in str(exc) and str(env.episode_path) in str(exc)
            if errors == 3:
                filler.unlink()  # space comes back: the episode goes on
        if errors >= 3 and written >= 150:
            break
    env.close()
    assert errors >= 1
    ep = open_episode(env.episode_path)
    assert len(ep) == written and [s.index for s in ep] == list(range(written))
    assert all(len(s.observation) == 6000 for s in ep)
    report = fsck(env.episode_path)  # sound; the lost env steps are recorded in it
    assert report.recorded and report.unwritten and not report.damage and report.closed and not report.complete


def test_label_line_torn_by_a_full_disk_does_not_swallow_the_next(tiny_fs, stub_env):
    from trajrec.replay.labels import LabelStore

    env = Recorder(stub_env(), tiny_fs / "run")
    env.reset(seed=0)
    _steps(env, 2)
    env.close()
    filler = tiny_fs / "filler"
    filler.write_bytes(os.urandom(900 * 1024))
    store = LabelStore(tiny_fs / "run")
    episode = open_episode(env.episode_path).episode_id
    for i in range(100_000):
        try:
            store.add(episode, 0, 1, judge="human:ana", rationale="r" * 300)
        except OSError:
            break
    filler.unlink()
    after = [store.add(episode, 1, -1, judge="human:ana", rationale=f"after {k}").id for k in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ids = {lab.id for lab in LabelStore(tiny_fs / "run").versions()}
    assert all(a in ids for a in after)


def test_label_line_torn_by_an_injected_fault_does_not_swallow_the_next(tmp_path, stub_env, monkeypatch):
    from trajrec.replay import label_store as labels_mod  # the module that writes label lines
    from trajrec.replay.labels import LabelStore

    env = Recorder(stub_env(), tmp_path)
    env.reset(seed=0)
    _steps(env, 2)
    env.close()
    episode = open_episode(env.episode_path).episode_id
    store = LabelStore(tmp_path)
    first = store.add(episode, 0, 1, judge="human:ana").id
    fake = FailingWrites({1}, part=0.5)
    monkeypatch.setattr(labels_mod.os, "write", fake)
    with pytest.raises(TrajrecIOError, match="this label was not saved"):
        store.add(episode, 1, -1, judge="human:ana", rationale="torn")
    monkeypatch.undo()
    second = store.add(episode, 1, 1, judge="human:ana", rationale="after").id
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ids = {lab.id for lab in LabelStore(tmp_path).versions()}
    assert {first, second} <= ids
    assert not caught  # no torn line left to warn about


def test_exports_skip_a_stub_with_its_message(tmp_path, stub_env, capsys):
    from trajrec.cli import main
    from trajrec.replay.exports.source import Source

    env = Recorder(stub_env(), tmp_path)
    env.reset(seed=0)
    _steps(env, 2)
    env.close()
    (tmp_path / "stub.msgpack.zst").write_bytes(b"")
    src = Source([tmp_path])
    assert len(src) == 1
    assert not src.errors
    assert [("stub.msgpack.zst" in str(p), "empty episode, nothing recorded" in e) for p, e in src.empty] == [(True, True)]
    assert main(["export", str(tmp_path), "--format", "records", "--out", str(tmp_path / "out.jsonl")]) == 0
    assert "empty episode, nothing recorded" in capsys.readouterr().err


@pytest.mark.parametrize("part", [0.0, 0.5])
@pytest.mark.parametrize("terminated", [True, False])
def test_a_failed_closing_write_leaves_every_step_readable(tmp_path, stub_env, part, terminated):
    # close() writes the end record and the index with one system call; when that fails, the file is cut back
    # to before the end record and reads as a file whose writer died (every step kept; repair adds the index).
    env = Recorder(stub_env(), tmp_path, frame_steps=8)
    env.reset(seed=0)
    _steps(env, 5)
    if terminated:
        env._writer._frame_open and env._writer._end_frame()  # the last step closed its frame, as an ending step does
    env._writer._fw.write_fd = FailingWrites({1}, part=part)
    with pytest.raises(TrajrecIOError, match="No space left on device") as info:
        env.close()
    # The file is closed all the same: the error says so and what makes it whole (not "the next write tries again").
    assert "closed without its end record and index" in str(info.value) and "--repair" in str(info.value)
    assert "the next write tries again" not in str(info.value)
    index = read_index(env.episode_path)
    assert not index["complete"] and index["steps"] == 5
    assert [s.action for s in open_episode(env.episode_path)] == [f"cat notes.txt {k}" for k in range(5)]
    assert fsck(env.episode_path, repair=True).repaired
    assert fsck(env.episode_path).ok and len(open_episode(env.episode_path)) == 5


def test_steps_whose_records_were_lost_are_said_where_they_were_and_counted(tmp_path, stub_env):
    # The env takes a step whose record cannot be written: the agent gets the error, and the file must not hide
    # the gap (recorded indexes stay contiguous): the next written step says how many env steps are missing
    # before it and why, and the summary counts them.
    env = Recorder(stub_env(), tmp_path, frame_steps=100)
    env.reset(seed=0)
    env._writer._fw.write_fd = FailingWrites({3, 4, 5, 12})  # steps lost in a row, then one more
    results = _steps(env, 12)
    env.close()
    # What the file must say, worked out from what the agent saw: each recorded step after a run of lost ones.
    expected, run, index = {}, 0, 0
    for r in results:
        if isinstance(r, TrajrecIOError):
            run += 1
            continue
        if run:
            expected[index] = run
        run, index = 0, index + 1
    lost = sum(isinstance(r, TrajrecIOError) for r in results)
    assert lost >= 2 and expected
    ep = open_episode(env.episode_path)
    assert len(ep) == 12 - lost and ep.summary["lost_steps"] == lost
    marks = {s.index: e for s in ep for e in s.recorder_errors if e.get("where") == "write"}
    assert {i: e["lost_steps"] for i, e in marks.items()} == expected
    for i in marks:
        assert "No space left on device" in marks[i]["message"]
    assert [s.action for s in ep] == [f"cat notes.txt {r}" for r in results if not isinstance(r, TrajrecIOError)]
    # Readable, not whole: fsck says where the env steps were lost, and that there is nothing to repair.
    report = fsck(env.episode_path)
    assert not report.ok and report.recorded and not report.damage and report.steps == len(ep)
    assert report.unwritten == [[i, n] for i, n in expected.items()]


def test_lost_last_steps_are_counted_in_the_summary(tmp_path, stub_env):
    env = Recorder(stub_env(), tmp_path, frame_steps=100)
    env.reset(seed=0)
    _steps(env, 3)
    env._writer._fw.write_fd = FailingWrites({1})
    assert isinstance(_steps(env, 1, start=3)[0], TrajrecIOError)
    env._writer._fw.write_fd = _real_write
    summary = env.end_episode()
    assert summary["lost_steps"] == 1
    assert open_episode(env.episode_path).summary["lost_steps"] == 1


def test_a_short_write_of_a_frame_s_closing_tail_reports_the_real_cause(tmp_path, stub_env):
    """Closing a frame a failed write cut short is one small write; when it is short, the rest is written to learn
    why: the error names the real cause (a file-size limit: EFBIG), not a made-up full disk (FINDINGS18 #4)."""
    env = Recorder(stub_env(), tmp_path, frame_steps=8)
    env.reset(seed=0)
    _steps(env, 3)

    class Limit:
        calls = 0

        def __call__(self, fd: int, data) -> int:
            self.calls += 1
            if self.calls == 3:  # the cut frame's tail, tried again before the next record: a short write
                return _real_write(fd, bytes(data[:1]))
            if self.calls >= 5:  # the limit is raised
                return _real_write(fd, data)
            # 1: the step's block (torn), 2: its frame's tail right after, 4: the rest of the short tail
            if self.calls == 1:
                _real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))

    env._writer._fw.write_fd = Limit()
    with pytest.raises(TrajrecIOError, match="File too large"):
        env.step("cat notes.txt 3")
    with pytest.raises(TrajrecIOError) as info:
        env.step("cat notes.txt 4")
    assert "File too large" in str(info.value) and "No space left" not in str(info.value)
    env.step("cat notes.txt 5")
    env.close()
    assert [s.action for s in open_episode(env.episode_path)] == [f"cat notes.txt {k}" for k in (0, 1, 2, 5)]
    report = fsck(env.episode_path)  # sound; the lost env steps are recorded in it
    assert report.recorded and report.unwritten and not report.damage and report.closed and not report.complete
