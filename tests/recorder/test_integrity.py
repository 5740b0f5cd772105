"""Integrity and bounds: checksums (format version 2), version-1 files still read, damaged frames named by file and
offset, fsck lists damaged steps, crafted values (deep extension nesting, bad field types, inconsistent indexes)
give TrajrecFormatError, never a crash or a wrong value."""

from __future__ import annotations

import io
import json
import struct
import warnings
import zlib
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import zstandard

from trajrec.cli import main
from trajrec.recorder import FORMAT_VERSION, Recorder, TrajrecFormatError, fsck, open_episode, read_index
from trajrec.recorder.format import (INDEX_DICTIONARY, MAX_EXT_DEPTH, MAX_FRAME_RAW, TAIL_MAGIC, FrameTooLarge,
                                     compact_index, decompress_bounded, first_record_bytes, frame_has_checksum,
                                     index_frame, packb, unpackb)
from trajrec.recorder.writer import EpisodeWriter

FIXTURES = Path(__file__).parent / "fixtures"
PINNED_DICTIONARY_CRC = 1974880262
SAMPLES = Path(__file__).resolve().parents[2] / "sample_runs"


class Counter(gym.Env):
    observation_space = gym.spaces.Discrete(1000)
    action_space = gym.spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.n = 0
        return {"n": 0, "t": (0, "x")}, {}

    def step(self, action):
        self.n += int(action)
        return {"n": self.n, "t": (self.n, "x")}, float(action), self.n >= 30, False, {"a": np.arange(3)}

    def state_dict(self):
        return {"n": self.n}


def _record(folder: Path, steps: int = 12, frame_steps: int = 4) -> Path:
    env = Recorder(Counter(), folder, frame_steps=frame_steps)
    env.reset(seed=1)
    for k in range(steps):
        env.step(1 + k % 2)
    env.check(True, kind="rule", judge="t@1")
    env.close()
    return Path(env.episode_path)


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


# -- version 2 on disk -----------------------------------------------------------------------------------------------

def test_new_files_carry_checksums_on_every_frame_and_a_crc_on_the_index(tmp_path: Path) -> None:
    path = _record(tmp_path)
    data = path.read_bytes()
    ep = open_episode(path)

    assert ep.header["version"] == FORMAT_VERSION == 3
    assert len(ep.index["frames"]) == 3  # steps 0..3 (with the header and reset), 4..7, 8..11
    assert all(frame_has_checksum(data, f[0]) for f in ep.index["frames"])
    assert data[-8:] == TAIL_MAGIC == b"TRJRIDX3"
    length, crc = struct.unpack("<II", data[-16:-8])
    payload = data[-16 - length:-16]
    assert zlib.crc32(payload) == crc
    # the compact index: compressed with the built-in dictionary, no header copy, the header's CRC-32 instead
    compact = unpackb(zstandard.ZstdDecompressor(dict_data=zstandard.ZstdCompressionDict(
        INDEX_DICTIONARY, dict_type=zstandard.DICT_TYPE_RAWCONTENT)).decompress(payload))
    assert "header" not in compact and ep.episode_id.encode() not in data[-16 - length:]
    head = first_record_bytes(decompress_bounded(data[:ep.index["frames"][0][3]])[0])
    assert compact["hc"] == zlib.crc32(head) and compact["hl"] == len(head)
    assert unpackb(head) == {"t": "header", **ep.header}
    assert compact["f"] == [0, 4, ep.index["frames"][0][3], *compact["f"][3:]]


def test_the_index_dictionary_is_pinned() -> None:
    # Version-3 index payloads are compressed with it: changing it would make every version-3 index unreadable.
    assert zlib.crc32(INDEX_DICTIONARY) == PINNED_DICTIONARY_CRC


def test_a_header_that_does_not_match_the_index_crc_is_not_trusted(tmp_path: Path) -> None:
    path = _record(tmp_path)
    before = [packb(r) for r in open_episode(path).iter_records()]
    data = bytearray(path.read_bytes())
    data[9] ^= 0x01  # inside the header's zstd block (frame header: 4 magic bytes, 2 descriptor bytes, block header)
    path.write_bytes(bytes(data))

    # The index is sound (its CRC-32 matches) and frame 0 fails its checksum: the header record is what was lost.
    # Its damaged bytes are not trusted (no task, no provenance read from them), and frame 0's records are refused.
    ep = open_episode(path)
    assert ep.header_lost is not None and ep.task == {} and ep.provenance == {}
    with pytest.raises(TrajrecFormatError) as err:
        ep[0]
    assert err.value.offset == 0
    report = fsck(path)
    assert not report.ok and report.header_lost
    assert before  # the original had steps: it is the header frame that is refused, not an empty file


def test_a_flipped_bit_in_a_frame_is_an_error_naming_file_and_offset(tmp_path: Path) -> None:
    path = _record(tmp_path)
    good = open_episode(path)
    frame = good.index["frames"][1]  # steps 4..7
    data = bytearray(path.read_bytes())
    data[(frame[0] + frame[3]) // 2] ^= 0x10
    path.write_bytes(bytes(data))

    ep = open_episode(path)
    assert ep[0].observation == {"n": 1, "t": (1, "x")}  # other frames still read
    with pytest.raises(TrajrecFormatError) as err:
        ep[5]
    assert err.value.path == str(path) and err.value.offset == frame[0]
    assert str(err.value).startswith(f"{path} at byte {frame[0]}: ")
    with pytest.raises(TrajrecFormatError):
        list(ep)

    report = fsck(path)
    assert not report.ok
    assert any(d.startswith("steps 4..7 unreadable: ") for d in report.damage), report.damage
    code, out, _ = _cli("fsck", str(path))
    assert code == 1 and "steps 4..7 unreadable" in out


def test_a_cleared_checksum_flag_is_refused_in_version_2(tmp_path: Path) -> None:
    path = _record(tmp_path)
    frame = open_episode(path).index["frames"][1]
    data = bytearray(path.read_bytes())
    data[frame[0] + 4] &= ~4  # the frame header no longer declares its checksum
    path.write_bytes(bytes(data))

    with pytest.raises(TrajrecFormatError, match="carries no checksum"):
        open_episode(path)[frame[1]]


def test_a_damaged_index_is_detected_and_the_frames_are_scanned(tmp_path: Path) -> None:
    path = _record(tmp_path)
    before = [packb(r) for r in open_episode(path).iter_records()]
    data = bytearray(path.read_bytes())
    data[-40] ^= 1  # inside the index payload
    path.write_bytes(bytes(data))

    with pytest.warns(RuntimeWarning, match="CRC-32 does not match"):
        ep = open_episode(path)
    assert not ep.complete
    assert [packb(r) for r in ep.iter_records()] == before
    assert not fsck(path).ok
    report = fsck(path, repair=True)
    assert report.repaired and fsck(path).ok


# -- versions 1 and 2 still read -------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", [1, 2])
def test_the_old_version_fixtures_read_as_their_own_reader_read_them(version: int) -> None:
    golden = json.loads((FIXTURES / f"v{version}_episode.json").read_text())
    path = FIXTURES / f"v{version}_episode.msgpack.zst"
    ep = open_episode(path)

    assert ep.header["version"] == golden["version"] == version and ep.complete and not ep.damage
    assert len(ep.index["frames"]) == golden["frames"] > 2
    assert [repr([s.index, s.action, s.observation, s.reward, s.terminated, s.info, s.note, s.failure, s.retry_of,
                  s.recovers, s.diff]) for s in ep] == golden["steps"]
    assert [repr(ep.state_at(i)) for i in range(-1, len(ep))] == golden["states"]
    assert repr([ep.reset.seed, ep.reset.observation, ep.reset.state]) == golden["reset"]
    assert [repr(c.to_record()) for c in ep.checks] == golden["checks"]
    assert repr({k: v for k, v in ep.summary.items() if k not in ("start_time", "end_time")}) == golden["summary"]
    if "read_index" in golden:  # the whole index dict, as the reader of the time returned it
        assert repr(read_index(path)) == golden["read_index"]
    assert fsck(path).ok


def test_every_sample_run_passes_fsck() -> None:
    files = sorted(SAMPLES.rglob("*.msgpack.zst"))
    assert len(files) == 12
    for path in files:
        report = fsck(path)
        assert report.ok, (path, report.damage, report.error)
        assert open_episode(path).header["version"] == 1


# -- bounds ----------------------------------------------------------------------------------------------------------

def test_decompression_stops_at_the_limit_before_producing_more() -> None:
    import zstandard

    bomb = zstandard.ZstdCompressor(level=19).compress(b"\0" * (8 << 20))
    with pytest.raises(FrameTooLarge, match="more than 2097152 bytes"):
        decompress_bounded(bomb, limit=2 << 20)
    assert decompress_bounded(bomb, limit=10 << 20)[0] == b"\0" * (8 << 20)
    assert MAX_FRAME_RAW == (64 << 20) + 2 * (128 << 20)


def _ext(code: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 256:
        return b"\xc7" + bytes([n]) + bytes([code]) + payload
    if n < 65536:
        return b"\xc8" + n.to_bytes(2, "big") + bytes([code]) + payload
    return b"\xc9" + n.to_bytes(4, "big") + bytes([code]) + payload


# How each extension type can hold a nested value in its payload (msgpack bytes around ``inner``).
NESTERS = {
    "ndarray": lambda inner: b"\x93" + inner + b"\x90" + b"\xc4\x00",
    "npscalar": lambda inner: b"\x92" + inner + b"\xc4\x00",
    "tuple": lambda inner: b"\x91" + inner,
    "set": lambda inner: b"\x92\xa3set\x91" + inner,
    "fallback": lambda inner: b"\x92" + inner + b"\xa1x",
    "objarray": lambda inner: b"\x92\x91\x01\x91" + inner,
}
CODES = {"ndarray": 1, "npscalar": 2, "tuple": 4, "set": 5, "fallback": 6, "objarray": 7}


@pytest.mark.parametrize("kind", sorted(NESTERS))
def test_deep_extension_nesting_is_refused_not_a_crash(kind: str, tmp_path: Path) -> None:
    inner = b"\xc0"
    for _ in range(400):
        inner = _ext(CODES[kind], NESTERS[kind](inner))
    with pytest.raises(ValueError, match=f"nest more than {MAX_EXT_DEPTH} deep"):
        unpackb(inner)

    # The same value inside a step of an episode file: the reader names the file and the frame.
    path = tmp_path / "deep.msgpack.zst"
    w = EpisodeWriter(path, {"episode_id": "deep", "task": {}, "provenance": {}})
    w.write_reset({"seed": 0, "observation": "o", "info": {}, "time": 0.0, "duration": 0.0})
    w._fw.end_frame()  # the crafted step gets a frame of its own
    w._fw.write_raw(b"\x83\xa1t\xa4step\xa1i\x00\xabobservation" + inner, finish=True)
    w.abort()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ep = open_episode(path)
    assert len(ep) == 0 and any(f"nest more than {MAX_EXT_DEPTH} deep" in d for d in ep.damage)
    code, _, err = _cli("show", str(path), "--step", "0")
    assert code != 0 and err.count("\n") == 1


def test_nesting_within_the_limit_still_reads() -> None:
    value: object = "x"
    for _ in range(MAX_EXT_DEPTH - 1):
        value = (value,)
    assert unpackb(packb(value)) == value


def _small(tmp_path: Path, name: str = "e.msgpack.zst") -> tuple[Path, bytes, dict]:
    """A recorded file's bytes before its index frame, and its index (as the reader expands it)."""
    path = _record(tmp_path / name.split(".")[0], steps=12, frame_steps=4)
    data = path.read_bytes()
    index = read_index(path)
    start = index.pop("index_offset")
    for key in ("complete", "damage", "file_size"):
        del index[key]
    return path, data[:start], index


def _compact_frame(compact: dict) -> bytes:
    """A version-3 index frame holding ``compact`` as given (a valid CRC: crafted, not damaged)."""
    zdict = zstandard.ZstdCompressionDict(INDEX_DICTIONARY, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    payload = zstandard.ZstdCompressor(dict_data=zdict, write_content_size=True).compress(packb(compact))
    body = payload + struct.pack("<II", len(payload), zlib.crc32(payload)) + TAIL_MAGIC
    return struct.pack("<II", 0x184D2A5B, len(body)) + body


INDEX_CASES = {
    "frames=[]": {"frames": []},
    "frames=[1,2]": {"frames": [1, 2]},
    "rows too short": {"frames": [[0], [5]]},
    "row past EOF": {"frames": [[0, 0, 0, 100], [10**6, 0, 12, 2 * 10**6]]},
    "negative offset": {"frames": [[0, 0, 0, 100], [-500, 0, 12, -1]]},
    "offsets 2**63-1": {"frames": [[0, 0, 0, 2**63 - 1], [2**63 - 1, 0, 12, 2**63 - 1]]},
    "end before start": {"frames": [[0, 0, 0, 50], [300, 0, 12, 10]]},
    "negative n": {"frames": [[0, 0, -12, 100]]},
    "200,000 rows": {"frames": [[0, 0, 0, 100]] + [[100, 0, 4, 200]] * 200_000},
    "steps=10000": {"steps": 10000},
    "steps='forty'": {"steps": "forty"},
    "steps=None": {"steps": None},
    "steps=2**70": {"steps": 2**70},
    "header=[1,2]": {"header": [1, 2]},
    "header.task=[1,2]": {"header": {"magic": "trajrec", "version": 2, "task": [1, 2]}},
    "summary=[1,2]": {"summary": [1, 2]},
    "summary.steps='x'": {"summary": {"steps": "x"}},
    "checks=[1,2]": {"checks": [1, 2]},
    "checks tags=5": {"checks": [{"target": "episode", "tags": 5, "value": True}]},
}


#: Version-3 compact indexes (``format.compact_index``) that decode but do not fit the file.
COMPACT_CASES = {
    "f=[]": {"f": []},
    "f not rows of 3": {"f": [0, 12]},
    "f negative gap": {"f": [-5, 12, 100]},
    "f past EOF": {"f": [0, 12, 10**9]},
    "f=list of text": {"f": ["a", "b", "c"]},
    "f 200,000 rows": {"f": [0, 0, 100] + [0, 4, 100] * 200_000},
    "f steps beyond the bytes": {"f": [0, 10**6, 50]},
    "hc wrong": {"hc": 12345},
    "hc=2**40": {"hc": 2**40},
    "hl too long": {"hl": 10**7},
    "hl too short": {"hl": 3},
    "hl=0": {"hl": 0},
    "v='3'": {"v": "3"},
    "s=[1,2]": {"s": [1, 2]},
    "c=5": {"c": 5},
    "sc=[1]": {"sc": [1]},
    "x=[1]": {"x": [1]},
    "m not pairs": {"m": [1]},
    "m=text": {"m": "marks"},
    "m negative": {"m": [-1, 1]},
    "not a map": None,
}


def _crafted_index(case: str, body: bytes, index: dict) -> bytes:
    if case in INDEX_CASES:  # the version-2 layout (every reader still reads it)
        return index_frame({**index, **INDEX_CASES[case]})
    head = first_record_bytes(decompress_bounded(body[:index["frames"][0][3]])[0])
    compact = unpackb(packb(compact_index(index, head)))
    change = COMPACT_CASES[case]
    return _compact_frame([1, 2] if change is None else {**compact, **change})


@pytest.mark.parametrize("case", sorted(INDEX_CASES) + sorted(COMPACT_CASES))
def test_an_inconsistent_index_is_not_trusted(case: str, tmp_path: Path) -> None:
    path, body, index = _small(tmp_path)
    before = [packb(r) for r in open_episode(path).iter_records()]
    path.write_bytes(body + _crafted_index(case, body, index))  # a valid CRC: crafted, not damaged

    with pytest.warns(RuntimeWarning, match="the index is inconsistent"):
        ep = open_episode(path)
    assert not ep.complete and len(ep) == 12
    assert [packb(r) for r in ep.iter_records()] == before
    assert ep.state_at(11) == {"n": 18}
    assert not fsck(path).ok
    for argv in (["ls", str(path)], ["show", str(path)], ["show", str(path), "--step", "3"]):
        code, _, err = _cli(*argv)
        assert code == 0, err


STEP_CASES = {
    "diff=5": {"diff": 5},
    "diff row short": {"diff": [[["n"], "values_changed"]]},
    "recovers=dict": {"recovers": {"a": 1}},
    "failure=list": {"failure": [1]},
    "failure.kind=dict": {"failure": {"kind": {"a": 1}, "message": "m"}},
    "checks=[1]": {"checks": [1]},
    "checks tags dict": {"checks": [{"target": "step", "tags": [{"a": 1}], "value": 1}]},
    "retry_of='x'": {"retry_of": "x"},
    "note=list": {"note": [1]},
    "time='now'": {"time": "now"},
    "i='zero'": {"i": "zero"},
}


@pytest.mark.parametrize("case", sorted(STEP_CASES))
def test_a_step_with_fields_of_the_wrong_type_is_a_format_error(case: str, tmp_path: Path) -> None:
    path = tmp_path / "e.msgpack.zst"
    w = EpisodeWriter(path, {"episode_id": "e", "task": {}, "provenance": {}})
    w.write_reset({"seed": 0, "observation": "o", "info": {}, "time": 0.0, "duration": 0.0})
    w.write_step({"i": 0, "action": "a", "observation": "o", "reward": 0.0, "terminated": False, "truncated": False,
                  "info": {}, "time": 0.0, "duration": 0.0})
    # Step 1 goes out as raw bytes, as another program could write it; the index lists it like any step.
    w._fw.write_raw(packb({"t": "step", "i": 1, "action": "a", "observation": "o", "reward": 0.0,
                           "terminated": True, "truncated": False, "info": {}, "time": 0.0, "duration": 0.0,
                           **STEP_CASES[case]}), finish=True)
    w.frames[-1][2] += 1
    w.frames[-1][3] = w._fw.offset
    w._frame_open = False
    w.steps += 1
    w.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a bad check copied into the index: read by scanning
        try:
            ep = open_episode(path)
        except TrajrecFormatError as exc:  # scanning: the one frame holding header, reset and steps is bad
            assert "step 1" in str(exc)
            ep = None
    if ep is None:
        pass
    elif ep.complete:
        with pytest.raises(TrajrecFormatError, match=r"step .*(expected|not)"):
            ep[1]
        with pytest.raises(TrajrecFormatError):
            list(ep)
    else:  # the scan keeps the good frame and reports the bad one
        assert len(ep) == 1 and any("step 1" in d for d in ep.damage), ep.damage
    assert not fsck(path).ok
    code, _, err = _cli("show", str(path), "--step", "1")
    assert code != 0 and err.startswith("trajrec show: error: ") and err.count("\n") == 1


# -- version 3: the compact index ------------------------------------------------------------------------------------

def _index_without_place(path: Path) -> dict:
    index = read_index(path)
    for key in ("index_offset", "file_size"):
        index.pop(key)
    return index


def test_the_compact_index_reads_as_the_full_index_of_the_same_file(tmp_path: Path) -> None:
    path, body, index = _small(tmp_path)
    compact = _index_without_place(path)
    full = tmp_path / "full.msgpack.zst"
    full.write_bytes(body + index_frame(index))  # the same index in the version-2 layout (header copy, no zstd)

    assert full.read_bytes()[-8:] == b"TRJRIDX2" and path.read_bytes()[-8:] == TAIL_MAGIC
    assert _index_without_place(full) == compact
    assert compact["complete"] and compact["header"]["version"] == 3 and compact["steps"] == 12
    assert len(path.read_bytes()) < len(full.read_bytes()) - len(packb(index["header"])) // 2


def test_a_short_episode_file_is_small(tmp_path: Path) -> None:
    # What the compact index is for: a 20-step file used to be ~2,650 bytes, a third of it a header copy.
    env = Recorder(gym.make("CartPole-v1"), tmp_path)
    env.reset(seed=0)
    for k in range(20):
        env.step(k % 2)
    env.close()
    data = env.episode_path.read_bytes()
    index = read_index(env.episode_path)
    index_bytes = len(data) - index["index_offset"]
    assert index_bytes < 200 and len(data) - index["frames"][0][3] < 250, (index_bytes, len(data))


@pytest.mark.parametrize("which", ["v3", "v2"])
def test_repair_keeps_the_files_own_index_layout(tmp_path: Path, which: str) -> None:
    if which == "v3":
        path, _, _ = _small(tmp_path)
    else:
        path = tmp_path / "v2.msgpack.zst"
        path.write_bytes((FIXTURES / "v2_episode.msgpack.zst").read_bytes())
    before = _index_without_place(path)
    path.write_bytes(path.read_bytes()[:read_index(path)["index_offset"]])  # the writer died before the index
    assert not read_index(path)["complete"]

    report = fsck(path, repair=True)
    assert report.repaired, report
    after = _index_without_place(path)
    assert path.read_bytes()[-8:] == (TAIL_MAGIC if which == "v3" else b"TRJRIDX2")
    assert after["complete"] and after["repaired"]["damage"]
    for key in ("version", "steps", "header", "checks", "step_checks"):
        assert after[key] == before[key], key
    # a repaired index also lists the frames that hold no steps (checks, the end record)
    assert [f for f in after["frames"] if f[2]] == [f for f in before["frames"] if f[2]]
    assert fsck(path).ok


def test_a_header_bigger_than_a_zstd_block_and_the_tail_read_is_read_from_frame_0(tmp_path: Path) -> None:
    import os

    text = os.urandom(150_000).hex()  # 300 KB of task text: the header spans several zstd blocks
    env = Recorder(Counter(), tmp_path, task={"text": text})
    env.reset(seed=0)
    for _ in range(3):
        env.step(1)
    env.close()
    index = read_index(env.episode_path)
    assert index["complete"] and not index["damage"] and index["header"]["task"]["text"] == text
    assert index["file_size"] - index["index_offset"] < 300  # the index does not carry the header
    assert open_episode(env.episode_path).task["text"] == text
    assert fsck(env.episode_path).ok


def test_a_small_compact_index_that_decompresses_to_much_more_is_refused(tmp_path: Path) -> None:
    # A version-3 index is a zstd frame: a few hundred bytes could claim hundreds of MiB. It is bounded by its
    # compressed size, refused as damage, and the frames are scanned instead.
    path, body, index = _small(tmp_path)
    head = first_record_bytes(decompress_bounded(body[:index["frames"][0][3]])[0])
    compact = unpackb(packb(compact_index(index, head)))
    bomb = _compact_frame({**compact, "x": {"pad": "a" * (8 << 20)}})
    assert len(bomb) < 8 << 10
    path.write_bytes(body + bomb)
    with pytest.warns(RuntimeWarning, match="the index frame is damaged"):
        ep = open_episode(path)
    assert not ep.complete and len(ep) == 12
