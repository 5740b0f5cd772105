"""A close() that cannot write the end record and index (a full disk, a file-size limit) can be retried: a second
close() writes those, and only those, once there is room, and the file is then byte for byte what a first close
that succeeded makes. Real processes under a real ``RLIMIT_FSIZE`` (Python ignores SIGXFSZ: writes past the limit
fail with EFBIG, after a short write up to it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trajrec.recorder import fsck, open_episode, read_index

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")

# The child: one episode written through EpisodeWriter with given times (the end record's time.time() pinned),
# closed under a file-size limit 10 bytes past its steps when told "limited", then again after the limit is lifted.
WRITER = r"""
import json, os, resource, sys, time
time.time = lambda: 1_700_000_000.0  # the end record's time, pinned so two runs make the same bytes
from trajrec.recorder.errors import TrajrecIOError
from trajrec.recorder.writer import EpisodeWriter

mode, path, ends = sys.argv[1], sys.argv[2], sys.argv[3] == "ends"
w = EpisodeWriter(path, {"episode_id": "e1", "task": {"env_id": "x"}, "provenance": {}})
w.write_reset({"seed": 0, "observation": "start", "info": {}, "time": 1.0, "duration": 0.0})
for i in range(40):
    w.write_step({"i": i, "action": f"cat f{i}", "observation": f"line {i} " * 30, "reward": 0.5,
                  "terminated": ends and i == 39, "truncated": False, "info": {}, "time": 2.0 + i, "duration": 0.01})
out = {}
if mode == "limited":
    before = os.path.getsize(path)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (before + 10, hard))  # room for 10 bytes of the end and index
    for attempt in ("first", "second"):
        try:
            w.close()
            out[attempt] = "closed"
        except TrajrecIOError as exc:
            out[attempt] = str(exc)
        out[attempt + "_size"] = os.path.getsize(path) - before  # cut back: nothing of a failed close stays
    out["close_failed"] = getattr(w, "close_failed", None)
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
w.close()
out["close_failed_after"] = getattr(w, "close_failed", None)
print(json.dumps(out))
"""


def _child(code: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("ends", ["ends", "open"])  # the last step closed its frame / the end record closes it
def test_a_second_close_writes_the_end_and_index_a_full_file_could_not_take(tmp_path: Path, ends: str) -> None:
    retried, clean = tmp_path / "retried.msgpack.zst", tmp_path / "clean.msgpack.zst"
    got = _child(WRITER, "limited", str(retried), ends)
    assert "File too large" in got["first"], got
    for attempt in ("first", "second"):  # the limit still there: the retry fails the same way
        assert got[attempt + "_size"] == 0
    assert got["first"] == got["second"]
    assert "call close() again once there is space" in got["first"]
    assert f"`trajrec fsck --repair {retried}` adds the index" in got["first"]
    _child(WRITER, "clean", str(clean), ends)
    index = read_index(retried)
    assert index["complete"] is True and index["damage"] == [] and index["steps"] == 40
    assert retried.read_bytes() == clean.read_bytes()  # exactly the file of a close that succeeded at once
    assert got["close_failed"] is True and got["close_failed_after"] is False
    assert fsck(retried).ok
    with open_episode(retried) as ep:
        assert [s.observation for s in ep] == [f"line {i} " * 30 for i in range(40)]


RECORDER = r"""
import json, os, resource, sys
import gymnasium as gym
import trajrec.envs
from trajrec import Recorder
from trajrec.recorder.errors import TrajrecIOError

run = sys.argv[1]
env = Recorder(gym.make("trajrec/MathCalc-v0"), run)
env.reset(seed=0)
for _ in range(3):
    env.step('{"tool": "calc", "args": {"expr": "1+1"}}')
path = str(env.episode_path)
before = os.path.getsize(path)
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (before + 10, hard))
out = {}
try:
    env.close()
except TrajrecIOError as exc:
    out["first"] = str(exc)
out["size"] = os.path.getsize(path) - before
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
env.close()  # the retry: only the end record and the index
out["path"] = path
print(json.dumps(out))
"""


def test_recorder_close_again_after_a_full_disk_finishes_the_file(tmp_path: Path) -> None:
    got = _child(RECORDER, str(tmp_path / "run"))
    assert "File too large" in got["first"] and "call close() again" in got["first"], got
    assert got["size"] == 0
    index = read_index(got["path"])
    assert index["complete"] is True and index["steps"] == 3
    assert index["summary"]["finished"] is True and index["summary"]["steps"] == 3
    assert fsck(got["path"]).ok


REPAIRED_FIRST = r"""
import json, os, resource, sys
from trajrec.recorder import fsck
from trajrec.recorder.errors import TrajrecIOError
from trajrec.recorder.writer import EpisodeWriter

path = sys.argv[1]
w = EpisodeWriter(path, {"episode_id": "e1", "task": {"env_id": "x"}, "provenance": {}})
w.write_reset({"seed": 0, "observation": "start", "info": {}, "time": 1.0, "duration": 0.0})
for i in range(5):
    w.write_step({"i": i, "action": "a", "observation": f"o{i}", "reward": 0.0, "terminated": i == 4,
                  "truncated": False, "info": {}, "time": 2.0 + i, "duration": 0.01})
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(path) + 10, hard))
try:
    w.close()
except TrajrecIOError:
    pass
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
out = {"repaired": fsck(path, repair=True).repaired}
repaired = open(path, "rb").read()
try:
    w.close()
    out["again"] = "closed"
except TrajrecIOError as exc:
    out["again"] = str(exc)
out["same"] = open(path, "rb").read() == repaired
out["third"] = w.close() is not None  # said once: a later close() has nothing to do
print(json.dumps(out))
"""


def test_a_retry_leaves_a_file_fsck_repaired_meanwhile_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "e.msgpack.zst"
    got = _child(REPAIRED_FIRST, str(path))
    assert got["repaired"] is True
    assert "changed since its close failed" in got["again"] and "nothing written" in got["again"], got
    assert got["same"] is True and got["third"] is True
    assert read_index(path)["complete"] is True
