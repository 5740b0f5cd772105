"""The usual step's fast path (issue 15, recording) writes what the general path writes, on hostile input too.

Each comparison runs the fast path both ways: with its C write (``recorder/_cdiff.c``: ``usual_write``, where the
extension is built) and with its Python code (``writer._usual_write`` None, as without a C compiler or with
``TRAJREC_PURE_PYTHON=1``).

* ``EpisodeWriter.write_usual_step`` against ``write_step(..., bare=True)``: the same file, byte for byte (the end
  record's time pinned), for flags and rewards of every type, several frame sizes, a state whose frames open with
  a snapshot, and a write that fails; with a step's marks (a failure, a retry, a recovery, an exception) against
  ``write_step(..., bare=False)``.
* ``Recorder.step`` with the fast path on and off (``_bare_steps``): the same records and index for an env whose
  infos, rewards, flags and states are hostile (errors that are falsy, checks, info subclasses and non-dicts, a
  key whose comparison raises, failed steps retried and recovered, notes, a ``state_fn`` that raises, a
  ``failure_fn``): the fast path must fall back wherever the general path would record something more.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import warnings
from collections import Counter

import gymnasium as gym
import numpy as np
import pytest

from trajrec.recorder import Recorder, TrajrecIOError, read_index, read_records
from trajrec.recorder import writer as writer_module
from trajrec.recorder.diff import StateTracker
from trajrec.recorder.format import FrameWriter
from trajrec.recorder.writer import EpisodeWriter


#: The fast path's two ways: its C write (where the extension is built and not switched off) and its Python code.
WAYS = [pytest.param(False, id="python"),
        pytest.param(True, id="c", marks=pytest.mark.skipif(
            writer_module._usual_write is None, reason="the C extension trajrec.recorder._cdiff is not built (or "
            "TRAJREC_PURE_PYTHON is set): reinstall with `pip install -e '.[test]'` where gcc or clang runs"))]


@pytest.fixture(params=WAYS)
def usual_write(request, monkeypatch) -> Counter:
    """The fast path with its C write or without (the parameter); counts the C write's answers (True: written,
    False: left to Python, "resumed": its write stopped short and Python went on)."""
    answers: Counter = Counter()
    if not request.param:
        monkeypatch.setattr(writer_module, "_usual_write", None)
        return answers
    real = writer_module._usual_write

    def counting(*args):
        out = real(*args)
        answers[out if isinstance(out, bool) else "resumed"] += 1
        return out

    monkeypatch.setattr(writer_module, "_usual_write", counting)
    return answers


class _PinnedTime:
    """``time`` for the writer module: the end record's time fixed, so two files can be compared byte for byte."""

    @staticmethod
    def time() -> float:
        return 1234.5


class _Truthy:
    def __init__(self, value: bool) -> None:
        self.value = value

    def __bool__(self) -> bool:
        return self.value


class _NoTruth:
    def __bool__(self) -> bool:
        raise ValueError("no truth value")


def _ten(i: int, term=False, trunc=False, reward=1.0) -> dict:
    return {"t": "step", "i": i, "action": i % 2, "observation": np.arange(4, dtype=np.float32) + i,
            "reward": reward, "terminated": term, "truncated": trunc, "info": {}, "time": 100.0 + i,
            "duration": 0.001}


def _writer_records() -> list[tuple[dict, bool]]:
    """(record, ends the episode here) pairs: exact bools and floats (the fast case) between every other type."""
    odd_flags = [np.bool_(False), np.array(False), _Truthy(False), _NoTruth(), 0, None, 1, np.bool_(True)]
    odd_rewards = [1, np.float64(2.0), np.float32(0.5), None, "1.0", float("nan"), -0.0, 10**30, True]
    out = []
    i = 0
    for k in range(12):
        out.append(_ten(i, reward=float(k))); i += 1
        out.append(_ten(i, term=odd_flags[k % len(odd_flags)])); i += 1
        out.append(_ten(i, trunc=odd_flags[(k + 3) % len(odd_flags)])); i += 1
        out.append(_ten(i, reward=odd_rewards[k % len(odd_rewards)])); i += 1
    rec = _ten(i, reward=2.5)
    rec["diff"] = [[["a"], "values_changed", 2, 1]]  # diff rows may be on a usual step
    out.append(rec)
    i += 1
    # A record msgpack refuses (a lone surrogate: the pack raises, pack_record keeps it losslessly), one bigger than
    # a 1024-byte frame (which it closes), and usual ones after each.
    for observation in ("lone \ud800 surrogate", "y" * 3000):
        rec = _ten(i)
        rec["observation"] = observation
        out.append(rec); i += 1
        out.append(_ten(i)); i += 1
    # Steps with marks (failure, retry, recovery, and an exception, which write_usual_step leaves to write_step),
    # on usual flags and rewards and on odd ones.
    marks = [{"failure": {"kind": "tool_error", "message": "denied"}}, {"retry_of": 3},
             {"failure": {"kind": "tool_error", "message": "again"}, "retry_of": 7}, {"recovers": [3, 7]},
             {"retry_of": 0, "recovers": [0]}, {"failure": {"kind": "exception", "type": "OSError", "message": ""}}]
    for k in range(2 * len(marks)):
        rec = _ten(i, term=odd_flags[k % len(odd_flags)] if k >= len(marks) else False)
        rec.update(marks[k % len(marks)])
        out.append(rec); i += 1
    out.append(_ten(i, term=True))
    return out


def _write(path: str, records: list[dict], usual: bool, *, frame_steps: int, frame_bytes: int,
           state: bool, fsync: bool = False) -> None:
    w = EpisodeWriter(path, {"episode_id": "e", "task": {}, "provenance": {}}, frame_steps=frame_steps,
                      frame_bytes=frame_bytes, fsync=fsync)
    w.write_reset({"seed": 0, "observation": None, "info": {}, "time": 99.0, "duration": 0.0,
                   **({"state": {"n": 0}} if state else {})})
    for rec in records:
        snapshot = {"n": rec["i"], "pad": "x" * 300} if state else None
        flags = writer_module.step_mark(rec)
        if usual:
            w.write_usual_step(dict(rec), snapshot, state, flags)
        else:
            w.write_step(dict(rec), snapshot, state, bare=not flags)
    w.close()


@pytest.mark.parametrize("frame_steps,frame_bytes,state,fsync", [
    (1024, 1 << 20, False, False), (3, 1 << 20, False, False), (1, 1 << 20, True, False), (5, 1024, True, False),
    (1024, 1024, False, False), (3, 1 << 20, False, True), (4, 1024, True, True)])
def test_write_usual_step_writes_the_bytes_of_the_bare_general_step(tmp_path, monkeypatch, usual_write, frame_steps,
                                                                    frame_bytes, state, fsync):
    monkeypatch.setattr(writer_module, "time", _PinnedTime)
    records = _writer_records()
    paths = [os.path.join(tmp_path, f"{name}.msgpack.zst") for name in ("general", "usual")]
    for path, usual in zip(paths, (False, True)):
        _write(path, records, usual, frame_steps=frame_steps, frame_bytes=frame_bytes, state=state, fsync=fsync)
    with open(paths[0], "rb") as a, open(paths[1], "rb") as b:
        assert a.read() == b.read()
    if writer_module._usual_write is not None:
        # The C write took the usual steps, and left the rest to Python (the odd flags and rewards, an exception's
        # mark, the pack that raised, the frames that frame_bytes closes or fsync finishes, a frame to open: with a
        # state and one step a frame, every step opens one with a snapshot).
        assert (usual_write[True] > 10) == (frame_steps > 1)
        assert usual_write[False] > 10 and not usual_write["resumed"]
    index = read_index(paths[1])
    assert index["steps"] == len(records)
    assert len(index["frames"]) > (1 if frame_steps < 1024 or frame_bytes < 4096 else 0)
    # The odd flags and rewards went through the general summary: NaN makes the return NaN, a 10**30 counts.
    assert index["summary"]["return"] != index["summary"]["return"]
    # The marks were counted and indexed (an exception's too, through write_step).
    summary = index["summary"]
    assert (summary["failures"], summary["retries"], summary["recoveries"]) == (6, 6, 4)
    assert len(index["step_marks"]) == 2 * 12 and "raised" in summary["error"]


def test_a_record_over_the_record_limit_is_shrunk_as_the_general_step_shrinks_it(tmp_path, monkeypatch, usual_write):
    """A record over MAX_RECORD_BYTES (here made 2 KiB, for the C write too) is left to Python, which stores its
    fields as marked fallbacks, as the general path does."""
    from trajrec.recorder import _cdiff
    from trajrec.recorder.codec import CodecWarning
    from trajrec.recorder.format import _FLUSH_BLOCK, _FLUSH_FINISH, MAX_RECORD_BYTES
    from trajrec.recorder.model import SummaryBuilder

    def limit(n: int) -> None:
        _cdiff.usual_setup(EpisodeWriter, FrameWriter, SummaryBuilder, os.write, _FLUSH_BLOCK, _FLUSH_FINISH, n)

    monkeypatch.setattr(writer_module, "time", _PinnedTime)
    monkeypatch.setattr(writer_module, "MAX_RECORD_BYTES", 2048)
    limit(2048)
    try:
        big = os.urandom(1500).hex()  # (3000 characters zstd cannot make much smaller)
        records = [_ten(0), _ten(1), {**_ten(2), "observation": big}, _ten(3), _ten(4, term=True)]
        paths = [os.path.join(tmp_path, f"{name}.msgpack.zst") for name in ("general", "usual")]
        for path, usual in zip(paths, (False, True)):
            with pytest.warns(CodecWarning, match="record limit"):
                _write(path, records, usual, frame_steps=1024, frame_bytes=1 << 20, state=False)
    finally:
        limit(MAX_RECORD_BYTES)
    with open(paths[0], "rb") as a, open(paths[1], "rb") as b:
        assert a.read() == b.read()
    assert os.path.getsize(paths[1]) < 1500  # the observation is not in the file (a marked fallback instead)
    if writer_module._usual_write is not None:
        assert (usual_write[True], usual_write[False]) == (4, 1)


# Steps written while a real file-size limit (RLIMIT_FSIZE, as a full disk stops a write) lets the file grow by a few
# bytes (a write that stops short, the rest refused), by none (refused at once), by more than a step's block (which
# goes out whole), on steps in a frame and on a step finishing one; in a child process (the limit would bite the test
# process's own files). argv: the way ("general", "c", "python") and the file. Prints the lost steps and the C
# write's answers.
_LIMITED = r'''
import os, resource, sys
from trajrec.recorder import TrajrecIOError
from trajrec.recorder import writer as wm

class Pinned:
    @staticmethod
    def time():
        return 1234.5

wm.time = Pinned
way, path = sys.argv[1], sys.argv[2]
real, answers = wm._usual_write, []
if way == "python":
    wm._usual_write = None
elif way == "c":
    def counting(*args):
        out = real(*args)
        answers.append(out if isinstance(out, bool) else "resumed")
        return out
    wm._usual_write = counting
w = wm.EpisodeWriter(path, {"episode_id": "e", "task": {}, "provenance": {}}, frame_steps=4)
w.write_reset({"seed": 0, "observation": None, "info": {}, "time": 99.0, "duration": 0.0})
room = {2: 16, 5: 0, 6: 7, 9: 3, 10: 0, 13: 100000, 14: 5, 18: 16}
lost, i = [], 0
for k in range(22):
    if k in room:
        resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(path) + room[k], resource.RLIM_INFINITY))
    rec = {"t": "step", "i": i, "action": k, "observation": f"obs {k} " + "x" * (150 + 37 * k), "reward": 0.5,
           "terminated": False, "truncated": False, "info": {}, "time": 100.0 + k, "duration": 0.25}
    try:
        w.write_step(rec, bare=True) if way == "general" else w.write_usual_step(rec)
        i += 1
    except TrajrecIOError:
        lost.append(k)
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
w.close()
print(lost, answers.count(True), answers.count(False), answers.count("resumed"))
'''


def test_a_write_a_file_size_limit_stops_goes_on_as_the_general_step_goes_on(tmp_path):
    """The C write's own write(2) stopped short or refused by a real file-size limit: Python goes on from there
    (writer.EpisodeWriter._resume_usual) as FrameWriter.append does, so the file (cut back, its frame closed, the
    next step in a new frame) and the lost steps are those of the general path and of the fast path's Python."""
    outs, files = {}, {}
    ways = ["general", "python"] + (["c"] if writer_module._usual_write is not None else [])
    for way in ways:
        path = str(tmp_path / f"{way}.msgpack.zst")
        done = subprocess.run([sys.executable, "-c", _LIMITED, way, path], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        outs[way] = done.stdout.split("]")
        with open(path, "rb") as f:
            files[way] = f.read()
    lost = outs["general"][0]
    assert lost == "[2, 5, 6, 9, 10, 14, 18", "the limit bit where it should"
    for way in ways[1:]:
        assert outs[way][0] == lost
        assert files[way] == files["general"], way
    if "c" in ways:
        written, left, resumed = map(int, outs["c"][1].split())
        # The limited writes of steps 2, 5, 9 and of 14 and 18 (each the last of its frame) went out from C and
        # stopped short there (the 100000 bytes of room let 13 through whole); 6 and 10, each opening the frame
        # after a lost step, and the other steps opening frames were left to Python.
        assert (written, left, resumed) == (10, 7, 5)
    _header, records = read_records(str(tmp_path / "general.msgpack.zst"))
    assert [r["action"] for r in records if r["t"] == "step"] == [k for k in range(22)
                                                                  if k not in (2, 5, 6, 9, 10, 14, 18)]


def test_write_usual_step_after_a_failed_write_goes_on_as_the_general_step(tmp_path, monkeypatch):
    """A failed write cuts the frame back; the next usual step must open a new frame the way write_step does."""
    monkeypatch.setattr(writer_module, "time", _PinnedTime)
    real = os.write
    paths = []
    for usual in (False, True):
        calls = {"n": 0}

        def failing(fd, data, calls=calls):
            calls["n"] += 1
            if calls["n"] == 4:  # the third step's write
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(fd, data)

        monkeypatch.setattr(FrameWriter, "write_fd", staticmethod(failing))
        path = os.path.join(tmp_path, f"{usual}.msgpack.zst")
        w = EpisodeWriter(path, {"episode_id": "e", "task": {}, "provenance": {}})
        w.write_reset({"seed": 0, "observation": None, "info": {}, "time": 99.0, "duration": 0.0})
        failed = []
        i = 0  # as the Recorder numbers steps: a step whose record was lost is not counted
        for k in range(6):
            try:
                (w.write_usual_step if usual else lambda r: w.write_step(r, bare=True))(_ten(i))
                i += 1
            except TrajrecIOError:
                failed.append(k)
        w.close()
        assert failed == [2]
        paths.append(path)
    with open(paths[0], "rb") as a, open(paths[1], "rb") as b:
        assert a.read() == b.read()
    assert [r["i"] for r in read_records(paths[1])[1] if r["t"] == "step"] == [0, 1, 2, 3, 4]


class _KeyRaises:
    """A dict key that claims the hash of ``name`` and raises when compared: looking ``name`` up raises."""

    def __init__(self, name: str = "error") -> None:
        self.name = name

    def __hash__(self) -> int:
        return hash(self.name)

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("comparison exploded")

    def __repr__(self) -> str:  # the same fallback text in both files
        return f"<_KeyRaises {self.name}>"


class _InfoDict(dict):
    pass


def _info(k: int):
    """Step ``k``'s info: mostly the usual ``{}``, with every kind of unusual one in between."""
    cases = [
        {"error": "permission denied"}, {"error": ""}, {"error": None}, {"error": 0}, {"error": np.bool_(False)},
        {"checks": [{"value": True, "judge": "env@1"}]}, {"checks": []}, {"checks": None},
        _InfoDict(error="x"), _InfoDict(), None, [1, 2], "text", {_KeyRaises(): 1}, {_KeyRaises("checks"): 1},
        {"error": "again"},
    ]
    return cases[k // 3 % len(cases)] if k % 3 == 1 else {"tool": "cat"}


class _RaisingTracker(StateTracker):
    """The state tracker, whose diff raises on some steps (as one of an object whose copy raises would): on usual
    steps too (their info is the usual one on every third step)."""

    __slots__ = ("env",)

    def __init__(self, env) -> None:
        super().__init__()
        self.env = env

    def update(self, new):
        if self.env.k % 9 == 6:
            raise RuntimeError("cannot diff now")
        return super().update(new)


class _HostileEnv(gym.Env):
    observation_space = gym.spaces.Box(-1, 1, (3,))
    action_space = gym.spaces.Discrete(3)

    def __init__(self, *, raising_state: bool = False, looping_state: bool = False) -> None:
        self.k = 0
        self.state = {"n": 0, "files": {"a": "x"}, "log": []}
        self.raising_state = raising_state
        self.looping_state = looping_state

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.k = 0
        self.state = {"n": 0, "files": {"a": "x"}, "log": []}
        return np.zeros(3, np.float32), {}

    def state_dict(self):
        if self.raising_state and self.k % 7 == 3:
            raise RuntimeError("state unavailable")
        return self.state

    def step(self, action):
        self.k += 1
        k = self.k
        if k % 4 == 0:
            self.state["n"] += 1
            self.state["log"].append(k)
        if self.looping_state and k == 61:
            # A self-reference: the diff raises, the copy is marked, and later diffs take the marked state.
            self.state["files"]["me"] = self.state
        rewards = [0.0, 1, np.float32(0.5), None, float("nan"), -0.0]
        flags = [False, np.bool_(False), 0, None]
        reward = rewards[k % len(rewards)] if k % 5 == 0 else 0.5
        trunc = flags[k % len(flags)] if k % 6 == 0 else False
        return np.full(3, k / 100, np.float32), reward, k % 97 == 0, trunc, _info(k)


_SETTINGS = [
    ("plain", {}),
    ("state", {"state": True}),
    ("raising state_fn", {"state": True, "raising_state": True}),
    ("state whose diff raises", {"state": True, "looping_state": True}),
    ("failure_fn", {"failure_fn": lambda step: step["reward"] == 1 or None}),
    ("action_key", {"action_key": lambda action: int(action) % 2}),
    ("small frames", {"state": True, "frame_steps": 4}),
    ("text actions", {"state": True, "text_actions": True}),
    ("text actions, action_key", {"text_actions": True, "action_key": lambda action: action[-1]}),
]

#: Text actions of a few operations (a command line's first word, a tool call's name), as a tool env takes them.
_TEXT_ACTIONS = ["cat a.txt", '{"tool": "ls", "args": {"path": "."}}', "grep x a.txt", "cat b.txt",
                 '{"tool": "cat", "args": {"path": "a.txt"}}', "  ", "rm -rf /tmp/x"]


def _record_run(folder, settings: dict, usual: bool):
    opts = dict(settings)
    state, raising = opts.pop("state", False), opts.pop("raising_state", False)
    text = opts.pop("text_actions", False)
    looping = opts.pop("looping_state", False)
    env = _HostileEnv(raising_state=raising, looping_state=looping)
    rec = Recorder(env, folder, state_fn=(lambda e: e.unwrapped.state_dict()) if state else (lambda e: None),
                   **opts)
    if looping:
        rec._tracker = _RaisingTracker(env)
    if not state:
        rec._state_fn = None
    rec._bare_steps = usual
    rec._timing = (5.0, 0.25)  # the same times in both files
    rec.reset(seed=0)
    for k in range(140):
        if k % 11 == 5:
            rec.note(thought=f"t{k}")
        _obs, _r, term, _trunc, _info = rec.step(_TEXT_ACTIONS[k % len(_TEXT_ACTIONS)] if text else k % 3)
        if term:
            rec.reset(seed=k)
        if k == 60:
            rec.check(True, judge="pytest@8")
    rec.close()
    return rec.episode_paths


def _no_check_times(value):
    """Checks carry the time they were made (in step records, check records and the index): left out."""
    if isinstance(value, list):
        return [_no_check_times(v) for v in value]
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "time"}
    return value


def _comparable(paths) -> list:
    out = []
    for path in paths:
        _header, records = read_records(path)
        index = read_index(path)
        recs = []
        for r in records:
            r = dict(r)
            if r["t"] in ("end", "check"):
                del r["time"]
            if "checks" in r:
                r["checks"] = _no_check_times(r["checks"])
            if "recorder_errors" in r:
                # A RecursionError's message says where the limit was hit ("... while calling a Python object"),
                # which depends on how deep the stack already was: the two paths call through different frames.
                r["recorder_errors"] = [{**e, "message": "(recursion)"} if e.get("type") == "RecursionError" else e
                                        for e in r["recorder_errors"]]
            recs.append(r)
        out.append((recs, index["summary"] | {"start_time": None, "end_time": None}, index["step_marks"],
                    _no_check_times(index["step_checks"]), _no_check_times(index["checks"]),
                    # Where frames start and end depends on the header's size (random ids): their steps do not.
                    [frame[1:3] for frame in index["frames"]], index["steps"]))
    return out


@pytest.mark.parametrize("name,settings", _SETTINGS, ids=[n for n, _ in _SETTINGS])
def test_the_recorders_usual_steps_record_what_the_general_path_records(tmp_path, usual_write, name, settings):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the hostile key and the raising state_fn warn once each, in both runs
        general = _record_run(tmp_path / "general", settings, usual=False)
        fast = _record_run(tmp_path / "fast", settings, usual=True)
    assert len(general) == len(fast) >= 2
    a, b = _comparable(general), _comparable(fast)
    assert repr(a) == repr(b)
    if writer_module._usual_write is not None and "failure_fn" not in settings:  # (a failure_fn: none is usual)
        assert usual_write[True] > 20  # the Recorder's usual steps went to the C write
    steps = [r for recs, *_ in b for r in recs if r["t"] == "step"]
    # The hostile infos were recorded as the general path records them, so the run holds every kind of step.
    assert any("failure" in r for r in steps) and any("checks" in r for r in steps)
    assert any("retry_of" in r for r in steps) and any("recovers" in r for r in steps)
    assert any("note" in r for r in steps)
    assert any(e["where"] == "classify" for r in steps for e in r.get("recorder_errors", ()))
    assert any(e["where"] == "info.checks" for r in steps for e in r.get("recorder_errors", ()))
    if settings.get("state"):
        assert any("diff" in r for r in steps)
    if settings.get("raising_state"):
        assert any(e["where"] == "state_fn" for r in steps for e in r.get("recorder_errors", ()))
    if settings.get("looping_state"):
        # The diff raised (steps that store a full snapshot instead), a self-reference marked the copy, and diffs
        # went on after both.
        errors = [(r["i"], e["where"]) for r in steps for e in r.get("recorder_errors", ())]
        assert {"state diff", "state copy"} <= {where for _i, where in errors}
        diff_failed = [r for r in steps if any(e["where"] == "state diff" for e in r.get("recorder_errors", ()))]
        assert diff_failed and all("snapshot" in r for r in diff_failed)
        first_marked = min(i for i, where in errors if where == "state copy")
        assert any("diff" in r and r["i"] > first_marked for r in steps)


def test_usual_steps_take_the_fast_path(tmp_path, monkeypatch, usual_write):
    """The fast path is taken for the usual steps (or the comparisons above would compare the general path with
    itself), and never for a step carrying anything more."""
    seen = set()
    original = EpisodeWriter.write_usual_step

    def see(writer, record, flags):
        # The flags are the record's marks, as write_step would find them.
        assert flags == writer_module.step_mark(record)
        seen.add((os.path.basename(writer.path), record["i"]))

    def spy(self, record, snapshot=None, has_state=False, flags=0, done=None):
        see(self, record, flags)
        return original(self, record, snapshot, has_state, flags, done)

    monkeypatch.setattr(EpisodeWriter, "write_usual_step", spy)
    c_write = writer_module._usual_write
    if c_write is not None:  # the Recorder asks the C write first (write_usual_step gets what it does not write)
        def c_spy(writer, record, has_state, flags):
            see(writer, record, flags)
            return c_write(writer, record, has_state, flags)

        monkeypatch.setattr(writer_module, "_usual_write", c_spy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paths = _record_run(tmp_path, {"state": True}, usual=True)
    steps = {(os.path.basename(p), r["i"]): r for p in paths for r in read_records(p)[1] if r["t"] == "step"}
    assert seen <= set(steps) and len(seen) > len(steps) // 3
    # Plain steps with a failure, retry or recovery take it too; nothing else with an optional field does.
    others = {"note", "checks", "recorder_errors"}
    assert not any(others & set(steps[key]) for key in seen)
    assert any(others & set(r) for r in steps.values())
    marked = [steps[key] for key in seen if {"failure", "retry_of", "recovers"} & set(steps[key])]
    assert any("failure" in r for r in marked) and any("retry_of" in r for r in marked)
    assert any("recovers" in r for r in marked)


@pytest.mark.parametrize("seed", range(5))
def test_quiet_for_never_says_quiet_where_classify_finds_a_retry_or_recovery(seed):
    """``Classifier.quiet_for`` against ``classify`` on random steps: wherever it answers True for a step that does
    not fail, classify answers (None, None, None); it changes nothing (the classifier that asks it and one that does
    not classify the same)."""
    import random

    from trajrec.recorder.classify import Classifier

    rng = random.Random(seed)
    actions = _TEXT_ACTIONS + [1, 2.5, ("t", 1), {"tool": "cat"}, "cat a.txt"]
    asked, plain = Classifier(), Classifier()
    quiet_seen = 0
    for i in range(400):
        action = rng.choice(actions)
        info = {"error": "no"} if rng.random() < 0.3 else {}
        quiet = asked.quiet_for(action)
        got = asked.classify(i, action, info)
        assert got == plain.classify(i, action, info)
        if quiet and "error" not in info:
            quiet_seen += 1
            assert got == (None, None, None)
    assert quiet_seen > 20
    assert not asked.errors and not plain.errors


def test_the_c_write_is_used_by_default_and_the_environment_variable_turns_it_off():
    """Where the extension is built, writer._usual_write is _cdiff.usual_write; TRAJREC_PURE_PYTHON=1 leaves the
    Python code (as it does for the state diff's C pass and the reader's checks)."""
    code = "from trajrec.recorder import writer; print(writer._usual_write is not None)"
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "TRAJREC_PURE_PYTHON": "1"})
    from trajrec.recorder import diff

    assert off.stdout.strip() == "False"
    if diff._accel is not None:  # the extension is built, and not switched off in this process
        assert on.stdout.strip() == "True"
