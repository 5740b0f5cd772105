"""`report` and `ls` (real subprocesses) on a run that `record --resume` left `*.unfinished` files in (FINDINGS33
#11): no row or total counts those episodes, yet their model calls were paid for; both commands say how many such
files there are and what they hold (steps, tokens, cost), and `report --json` carries it as `unfinished`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

from trajrec import Recorder
from trajrec.recorder.model_call import ModelCall
from trajrec.recording import plan_seeds


def _episode(out: Path, seed: int, *, to_the_end: bool) -> None:
    with Recorder(gym.make("CartPole-v1"), out) as env:
        env.reset(seed=seed)
        env.note(model_call=ModelCall(model="m-x", usage={"prompt_tokens": 40, "completion_tokens": 5},
                                      cost=0.015).to_dict())
        done = env.step(0)[2]
        while to_the_end and not done:
            done = env.step(0)[2]


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trajrec", *argv], capture_output=True, text=True, timeout=120)


def test_report_and_ls_say_what_the_unfinished_files_hold(tmp_path):
    _episode(tmp_path, 0, to_the_end=True)
    _episode(tmp_path, 1, to_the_end=False)  # closed as stopped: --resume sets it aside and records seed 1 again
    with pytest.warns(UserWarning, match="did not end"):
        todo, _ = plan_seeds(str(tmp_path), "CartPole-v1", [0, 1], resume=True)
    assert todo == [1] and len(list(tmp_path.glob("*.unfinished"))) == 1
    expected = ("1 unfinished file (*.unfinished: episodes cut short, recorded again by `record --resume`) not "
                "counted here: 1 step, 1 call, 45 tokens (40 in / 5 out)")
    for argv in (["report", str(tmp_path)], ["ls", str(tmp_path)], ["ls", str(tmp_path), "--where", "passed"]):
        proc = _run(*argv)
        assert proc.returncode == 0, proc.stderr
        assert expected in proc.stderr and "$0.015" in proc.stderr, (argv, proc.stderr)
    proc = _run("report", str(tmp_path), "--json")
    unfinished = json.loads(proc.stdout)["unfinished"]
    assert (unfinished["files"], unfinished["steps"]) == (1, 1)
    assert unfinished["model"]["total_tokens"] == 45 and abs(unfinished["model"]["cost"] - 0.015) < 1e-12
    assert json.loads(proc.stdout)["behaviour"]["usage"]["tokens"]["total"] == 45  # the run's own episode alone


def test_nothing_is_said_without_unfinished_files(tmp_path):
    _episode(tmp_path, 0, to_the_end=True)
    for argv in (["report", str(tmp_path)], ["ls", str(tmp_path)]):
        assert "unfinished" not in _run(*argv).stderr
    assert "unfinished" not in json.loads(_run("report", str(tmp_path), "--json").stdout)
