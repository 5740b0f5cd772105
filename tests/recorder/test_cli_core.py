from __future__ import annotations

import json
import subprocess
import sys

import pytest

from trajrec.recorder import Recorder
from trajrec.cli import main


@pytest.fixture
def run_dir(tmp_path, stub_env):
    env = Recorder(stub_env(), tmp_path / "run")
    for seed in range(3):
        env.reset(seed=seed)
        env.step("cat missing.txt")
        env.step("cat notes.txt")
        env.step("write done yes")
    env.close()
    return tmp_path / "run"


def test_ls_text_and_json(run_dir, capsys):
    assert main(["ls", str(run_dir)]) == 0
    out = capsys.readouterr()
    assert out.out.count("stub-1") == 3 and "passed" in out.out and "1/1/1" in out.out
    assert main(["ls", str(run_dir), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 3 and {r["outcome"] for r in rows} == {"passed"}
    assert all(r["failures"] == 1 and r["recoveries"] == 1 and r["steps"] == 3 for r in rows)


def test_show_episode_and_step(run_dir, capsys):
    path = sorted(run_dir.glob("*.msgpack.zst"))[0]
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "stub-1" in out and "1 failure," in out and "stub-goal@1" in out
    assert main(["show", str(path), "--step", "2", "--state"]) == 0
    out = capsys.readouterr().out
    assert "state diff" in out and "+ files['done']" in out or "files" in out
    assert "recovers" not in out
    assert main(["show", str(path), "--step", "1"]) == 0
    assert "recovers  steps 0" in capsys.readouterr().out


def test_errors_go_to_stderr_with_nonzero_exit(tmp_path, capsys):
    bad = tmp_path / "bad.msgpack.zst"
    bad.write_bytes(b"nope")
    assert main(["show", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "bad.msgpack.zst" in err and "not a trajrec episode" in err
    assert main(["ls", str(tmp_path / "missing")]) == 1
    assert "no such file or folder" in capsys.readouterr().err


def test_fsck_cli(run_dir, capsys):
    assert main(["fsck", str(run_dir)]) == 0
    assert "3 files, 3 ok" in capsys.readouterr().out


def test_console_script_help_and_version():
    out = subprocess.run([sys.executable, "-m", "trajrec", "--help"], capture_output=True, text=True, check=True)
    assert "examples:" in out.stdout and "trajrec ls" in out.stdout
    ver = subprocess.run([sys.executable, "-m", "trajrec", "--version"], capture_output=True, text=True, check=True)
    assert ver.stdout.startswith("trajrec ")
