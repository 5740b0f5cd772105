"""Fuzzing the reader: seeded mutations of real episode files, and crafted hostile files.

Mutations (truncate, bit flips, byte overwrites, splices) of the committed ``sample_runs/`` (format version 1),
the committed version-2 fixture, and freshly recorded files of the current version (3: the compact index, with
the header read from frame 0) run in process, each under an alarm. A case passes when the reader

* raises :class:`TrajrecFormatError` (the file and offset are in the message), or
* returns exactly the original data, or
* returns a prefix of the original steps while saying the file is damaged (``ep.damage``: a truncated or cut
  file, read as far as it is whole);

and ``fsck`` does not call a file "ok" that the reader found damaged;

never another exception, never different data. A sample of cases also runs ``trajrec ls/show/fsck`` in process:
each returns an exit code and prints errors on one line.

Crafted files (a decompression bomb, deep nesting of every extension type, bogus indexes, fields of the wrong type)
run in a child process with an address-space limit (``RLIMIT_AS``) and a timeout, so a crash or a memory blow-up
fails the test instead of the suite.

The default suite runs ``FUZZ_CASES`` (300) mutations; ``pytest -m heavy tests/recorder/test_fuzz.py`` runs
10,000. Both print their tallies (``-s`` shows them).
"""

from __future__ import annotations

import io
import json
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import warnings
from collections import Counter as Tally
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from trajrec.cli import main
from trajrec.recorder import Recorder, TrajrecError, TrajrecFormatError, fsck, open_episode
from trajrec.recorder.format import packb

SAMPLES = Path(__file__).resolve().parents[2] / "sample_runs"
V2_FIXTURE = Path(__file__).parent / "fixtures" / "v2_episode.msgpack.zst"
FUZZ_CASES = 300
HEAVY_CASES = 10_000
CASE_SECONDS = 30  # an alarm per case: a hang fails the case instead of the suite


class _Tool(gym.Env):
    observation_space = gym.spaces.Discrete(1000)
    action_space = gym.spaces.Discrete(4)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = {"n": 0, "files": {"a": "x"}, "log": []}
        return {"text": "start", "t": (0,)}, {}

    def step(self, action):
        self.state["n"] += 1
        self.state["log"].append(int(action))
        self.state["files"][f"f{self.state['n'] % 5}"] = "y" * int(action)
        info = {"error": "no"} if action == 0 else {"arr": np.arange(4, dtype=np.float32) * action, "s": {action}}
        return {"text": f"obs {self.state['n']}", "t": (self.state["n"], "x")}, float(action), False, False, info

    def state_dict(self):
        return self.state


def _record_current(folder: Path, steps: int, seed: int) -> Path:
    env = Recorder(_Tool(), folder, frame_steps=7)
    env.reset(seed=seed)
    rng = random.Random(seed)
    for _ in range(steps):
        env.step(rng.randrange(4))
        if rng.random() < 0.1:
            env.check(rng.choice([True, False, 1, -1]), kind="rule", judge="fuzz@1", rationale="r", tags=["x"])
    env.close()
    return Path(env.episode_path)


def _to_current(src: Path, dst: Path) -> Path:
    """Rewrite a version-1 sample run with today's writer (same records, checksummed frames, compact index)."""
    from trajrec.recorder.writer import EpisodeWriter

    ep = open_episode(src)
    header = {k: v for k, v in ep.header.items() if k not in ("t", "magic", "version")}
    w = EpisodeWriter(dst, header, frame_steps=5)
    frame0 = ep._decode(ep._frame0)
    w.write_reset({k: v for k, v in next(r for r in frame0 if r["t"] == "reset").items() if k != "t"})
    for rec in ep.iter_records():
        w.write_step(dict(rec))
    for check in ep.index["checks"]:
        w.write_check(dict(check))
    w.close()
    return dst


SAMPLE_FILES = [sorted((SAMPLES / env).glob("*.msgpack.zst"))[0]
                for env in ("mathcalc", "shell", "coderepair", "supportticket")]


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, dict[str, Any]]]:
    """Real files and what the reader makes of them: the sample runs as committed (format version 1), the
    committed version-2 fixture, the sample runs rewritten by today's writer, and freshly recorded files with
    state, checks and several frames."""
    folder = tmp_path_factory.mktemp("fuzz-originals")
    files = list(SAMPLE_FILES) + [V2_FIXTURE]
    files += [_to_current(p, folder / f"v3-{p.name}") for p in SAMPLE_FILES]
    files += [_record_current(folder / "v3", 30, 1), _record_current(folder / "v3", 12, 2)]
    out = []
    for path in files:
        ref = read_all(path)
        assert ref["complete"] and not ref["damage"], path
        out.append((path, ref))
    return out


def read_all(path: Path) -> dict[str, Any]:
    """Everything a reader can be asked, as bytes to compare: header, reset, every step record, checks, states."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ep = open_episode(path)
    with ep:
        n = len(ep)
        records = [packb(r) for r in ep.iter_records()]
        steps = [packb([s.index, s.action, s.observation, s.reward, s.failure, s.diff, s.recovers, s.retry_of])
                 for s in (ep[i] for i in range(n))]
        reset = ep.reset
        states = []
        if ep.has_state:
            states = [packb(ep.state_at(i)) for i in range(-1, n, max(1, n // 5))]
        return {
            "header": packb(ep.header),
            "reset": packb([reset.seed, reset.observation, reset.info, reset.state]),
            "records": records,
            "steps": steps,
            "checks": [packb(c.to_record()) for c in ep.checks],
            "states": states,
            "complete": ep.complete,
            "damage": list(ep.damage),
            "summary_steps": ep.summary.get("steps"),
            "version": ep.header.get("version"),
        }


def classify(path: Path, ref: dict[str, Any]) -> str:
    """``same``, ``error``, ``damaged-prefix`` (pass) or ``BAD ...`` (fail) for one file."""
    try:
        got = read_all(path)
    except TrajrecFormatError as exc:
        assert str(exc).startswith(str(path)), str(exc)  # the message names the file
        return "error"
    except TrajrecError as exc:
        return f"BAD {type(exc).__name__}: {exc}"
    except Exception as exc:  # the point of the test: any other exception is a failure
        return f"BAD {type(exc).__name__}: {exc}"
    keys = ("header", "reset", "records", "steps", "checks", "states")
    if all(got[k] == ref[k] for k in keys):
        return "same"
    n = len(got["records"])
    prefix = (got["header"] == ref["header"] and got["reset"] == ref["reset"]
              and got["records"] == ref["records"][:n] and got["steps"] == ref["steps"][:n])
    if got["damage"] and prefix:
        return "damaged-prefix"
    if ref["version"] == 1:
        # Version-1 frames carry no checksum: a flipped bit inside a string can decode as another string. That is
        # why version 2 exists; version-1 files are counted apart and must only never crash the reader.
        return "v1 changed without error"
    return "BAD wrong data" + (" (damage reported)" if got["damage"] else " (no error)")


def mutate(data: bytes, rng: random.Random, other: bytes) -> tuple[str, bytes]:
    kind = rng.choice(["truncate", "bitflip", "overwrite", "splice"])
    b = bytearray(data)
    if kind == "truncate":
        return kind, bytes(b[:rng.randrange(len(b))])
    if kind == "bitflip":
        for _ in range(rng.randint(1, 3)):
            pos = rng.randrange(len(b))
            b[pos] ^= 1 << rng.randrange(8)
        return kind, bytes(b)
    if kind == "overwrite":
        pos = rng.randrange(len(b))
        n = rng.randint(1, 16)
        b[pos:pos + n] = bytes(rng.randrange(256) for _ in range(n))[:len(b) - pos]
        return kind, bytes(b)
    # splice: a piece of this file or another real file copied over a random place
    src = other if rng.random() < 0.5 else data
    n = rng.randint(1, min(256, len(src)))
    start = rng.randrange(len(src) - n + 1)
    pos = rng.randrange(len(b))
    b[pos:pos + n] = src[start:start + n]
    return kind, bytes(b)


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _timeout(signum: int, frame: Any) -> None:
    raise TimeoutError(f"a fuzz case took more than {CASE_SECONDS} s")


def run_mutations(originals: list[tuple[Path, dict[str, Any]]], tmp_path: Path, cases: int, seed: int,
                  cli_every: int) -> Tally:
    rng = random.Random(seed)
    tally: Tally = Tally()
    failures: list[str] = []
    datas = [(p, p.read_bytes(), ref) for p, ref in originals]
    target = tmp_path / "case" / "Fuzz-v0-x.msgpack.zst"
    target.parent.mkdir()
    old = signal.signal(signal.SIGALRM, _timeout)
    try:
        for k in range(cases):
            path, data, ref = datas[k % len(datas)]
            kind, mutated = mutate(data, rng, datas[(k + 1) % len(datas)][1])
            target.write_bytes(mutated)
            signal.alarm(CASE_SECONDS)
            try:
                outcome = classify(target, ref)
                if outcome in ("error", "damaged-prefix"):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        if fsck(target).ok:  # the "fsck says ok while steps fail to read"
                            outcome = "BAD fsck ok but the reader found damage"
                if k % cli_every == 0:
                    for argv in (["ls", str(target)], ["show", str(target)], ["fsck", str(target)],
                                 ["show", str(target), "--step", "0"]):
                        code, out, err = _cli(*argv)
                        bad = [line for line in err.splitlines() if "error" in line and not line.startswith("trajrec ")]
                        if not isinstance(code, int) or bad or "Traceback" in out + err:
                            outcome = f"BAD cli {argv[0]}: {err[-300:]}"
            except TimeoutError as exc:
                outcome = f"BAD {exc}"
            finally:
                signal.alarm(0)
            tally[f"{kind}: {outcome.split(':')[0]}"] += 1
            tally[outcome.split(":")[0]] += 1
            if outcome.startswith("BAD"):
                failures.append(f"case {k} ({kind} of {path.name}): {outcome}")
                shutil.copy(target, tmp_path / f"failed-{k}.msgpack.zst")
    finally:
        signal.signal(signal.SIGALRM, old)
    print(f"\nfuzz: {cases} cases, seed {seed}: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.items())))
    assert not failures, "\n".join(failures[:20])
    return tally


def test_mutated_real_files_give_an_error_or_the_original_data(originals, tmp_path: Path) -> None:
    tally = run_mutations(originals, tmp_path, FUZZ_CASES, seed=10, cli_every=10)
    assert tally["error"] > 0 and tally["same"] + tally["damaged-prefix"] > 0  # both sides were exercised


@pytest.mark.heavy
def test_mutated_real_files_heavy(originals, tmp_path: Path) -> None:
    run_mutations(originals, tmp_path, HEAVY_CASES, seed=20260, cli_every=25)


# -- crafted hostile files, each in a limited child process ----------------------------------------------------------

CHILD = textwrap.dedent("""
    import io, json, resource, sys, warnings
    from contextlib import redirect_stderr, redirect_stdout
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    warnings.simplefilter("ignore")
    from trajrec.cli import main
    from trajrec.recorder import TrajrecFormatError, open_episode
    for path in sys.argv[2:]:
        print("reading", path, file=sys.stderr, flush=True)  # names the file if the process dies
        result = {"path": path}
        try:
            ep = open_episode(path)
            n = len(ep)
            list(ep.iter_records())
            [ep[i] for i in range(n)]
            ep.reset
            if ep.has_state and n:
                ep.state_at(n - 1)
            result["read"] = "ok damaged" if ep.damage else "ok"
        except TrajrecFormatError as exc:
            result["read"] = "TrajrecFormatError"
        except BaseException as exc:
            result["read"] = "BAD " + type(exc).__name__ + ": " + str(exc)[:200]
        for argv in (["ls", path], ["show", path], ["fsck", path], ["show", path, "--step", "0"]):
            out, err = io.StringIO(), io.StringIO()
            try:
                with redirect_stdout(out), redirect_stderr(err):
                    code = main(argv)
                text = err.getvalue()
                ok = all(line.startswith("trajrec ") for line in text.splitlines() if "error" in line)
                result[" ".join(argv[:1] + argv[2:])] = code if ok and "Traceback" not in text else "BAD " + text[-200:]
            except BaseException as exc:
                result[" ".join(argv[:1] + argv[2:])] = "BAD " + type(exc).__name__ + ": " + str(exc)[:200]
        print(json.dumps(result), flush=True)
""")


def _run_child(paths: list[Path], limit: int = 1 << 31, timeout: float = 300) -> list[dict[str, Any]]:
    """Read each file and run the CLI on it in one child process limited to ``limit`` bytes of address space."""
    r = subprocess.run([sys.executable, "-c", CHILD, str(limit), *map(str, paths)], capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"child exited {r.returncode} (negative: killed by a signal)\n{r.stderr[-2000:]}"
    return [json.loads(line) for line in r.stdout.strip().splitlines()]


def _assert_clean(result: dict[str, Any]) -> None:
    bad = {k: v for k, v in result.items() if isinstance(v, str) and v.startswith("BAD")}
    assert not bad, bad


def _head_frame() -> bytes:
    from trajrec.recorder.format import compress_frame

    return compress_frame([packb({"t": "header", "magic": "trajrec", "version": 2, "episode_id": "crafted",
                                  "task": {}, "provenance": {}}),
                           packb({"t": "reset", "seed": 0, "observation": "o", "info": {}, "time": 0.0,
                                  "duration": 0.0})])


def test_a_decompression_bomb_stops_at_the_frame_limit(tmp_path: Path) -> None:
    import zstandard

    # 400 MiB of zeros (over MAX_FRAME_RAW, 320 MiB) in a 13 KB frame with a valid checksum.
    cctx = zstandard.ZstdCompressor(level=1, write_checksum=True)
    co = cctx.compressobj()
    zeros = b"\0" * (16 << 20)
    bomb = b"".join(co.compress(zeros) for _ in range(25)) + co.flush()
    path = tmp_path / "Bomb-v0-x.msgpack.zst"
    path.write_bytes(_head_frame() + bomb)
    assert path.stat().st_size < 100_000

    [result] = _run_child([path], limit=1 << 31)  # 2 GiB of address space: the cap keeps the read inside it
    _assert_clean(result)
    assert result["read"] == "ok damaged"  # the header frame reads; the bomb is reported as damage


def _ext(code: int, payload: bytes) -> bytes:
    n = len(payload)
    head = (b"\xc7" + bytes([n]) if n < 256 else b"\xc8" + n.to_bytes(2, "big") if n < 65536
            else b"\xc9" + n.to_bytes(4, "big"))
    return head + bytes([code]) + payload


NESTERS = {
    1: lambda inner: b"\x93" + inner + b"\x90" + b"\xc4\x00",      # ndarray [dtype, shape, raw]
    2: lambda inner: b"\x92" + inner + b"\xc4\x00",                # numpy scalar [dtype, raw]
    4: lambda inner: b"\x91" + inner,                              # tuple
    5: lambda inner: b"\x92\xa3set\x91" + inner,                   # set
    6: lambda inner: b"\x92" + inner + b"\xa1x",                   # fallback [type, repr]
    7: lambda inner: b"\x92\x91\x01\x91" + inner,                  # object array [shape, items]
}


def _crafted_files(folder: Path) -> dict[str, Path]:
    from trajrec.recorder.format import compress_frame, index_frame
    from trajrec.recorder.writer import EpisodeWriter

    files: dict[str, Path] = {}

    def raw_file(name: str, step_bytes: bytes, index: dict | None = None) -> None:
        path = folder / f"{name}.msgpack.zst"
        head = _head_frame()
        body = head + compress_frame([step_bytes])
        if index is not None:
            body += index_frame({"version": 2, "steps": 1, "frames": [[0, 0, 0, len(head)],
                                                                     [len(head), 0, 1, len(body)]],
                                 "header": {"magic": "trajrec", "version": 2, "episode_id": "c", "task": {},
                                            "provenance": {}}, "summary": {}, "checks": [], "step_checks": [],
                                 **index})
        path.write_bytes(body)
        files[name] = path

    step_head = b"\x83\xa1t\xa4step\xa1i\x00\xabobservation"
    for code, nest in NESTERS.items():
        inner = b"\xc0"
        for _ in range(3000):
            inner = _ext(code, nest(inner))
        raw_file(f"deep-ext-{code}", step_head + inner)
        raw_file(f"deep-ext-{code}-indexed", step_head + inner, index={})
    raw_file("deep-arrays", step_head + b"\x91" * 100_000 + b"\xc0")
    raw_file("deep-maps", step_head + b"\x81\xa1k" * 50_000 + b"\xc0")
    raw_file("huge-array-claim", step_head + b"\xdd\xff\xff\xff\xff" * 1000)
    raw_file("huge-str-claim", step_head + b"\xdb\xff\xff\xff\xf0abc")
    raw_file("object-dtype", step_head + _ext(1, packb(["|O8", [1], b"\0" * 8])))
    raw_file("bogus-shape", step_head + _ext(1, packb(["<f8", [10**9, 10**9], b"\0" * 8])))
    raw_file("bigint-digits", step_head + _ext(3, b"9" * 100_000))
    raw_file("bogus-index-rows", packb({"t": "step", "i": 0}),
             index={"frames": [[0, 0, 0, 10]] + [[10, 0, 1, 20]] * 200_000, "steps": 200_000})
    raw_file("index-wrong-types", packb({"t": "step", "i": 0}),
             index={"summary": {"steps": [1], "checks": "x"}, "checks": [{"tags": {"a": 1}}]})
    for field, value in {"diff": 5, "recovers": {"a": 1}, "failure": [1], "checks": [[1]], "i": "zero",
                         "note": "n", "retry_of": 1.5}.items():
        raw_file(f"step-{field}-wrong-type", packb({"t": "step", "i": 0, field: value}), index={})
    path = folder / "header-task-list.msgpack.zst"
    w = EpisodeWriter(path, {"episode_id": "e", "task": [1, 2], "provenance": {}})
    w.write_reset({"seed": 0, "observation": "o", "info": {}, "time": 0.0, "duration": 0.0})
    w.close()
    files["header-task-list"] = path
    return files


def test_crafted_hostile_files_give_clean_errors_in_a_limited_process(tmp_path: Path) -> None:
    files = _crafted_files(tmp_path)
    results = {}
    names = {str(p): name for name, p in files.items()}
    for result in _run_child(list(files.values()), limit=1 << 31):
        _assert_clean(result)
        results[names[result["path"]]] = result["read"]
    assert len(results) == len(files)
    print("\ncrafted:", json.dumps(results))
    assert all(v in ("TrajrecFormatError", "ok damaged") for v in results.values()), results
