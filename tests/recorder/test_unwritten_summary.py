"""A step the env took whose write failed still counts in the summary as the env returned it (FINDINGS29 #2).

The records are kept out by a real file-size limit (RLIMIT_FSIZE) in a child process, as a full disk would, and
lifted again so the recording goes on (as ``unwritten_run`` in tests/conftest.py). The summary's ``steps`` counts
the written steps and ``lost_steps`` the others; ``return``, ``failures``, the end flags and the outcome count every
step the env took.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trajrec import open_episode
from trajrec.replay.run import open_run

# Step k (1-based) gives reward k; the steps named in "error" set info["error"], those in "raise" raise ValueError,
# those in "lose" are the ones whose write the file-size limit refuses. The episode terminates at step "end".
_CHILD = r'''
import json, os, resource, sys
import gymnasium as gym
from trajrec import Recorder, TrajrecIOError

class E(gym.Env):
    action_space = gym.spaces.Text(100)
    observation_space = gym.spaces.Text(400)
    def __init__(self, spec):
        self.plan = spec
    def reset(self, *, seed=None, options=None):
        self.t = 0
        return "start", {}
    def step(self, a):
        self.t += 1
        if self.t in self.plan["raise"]:
            raise ValueError(f"env failed at {self.t}")
        info = {"error": "boom"} if self.t in self.plan["error"] else {}
        return f"obs {self.t} " + "x" * 300, float(self.t), self.t == self.plan["end"], False, info

out = {}
for name, spec in json.loads(sys.argv[2]).items():
    env = Recorder(E(spec), sys.argv[1])
    env.reset(seed=0)
    lost = []
    for k in range(1, spec["steps"] + 1):
        if k in spec["lose"]:  # the disk is full for this step: the file may not grow past what it holds now
            resource.setrlimit(resource.RLIMIT_FSIZE, (env.episode_path.stat().st_size + 16, resource.RLIM_INFINITY))
        try:
            env.step(f"a{k}")
        except TrajrecIOError:
            lost.append(k)
        except ValueError:
            pass
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    env.reset(seed=1)  # a new episode: the lost steps' episode is closed by reset, as an agent's loop does
    env.close()
    os.rename(env.episode_paths[0], os.path.join(sys.argv[1], name + ".msgpack.zst"))
    os.remove(env.episode_paths[1])
    out[name] = lost
print(json.dumps(out))
'''

_SPECS = {
    # The terminating step's write fails: the episode still ended as the env said.
    "endlost": {"steps": 3, "end": 3, "lose": [3], "error": [], "raise": []},
    # A failed tool call (info["error"]) whose write fails, in the middle.
    "failedlost": {"steps": 5, "end": 5, "lose": [3], "error": [3], "raise": []},
    # The env raises at step 2 and recording that failed step fails too.
    "raisedlost": {"steps": 3, "end": 3, "lose": [2], "error": [], "raise": [2]},
}


@pytest.fixture(scope="module")
def lost_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lostsummary")
    done = subprocess.run([sys.executable, "-c", _CHILD, str(out), json.dumps(_SPECS)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"endlost": [3], "failedlost": [3], "raisedlost": []}, done.stdout
    return out


def _summary(run: Path, name: str) -> dict:
    with open_episode(run / f"{name}.msgpack.zst") as ep:
        assert ep.summary["lost_steps"] == 1  # the limit did bite on the named step
        return dict(ep.summary)


def test_a_lost_terminating_step_ends_the_episode_as_the_env_said(lost_run: Path) -> None:
    s = _summary(lost_run, "endlost")
    assert s["outcome"] == "terminated" and s["terminated"] is True and s["truncated"] is False
    assert s["steps"] == 2 and s["return"] == 1.0 + 2.0 + 3.0  # the lost step's reward 3 is in the return
    with open_episode(lost_run / "endlost.msgpack.zst") as ep:
        assert [s.reward for s in ep] == [1.0, 2.0]  # only the written steps are in the file
        assert [(g.first, g.n) for g in ep.gaps] == [(2, 1)]


def test_a_lost_steps_failure_and_reward_count_in_the_summary(lost_run: Path) -> None:
    s = _summary(lost_run, "failedlost")
    assert s["failures"] == 1 and s["outcome"] == "terminated"
    assert s["steps"] == 4 and s["return"] == float(sum(range(1, 6)))
    with open_episode(lost_run / "failedlost.msgpack.zst") as ep:
        assert [st.failure for st in ep] == [None] * 4  # the failed step itself is not in the file
    # Readers of the summary see the failure: the filter grammar and the run's listing.
    run = open_run(lost_run)
    names = sorted(Path(e.path).name for e in run.where("failures>0").entries)
    assert names == ["failedlost.msgpack.zst", "raisedlost.msgpack.zst"]


def test_a_lost_step_that_raised_makes_the_episode_an_error(lost_run: Path) -> None:
    s = _summary(lost_run, "raisedlost")
    assert s["failures"] == 1 and s["outcome"] == "error" and "step 1 raised ValueError" in s["error"]
    assert s["steps"] == 2 and s["return"] == 1.0 + 3.0  # the step that raised returned no reward
