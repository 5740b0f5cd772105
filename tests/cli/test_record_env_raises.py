"""`trajrec record` of an env that raises (FINDINGS33 #3): the exception ends that episode as `error` (recorded by
the Recorder), recording goes on with the next seeds, and the command exits 1 with one line per failed seed;
`--resume` keeps such an episode (it ended) unless `--retry-errors`; every file is closed with its index, also in
worker processes. Real subprocesses run from the folder holding the env's module."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trajrec.recorder import SUFFIX, open_episode, read_index

MODULE = '''
import os

import gymnasium as gym
from gymnasium import spaces


class AgentBugSpace(spaces.Discrete):
    """The random agent samples this: it raises for the seed in $DIVIDER_AGENT_BUG (the agent's code failing)."""
    fail = False

    def sample(self, *args, **kwargs):
        if self.fail:
            raise RuntimeError("agent bug")
        return super().sample(*args, **kwargs)


class Divider(gym.Env):
    """Divides by (seed - FAIL) at its first step: the env raises ZeroDivisionError for seed FAIL, ends after 2."""

    def __init__(self, fail=1):
        self.observation_space = spaces.Discrete(10)
        self.action_space = AgentBugSpace(2)
        self.fail = fail

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.seed_, self.n = seed, 0
        self.action_space.fail = str(seed) == os.environ.get("DIVIDER_AGENT_BUG")
        return 0, {}

    def step(self, action):
        self.n += 1
        value = 1 / (self.seed_ - self.fail)
        return self.n, float(value), self.n == 2, False, {}


gym.register("Divider-v0", entry_point=Divider)
'''


def _record(folder: Path, *argv: str, agent_bug: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["DIVIDER_AGENT_BUG"] = agent_bug
    return subprocess.run([sys.executable, "-m", "trajrec", "record", "divider:Divider-v0", "--agent", "random",
                           "--out", "runs/d", *argv], cwd=folder, capture_output=True, text=True, timeout=180, env=env)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    (tmp_path / "divider.py").write_text(MODULE)
    return tmp_path


def _episodes(folder: Path) -> dict[int, tuple[str, dict]]:
    """seed -> (outcome, index) of every episode file in runs/d, each checked to have a sound index."""
    out = {}
    for path in sorted((folder / "runs" / "d").glob(f"*{SUFFIX}")):
        index = read_index(str(path))
        assert index.get("complete"), f"{path.name} has no index: its writer did not close it"
        seed = index["header"]["task"]["seed"]
        assert seed not in out, f"seed {seed} recorded twice"
        out[seed] = (index["summary"]["outcome"], index)
    return out


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_env_exception_ends_its_episode_and_recording_goes_on(folder, workers):
    proc = _record(folder, "--episodes", "4", "--workers", workers)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    found = _episodes(folder)
    assert sorted(found) == [0, 1, 2, 3]  # the seeds after the failing one were recorded
    assert {seed: outcome for seed, (outcome, _) in found.items()} == {0: "terminated", 1: "error",
                                                                       2: "terminated", 3: "terminated"}
    (path,) = [p for p in (folder / "runs" / "d").glob(f"*{SUFFIX}")
               if read_index(str(p))["header"]["task"]["seed"] == 1]
    with open_episode(path) as ep:
        assert ep[0].failure.kind == "exception" and ep[0].failure.type == "ZeroDivisionError"
    lines = proc.stderr.strip().splitlines()
    # One line per failed seed, naming the seed, the file and the exception's one line; then what to do.
    (line,) = [x for x in lines if x.startswith("trajrec record: seed ")]
    assert line.startswith("trajrec record: seed 1: env step 0 raised ZeroDivisionError: division by zero"), line
    assert str(Path("runs/d") / path.name) in line, line
    assert lines[-1].startswith("trajrec record: error: the env raised in 1 of 4 episodes"), lines[-1]
    assert "--retry-errors" in lines[-1]


def test_resume_keeps_an_episode_the_env_ended_unless_asked(folder):
    assert _record(folder, "--episodes", "3").returncode == 1
    first = _episodes(folder)
    # --resume: seed 1 ended (the env raised); it is data, not recorded again: only seed 3 is new.
    proc = _record(folder, "--episodes", "4", "--resume")
    assert proc.returncode == 0, proc.stderr
    assert "1 of the seeds skipped ended with the env raising (outcome error: 1)" in proc.stderr, proc.stderr
    found = _episodes(folder)
    assert sorted(found) == [0, 1, 2, 3]
    assert found[1][1]["header"]["episode_id"] == first[1][1]["header"]["episode_id"]
    assert not list((folder / "runs" / "d").glob("*.unfinished"))
    # --retry-errors: seed 1 is recorded again (the env still raises), the old file kept as *.unfinished.
    proc = _record(folder, "--episodes", "4", "--resume", "--retry-errors")
    assert proc.returncode == 1, proc.stderr
    assert "trajrec record: seed 1: env step 0 raised ZeroDivisionError" in proc.stderr, proc.stderr
    found = _episodes(folder)
    assert found[1][0] == "error" and found[1][1]["header"]["episode_id"] != first[1][1]["header"]["episode_id"]
    (old,) = (folder / "runs" / "d").glob("*.unfinished")
    assert old.name.startswith(first[1][1]["header"]["episode_id"])


def test_retry_errors_needs_resume(folder):
    proc = _record(folder, "--episodes", "2", "--retry-errors")
    assert proc.returncode != 0 and "--retry-errors only applies with --resume" in proc.stderr, proc.stderr
    assert not (folder / "runs" / "d").exists()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_agent_exception_stops_the_command_with_every_file_closed(folder, workers):
    # The agent's own code raising is not data: the command stops, but the episode it was in is closed first (as
    # error, naming the exception), also in a worker process that then goes idle: a worker ended by the pool's
    # stop while idle left such an episode without its index.
    proc = _record(folder, "--seed", "2", "--episodes", "2", "--workers", workers, agent_bug="2")
    assert proc.returncode != 0 and "RuntimeError: agent bug" in proc.stderr, proc.stderr
    found = _episodes(folder)
    outcome, index = found[2]
    assert outcome == "error" and "RuntimeError: agent bug" in index["summary"]["agent_error"]["message"]
    # --resume records the agent's failed seed again (once the agent is fixed): it is not the env's doing.
    proc = _record(folder, "--seed", "2", "--episodes", "2", "--resume")
    assert proc.returncode == 0, proc.stderr
    assert {seed: outcome for seed, (outcome, _) in _episodes(folder).items()} == {2: "terminated", 3: "terminated"}
