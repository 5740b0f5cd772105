"""The command line as a new user meets it (issue 16): `ls --where/--sort` and its summary line, `show --json`
as JSON lines, `show` options and numbers, `record` into a folder that holds episodes (refused, --resume,
--overwrite), `record` errors, the solved line without checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from trajrec.cli import main
from trajrec.recorder import SUFFIX, open_episode
from trajrec.replay.render import number_text, value_text

SAMPLE_RUNS = Path(__file__).resolve().parents[2] / "sample_runs"


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    # A copy: ls writes its summary cache into the folders it lists.
    return Path(shutil.copytree(SAMPLE_RUNS, tmp_path / "runs"))


def _ls_json(capsys: pytest.CaptureFixture, *argv: str) -> list[dict]:  # type: ignore[type-arg]
    assert main(["ls", *argv, "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_ls_where_and_sort(runs: Path, capsys: pytest.CaptureFixture) -> None:
    every = _ls_json(capsys, str(runs))
    assert len(every) == len(list(runs.rglob(f"*{SUFFIX}")))
    failed = _ls_json(capsys, str(runs), "--where", "failed")
    assert failed and {r["outcome"] for r in failed} == {"failed"}
    assert len(failed) == sum(r["outcome"] == "failed" for r in every)
    faulty_shell = _ls_json(capsys, str(runs), "--where", "faulty", "--where", "env:shell")
    assert [r["episode_id"] for r in faulty_shell] == [r["episode_id"] for r in every
                                                        if r["failures"] > 0 and r["env_id"] == "trajrec/Shell-v0"]
    by_steps = _ls_json(capsys, str(runs), "--sort", "steps")
    assert [r["steps"] for r in by_steps] == sorted(r["steps"] for r in every)
    down = _ls_json(capsys, str(runs), "--sort=-steps")
    assert [r["steps"] for r in down] == sorted((r["steps"] for r in every), reverse=True)
    assert _ls_json(capsys, str(runs), "--sort", "steps", "--reverse") == down


def test_ls_summary_line_and_errors(runs: Path, capsys: pytest.CaptureFixture) -> None:
    every = _ls_json(capsys, str(runs))
    assert main(["ls", str(runs), "--where", "failed"]) == 0
    out, err = capsys.readouterr()
    failed = [r for r in every if r["outcome"] == "failed"]
    steps = sum(r["steps"] for r in failed)
    assert err.strip().startswith(f"{len(failed)} episodes (of {len(every)}), {steps} steps: {len(failed)} failed")
    assert len(out.splitlines()) == 1 + len(failed)
    assert main(["ls", str(runs), "--where", "evn:shell"]) == 1
    assert "unknown field 'evn' (did you mean 'env'?)" in capsys.readouterr().err
    assert main(["ls", str(runs), "--sort", "retrun"]) == 1
    assert "--sort 'retrun': no such column (did you mean 'return'?)" in capsys.readouterr().err


def test_show_json_streams_one_line_per_step(runs: Path, capsys: pytest.CaptureFixture) -> None:
    path = sorted(runs.rglob(f"*{SUFFIX}"))[0]
    assert main(["show", str(path), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    with open_episode(path) as ep:
        assert lines[0]["type"] == "episode" and lines[0]["header"]["episode_id"] == ep.episode_id
        steps = lines[1:]
        assert [s["type"] for s in steps] == ["step"] * len(ep)
        assert [s["index"] for s in steps] == list(range(len(ep)))
        assert [s["action"] for s in steps] == [st.action for st in ep]
    assert main(["show", str(path), "--json", "--step", "-1", "--state"]) == 0
    last = json.loads(capsys.readouterr().out)
    assert last["index"] == len(steps) - 1 and "state" in last


def test_show_options_and_width(runs: Path, capsys: pytest.CaptureFixture) -> None:
    path = next(p for p in sorted(runs.rglob(f"*{SUFFIX}")) if any(st.failure for st in open_episode(p)))
    assert main(["show", str(path), "--state"]) == 1
    assert "--state prints the state after one step: add --step N" in capsys.readouterr().err
    assert main(["show", str(path), "--width", "60"]) == 0
    out = capsys.readouterr().out
    step_lines = out.split("\n\n", 1)[1].splitlines()
    assert step_lines and all(len(line) <= 60 for line in step_lines)
    assert any("tool_error" in line or "exception" in line for line in step_lines)
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    agent = open_episode(path).provenance["agent"]
    agent_line = next(line for line in out.splitlines() if line.startswith("agent"))
    assert all(str(v) in agent_line for v in agent.values() if v is not None)  # whole, not cut
    assert "None" not in out


def test_numbers_read_as_numbers(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert value_text(np.int64(0)) == "0" and value_text(np.float64(-2.5)) == "-2.5"
    assert number_text(-1070.25) == "-1070.25" and number_text(np.float32(0.5)) == "0.5"
    out = tmp_path / "cp"
    assert main(["record", "CartPole-v1", "--agent", "random", "--episodes", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    path = next(out.glob(f"*{SUFFIX}"))
    assert main(["show", str(path), "--step", "0"]) == 0
    text = capsys.readouterr().out
    assert "np." not in text and "reward    1 " in text
    assert main(["show", str(path)]) == 0
    assert "np." not in capsys.readouterr().out


def test_record_into_a_folder_with_episodes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "math"
    base = ["record", "trajrec/MathCalc-v0", "--out", str(out)]
    assert main([*base, "--episodes", "3"]) == 0
    capsys.readouterr()
    assert main([*base, "--episodes", "3"]) == 1  # would add duplicates
    err = capsys.readouterr().err
    assert "already holds 3 episode files" in err and "--resume" in err and "--overwrite" in err
    assert len(list(out.glob(f"*{SUFFIX}"))) == 3
    assert main([*base, "--episodes", "5", "--resume", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["episodes"] == 2 and summary["skipped"] == 3
    seeds = sorted(open_episode(p).task["seed"] for p in out.glob(f"*{SUFFIX}"))
    assert seeds == [0, 1, 2, 3, 4]
    assert main([*base, "--episodes", "2", "--seed", "10", "--overwrite"]) == 0
    seeds = sorted(open_episode(p).task["seed"] for p in out.glob(f"*{SUFFIX}"))
    assert seeds == [10, 11]
    assert "recorded 2 episodes" in capsys.readouterr().out


def test_demo_twice_reopens_the_same_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    demo = tmp_path / "demo"
    assert main(["demo", str(demo), "--episodes", "1", "--no-view"]) == 0
    first = sorted(p.name for p in demo.rglob(f"*{SUFFIX}"))
    capsys.readouterr()
    # The demo resumes by default: the same seeds are not recorded twice.
    assert main(["demo", str(demo), "--episodes", "1", "--no-view"]) == 0
    assert sorted(p.name for p in demo.rglob(f"*{SUFFIX}")) == first
    assert f"nothing new to record: the demo in {demo} already holds 4 episodes" in capsys.readouterr().out
    assert main(["demo", str(demo), "--episodes", "2", "--no-view"]) == 0  # one more seed per env
    assert len(list(demo.rglob(f"*{SUFFIX}"))) == 8
    assert main(["demo", str(demo), "--episodes", "1", "--no-view", "--overwrite"]) == 0
    assert len(list(demo.rglob(f"*{SUFFIX}"))) == 4


def test_record_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases = [
        (["--kwarg", "nope=3"], "with the --kwarg values given (nope=3): ShellEnv.__init__() got an unexpected "
                                "keyword argument 'nope'"),
        (["--out", str(afile)], f"--out {afile}: a file has that name"),
        (["--out", str(afile / "sub")], f"--out {afile / 'sub'}: cannot create the folder"),
    ]
    for extra, message in cases:
        argv = ["record", "trajrec/Shell-v0", "--episodes", "1", "--out", str(tmp_path / "ok"), *extra]
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert main(["record", "trajrec/Shel-v0", "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert err.count("did you mean") == 1 and "'trajrec/Shell-v0'" in err and "MathCalc" not in err


def test_solved_line_without_checks(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["record", "CartPole-v1", "--agent", "random", "--episodes", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "solved       - (no terminal check" in out and "0/2" not in out
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "2", "--out", str(tmp_path / "m"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["judged"] == 2 and summary["solved_rate"] == summary["solved"] / 2


def test_fsck_suggests_repair_only_for_what_it_can_repair(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # Issue 16, item 20: a file that is no episode got "run with --repair", which does nothing for it.
    import subprocess
    import sys

    (tmp_path / "junk.msgpack.zst").write_bytes(b"not an episode")
    assert main(["fsck", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "BAD" in out and "--repair" not in out
    # A writer killed before close: no index, which --repair rebuilds.
    code = ("import os, gymnasium as gym; from trajrec.recorder import Recorder\n"
            f"env = Recorder(gym.make('CartPole-v1'), {str(tmp_path / 'live')!r}); env.reset(seed=0)\n"
            "[env.step(0) for _ in range(3)]\nos._exit(0)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert main(["fsck", str(tmp_path)]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "2 files, 0 ok, 2 with problems, run with --repair to fix 1"


def test_demo_says_how_to_reopen_the_viewer_after_quitting(tmp_path: Path) -> None:
    # Issue 16, item 22: in a real terminal (a pty), quit the demo's viewer with q; the last line says how to
    # open it again.
    import os
    import pty
    import select
    import subprocess
    import sys
    import time

    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
    proc = subprocess.Popen([sys.executable, "-m", "trajrec", "demo", str(tmp_path / "demo"), "--episodes", "1"],
                            stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    out = b""

    def read_for(seconds: float) -> None:
        nonlocal out
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                out += chunk

    try:
        deadline = time.monotonic() + 90
        while b"episodes" not in out.split(b"into", 1)[-1] and time.monotonic() < deadline:
            read_for(0.5)
            if b"\x1b[?1049h" in out:  # the viewer switched to the alternate screen
                break
        end = time.monotonic() + 3.0
        while time.monotonic() < end:  # let the library draw: until it has drawn nothing for 0.3 s
            drawn = len(out)
            read_for(0.3)
            if len(out) == drawn:
                break
        os.write(master, b"q")
        proc.wait(timeout=30)
        read_for(0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = out.decode("utf-8", "replace")
    assert proc.returncode == 0
    tail = text.rsplit("\x1b[?1049l", 1)[-1]  # after the viewer left the alternate screen
    assert f"reopen it:  trajrec view {tmp_path / 'demo'}" in tail


def _echo_env():  # type: ignore[no-untyped-def]
    """A tool env whose observations (and state) echo the action: the recorded text is whatever the test sends."""
    import gymnasium as gym

    class Echo(gym.Env):
        observation_space = gym.spaces.Text(max_length=1000)
        action_space = gym.spaces.Text(max_length=1000)
        last = ""

        def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
            super().reset(seed=seed)
            return "ready", {"task": {"id": "t\x9b1", "text": "goal \u202eevil"}}

        def step(self, action):  # type: ignore[no-untyped-def]
            self.last = action
            return f"echo {action}", 0.0, action == "submit", False, {}

        def state_dict(self):  # type: ignore[no-untyped-def]
            return {"last": self.last}

    return Echo()


def test_show_json_escapes_control_characters(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """C1 controls and bidi overrides of recorded text come out as \\u escapes: valid JSON, the same values."""
    from trajrec.recorder import Recorder

    hostile = "cat \x9b31m\u202eevil\u2028\x7f"
    env = Recorder(_echo_env(), tmp_path / "run")
    env.reset(seed=0)
    env.step(hostile)
    env.step("submit")
    env.close()
    path = next((tmp_path / "run").glob(f"*{SUFFIX}"))
    for argv in (["--json"], ["--json", "--step", "0"], ["--json", "--step", "0", "--state"]):
        assert main(["show", str(path), *argv]) == 0
        out = capsys.readouterr().out
        assert not any(c in out for c in "\x9b\u202e\u2028\x7f"), argv
        rows = [json.loads(line) for line in out.splitlines()]
        step = next(r for r in rows if r["type"] == "step")
        assert step["action"] == hostile and step["observation"] == f"echo {hostile}"
        if argv == ["--json"]:
            assert rows[0]["header"]["task"]["text"] == "goal \u202eevil"
        if "--state" in argv:
            assert step["state"] == {"last": hostile}
