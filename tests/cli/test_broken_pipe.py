"""A reader that stops early (``trajrec export --out - | head``) ends every stdout-writing command quietly: exit 0,
nothing on stderr, as other Unix tools (the reader's end of the pipe is closed before the command writes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "sample_runs"
FILE = sorted(RUN.rglob("*.msgpack.zst"))[0]


def _closed_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    r, w = os.pipe()
    os.close(r)  # the reader is gone before anything is written: the first write fails with EPIPE
    try:
        return subprocess.run([sys.executable, "-m", "trajrec", *args], stdout=w, stderr=subprocess.PIPE, text=True,
                              timeout=120, cwd=ROOT)
    finally:
        os.close(w)


@pytest.mark.parametrize("args", [
    ["export", str(RUN), "--format", "records", "--out", "-"],
    ["export", str(RUN), "--format", "chat", "--out", "-", "--workers", "2"],
    ["export", str(RUN), "--format", "trl-stepwise", "--out", "-", "--unlabeled", "neutral"],
    ["ls", str(RUN)], ["ls", str(RUN), "--json"], ["report", str(RUN)], ["label", "ls", str(RUN)],
    ["show", str(FILE)], ["show", str(FILE), "--json"],
], ids=lambda a: " ".join(x for x in a if not x.startswith("/"))[:40])
def test_a_closed_stdout_ends_quietly(args: list[str]) -> None:
    proc = _closed_pipe(*args)
    if args[0] == "ls":  # a verdict command: it finishes (to nowhere) and prints its summary line as always
        assert proc.returncode == 0 and "Broken pipe" not in proc.stderr and "Traceback" not in proc.stderr
    else:
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_export_into_head_ends_quietly() -> None:
    proc = subprocess.run(["bash", "-c", f"set -o pipefail; {sys.executable} -m trajrec export {RUN} --format "
                                         "records --out - | head -n 1"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.count("\n") == 1, proc.stderr
    assert "Broken pipe" not in proc.stderr and "error" not in proc.stderr, proc.stderr


def test_a_closed_stdout_keeps_a_verdict_decided_before_the_output(tmp_path: Path) -> None:
    """`trajrec diff A B | head`: the exit status says whether the episodes differ (0/1), not 2 "error", however
    early the reader stops."""
    from trajrec.cli import main

    runs = []
    for name, seed in (("a", "0"), ("b", "0"), ("c", "1")):
        assert main(["record", "trajrec/MathCalc-v0", "--episodes", "1", "--seed", seed, "--out",
                     str(tmp_path / name), "--json"]) == 0
        runs.append(str(next((tmp_path / name).glob("*.msgpack.zst"))))
    for other, verdict in ((runs[1], 0), (runs[2], 1)):
        for extra in ([], ["--json"]):
            proc = _closed_pipe("diff", runs[0], other, *extra)
            assert (proc.returncode, proc.stderr) == (verdict, ""), (other, extra, proc.stderr)


def test_verdict_commands_keep_their_status_when_the_reader_goes_away(tmp_path: Path) -> None:
    """`trajrec fsck runs/ | head`, `trajrec ls runs/ | head`: problems found still exit 1 (the command finishes
    writing to nowhere); a clean run still exits 0; nothing on stderr about the pipe."""
    from trajrec.cli import main

    run = tmp_path / "run"
    assert main(["record", "trajrec/Shell-v0", "--episodes", "30", "--out", str(run), "--json"]) == 0
    clean = _closed_pipe("fsck", str(run))
    assert (clean.returncode, clean.stderr) == (0, "")
    # The damaged file sorts last: the verdict comes after the output the reader would have read.
    last = sorted(run.glob("*.msgpack.zst"))[-1]
    data = bytearray(last.read_bytes())
    data[len(data) // 3] ^= 0xFF
    (run / "zz-damaged.msgpack.zst").write_bytes(bytes(data))
    (run / "zz-unreadable.msgpack.zst").write_bytes(b"not an episode at all")
    for args in (["fsck", str(run)], ["ls", str(run)]):
        proc = _closed_pipe(*args)
        assert proc.returncode == 1 and "Broken pipe" not in proc.stderr, (args, proc.returncode, proc.stderr)


def test_show_json_keeps_keys_of_every_type_apart(tmp_path: Path) -> None:
    """`show --json`: a dict with keys 1 and "1", None and "None" keeps four keys (others as the exports write
    them), not two."""
    import json as json_

    from trajrec import Recorder
    from trajrec.cli import main

    class _Env:
        def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
            return 0, {}

        def step(self, action):  # type: ignore[no-untyped-def]
            return {1: "int one", "1": "str one", None: "none", "None": "str None"}, 0.0, True, False, {}

    env = Recorder(_Env(), tmp_path)
    env.reset(seed=0)
    env.step(0)
    env.close()
    proc = subprocess.run([sys.executable, "-m", "trajrec", "show", str(env.episode_path), "--json"],
                          capture_output=True, text=True, timeout=120)
    step = next(json_.loads(line) for line in proc.stdout.splitlines() if '"type": "step"' in line)
    assert step["observation"] == {"$1": "int one", "1": "str one", "$null": "none", "None": "str None"}
