"""Bad input files, frame-wise random access, and reading with plain tools."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import msgpack
import pytest
import zstandard

from trajrec.recorder import Recorder, StepIndexError, TrajrecFormatError, open_episode
import trajrec.recorder.reader as reader_mod


@pytest.fixture
def episode(tmp_path, stub_env):
    env = Recorder(stub_env(), tmp_path / "run", frame_steps=10)
    env.reset(seed=0)
    for i in range(35):
        env.step(f"write f{i}.txt {i}" if i % 6 else "cat missing.txt")
    env.check(False, kind="rule", judge="x@1", target="episode", rationale="not done")
    env.close()
    return env.episode_path


@pytest.mark.parametrize("content,where", [
    (b"", "empty"),
    (os.urandom(4096), "expected a zstd frame"),
    (b"PK\x03\x04 a zip file", "expected a zstd frame"),
    (msgpack.packb({"t": "header"}), "expected a zstd frame"),
])
def test_wrong_files_raise_format_error_naming_file_and_offset(tmp_path, content, where):
    p = tmp_path / "bad.msgpack.zst"
    p.write_bytes(content)
    with pytest.raises(TrajrecFormatError, match=where) as err:
        open_episode(p)
    assert isinstance(err.value, ValueError)
    assert err.value.path == str(p) and err.value.offset == 0 and str(p) in str(err.value)


def test_zstd_file_of_something_else(tmp_path):
    p = tmp_path / "other.msgpack.zst"
    p.write_bytes(zstandard.ZstdCompressor().compress(msgpack.packb([1, 2, 3]) * 3))
    with pytest.raises(TrajrecFormatError, match="not a trajrec episode|expected a record"):
        open_episode(p)


def test_random_bytes_after_a_zstd_magic(tmp_path):
    p = tmp_path / "r.msgpack.zst"
    p.write_bytes(b"\x28\xb5\x2f\xfd" + os.urandom(3000))
    with pytest.raises(TrajrecFormatError) as err:
        open_episode(p)
    assert err.value.offset is not None and str(p) in str(err.value)


def test_step_access_decodes_only_the_frame_holding_it(episode, monkeypatch):
    ep = open_episode(episode)
    assert len(ep._frames) == 4
    spans = []
    real = reader_mod.read_span

    def spy(fh, start, stop):
        spans.append((start, stop))
        return real(fh, start, stop)

    monkeypatch.setattr(reader_mod, "read_span", spy)
    step = ep[23]
    assert step.index == 23 and step.action == "write f23.txt 23"
    frame = ep._frames[2]
    assert spans == [(frame[0], frame[3])]
    ep[25]  # same frame: served from the cache
    assert len(spans) == 1


def test_indexing_iteration_and_errors(episode):
    ep = open_episode(episode)
    assert len(ep) == 35 and [s.index for s in ep] == list(range(35))
    assert ep[-1].index == 34 and [s.index for s in ep[3:6]] == [3, 4, 5]
    with pytest.raises(StepIndexError, match="has 35 steps"):
        ep[35]
    with pytest.raises(IndexError):
        ep[-36]
    s = ep.summary
    assert (s["steps"], s["failures"], s["outcome"]) == (35, 6, "failed")
    assert ep[6].failure.kind == "tool_error" and ep[6].retry_of == 0 and ep[7].retry_of is None
    assert ep[0].failure.message == "no such file"


def test_plain_zstd_and_msgpack_read_the_records(episode):
    if not shutil.which("zstd"):
        pytest.skip("zstd command not installed")
    decoder = ("import msgpack, sys\n"
               "for rec in msgpack.Unpacker(sys.stdin.buffer, raw=False, strict_map_key=False):\n"
               "    print(rec['t'], rec.get('i', ''))\n")
    zstd = subprocess.Popen(["zstd", "-dc", str(episode)], stdout=subprocess.PIPE)
    out = subprocess.run([sys.executable, "-c", decoder], stdin=zstd.stdout, capture_output=True, text=True,
                         check=True)
    assert zstd.wait() == 0
    lines = out.stdout.split("\n")
    assert lines[0] == "header " and lines[1] == "reset "
    steps = [line for line in lines if line.startswith("step ")]
    assert steps == [f"step {i}" for i in range(35)]
    assert "check " in lines and lines[-2] == "end "
