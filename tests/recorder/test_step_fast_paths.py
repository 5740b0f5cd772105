"""The per-step fast paths (issue 15, short episodes) give the general paths' answers, on hostile input too.

* The codec's cached array head (a plain array of a (dtype, shape) met before is packed inline): the same bytes as
  a codec that never saw the array's kind, for views, byte orders, zero sizes, big payloads and lookalike dtypes.
* The writer's bare step (``write_step(..., bare=True)``, what the Recorder passes for a record of its ten fields
  alone): the same file, index, summary and step marks as the general step, whatever the terminated and truncated
  values are; records with optional fields are never bare.
"""

from __future__ import annotations

import os

import gymnasium as gym
import msgpack
import numpy as np
import pytest

from trajrec.recorder import Recorder, read_index, read_records
from trajrec.recorder.codec import UnknownExt, Unencodable, make_default
from trajrec.recorder.format import _ext, packb
from trajrec.recorder.writer import EpisodeWriter


def _fresh_pack(value):
    """Packed by a codec hook that has cached nothing (each call builds its own)."""
    hook = make_default(packb, _ext, msgpack.ExtType)
    return msgpack.packb(value, use_bin_type=True, strict_types=True, default=hook, datetime=False)


def _hostile_arrays():
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    return [
        np.zeros(4, np.float32),
        base, base.T, base[:, ::2], base[::-1], np.asfortranarray(base),  # views and orders: same shape, other bytes
        base.astype(">f8"), base.astype("<f8"),  # equal values, other byte orders: other dtypes
        np.zeros(0, np.float32), np.zeros((0, 3), np.int16), np.array(3.5), np.array(True),
        np.arange(40_000, dtype=np.int32),  # payload over 65,535 bytes (4-byte length)
        np.arange(300, dtype=np.uint8),  # 2-byte length
        np.array(["ab", "c"]), np.array([b"x", b"yz"]), np.zeros(3, dtype="M8[s]"), np.zeros(3, dtype="M8[ms]"),
        np.array([1 + 2j]), np.zeros(4, np.dtype("f4", metadata={"k": 1})),
        np.zeros(3, dtype=[("a", "<i4"), ("b", "<f4")]),  # structured: never cached
        np.array([1, "x", None], dtype=object),  # objects: never cached
        np.ma.masked_array([1.0, 2.0], mask=[True, False]),  # a subclass: never cached
    ]


def test_cached_array_heads_pack_as_a_codec_that_never_saw_them():
    arrays = _hostile_arrays()
    warm = [packb(a) for a in arrays]  # the shared hook: the second round takes the cached heads
    again = [packb(a) for a in reversed(arrays)][::-1]
    fresh = [_fresh_pack(a) for a in arrays]
    assert warm == fresh
    assert again == fresh
    for a, raw in zip(arrays, fresh):  # and the bytes are the array's
        back = msgpack.unpackb(raw, ext_hook=lambda code, data: (code, data), raw=False)
        if type(a) is np.ndarray and a.dtype.names is None and not a.dtype.hasobject:
            assert back[0] == 1
            assert back[1].endswith(a.tobytes())


def test_passthrough_values_pack_through_the_codec_hook():
    assert packb(Unencodable("socket.socket", "<socket>")) == msgpack.packb(
        msgpack.ExtType(6, packb(["socket.socket", "<socket>"])), use_bin_type=True)
    assert packb(UnknownExt(99, b"raw")) == msgpack.packb(msgpack.ExtType(99, b"raw"), use_bin_type=True)


class _Odd:
    """A terminated value that is neither a bool nor a numpy bool."""

    def __init__(self, value):
        self.value = value

    def __bool__(self):
        return self.value


class _NoTruth:
    def __bool__(self):
        raise ValueError("no truth value")


def _records():
    obs = np.linspace(0, 1, 4, dtype=np.float32)
    flags = [False, np.bool_(False), np.array(False), _Odd(False), _NoTruth(), 0, None, False, np.bool_(True)]
    out = []
    for i, term in enumerate(flags):
        out.append({"t": "step", "i": i, "action": i % 2, "observation": obs + i, "reward": 1.0 if i % 3 else i,
                    "terminated": term, "truncated": False, "info": {}, "time": 100.0 + i, "duration": 0.001})
    out[2]["failure"] = {"kind": "tool_error", "message": "x"}
    out[3]["retry_of"] = 2
    out[4]["recovers"] = [2]
    out[5]["note"] = {"thought": "hm"}
    out[6]["checks"] = [{"target": 6, "kind": "rule", "judge": "r@1", "value": True, "id": "c1"}]
    out[7]["recorder_errors"] = [{"where": "write", "type": "OSError", "message": "full", "lost_steps": 2}]
    return out


_BASE = {"t", "i", "action", "observation", "reward", "terminated", "truncated", "info", "time", "duration"}


@pytest.mark.parametrize("frame_steps", [1, 3, 1024])
def test_bare_steps_write_what_the_general_step_writes(tmp_path, frame_steps):
    files = []
    records = _records()  # the same objects for both files (fallbacks keep their repr)
    for bare in (False, True):
        path = os.path.join(tmp_path, f"{bare}.msgpack.zst")
        w = EpisodeWriter(path, {"episode_id": "e", "task": {}, "provenance": {}}, frame_steps=frame_steps)
        w.write_reset({"seed": 0, "observation": None, "info": {}, "time": 99.0, "duration": 0.0})
        for rec in records:
            # The Recorder's rule: bare only for a record of the ten base fields alone.
            w.write_step(dict(rec), bare=bare and set(rec) == _BASE)
        w.close()
        files.append(path)
    general, fast = files
    with open(general, "rb") as a, open(fast, "rb") as b:
        ga, fb = a.read(), b.read()
    # The end record holds the time of close: compare everything but it through the reader.
    gi, fi = read_index(general), read_index(fast)
    assert gi["summary"] == fi["summary"]
    assert gi["step_marks"] == fi["step_marks"] and gi["step_marks"]
    assert gi["step_checks"] == fi["step_checks"] and gi["step_checks"]
    assert gi["frames"] == fi["frames"]
    assert gi["summary"]["lost_steps"] == 2 and gi["summary"]["failures"] == 1
    strip = lambda recs: [{k: v for k, v in r.items() if not (r["t"] == "end" and k == "time")} for r in recs]  # noqa: E731
    assert repr(strip(read_records(general)[1])) == repr(strip(read_records(fast)[1]))
    assert len(ga) == len(fb)


def test_the_recorder_marks_only_ten_field_records_bare(tmp_path, monkeypatch):
    seen = []
    original = EpisodeWriter.write_step

    def spy(self, record, *args, bare=False, **kwargs):
        seen.append((set(record) - {"snapshot"}, bare))
        return original(self, record, *args, bare=bare, **kwargs)

    monkeypatch.setattr(EpisodeWriter, "write_step", spy)
    env = Recorder(gym.make("CartPole-v1").unwrapped, tmp_path, failure_fn=lambda step: step["action"] == 1 or None)
    env.reset(seed=0)
    for k, action in enumerate([0, 1, 1, 0, 0, 0]):
        if k == 5:
            env.note(thought="t")
        env.step(action)
    env.close()
    assert len(seen) == 6
    for fields, bare in seen:
        assert bare == (fields == _BASE), (fields, bare)
    assert [bare for _, bare in seen] == [True, False, False, True, True, False]  # a failure, its retry, a note
