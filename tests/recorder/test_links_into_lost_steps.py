"""A retry or recovery of a failed step whose record could not be written links to it as lost, never to the step
written next under the number the lost one would have had (FINDINGS33 #5).

The records are kept out by a real file-size limit (RLIMIT_FSIZE) in a child process, lifted again so the
recording goes on (as ``unwritten_run`` in tests/conftest.py). The env: ``get KEY`` fails (``info["error"]``) for
a key never put, ``put KEY`` stores it; the operation (the default action key) is the first word.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trajrec import open_episode

_CHILD = r'''
import json, os, resource, sys
import gymnasium as gym
from trajrec import Recorder, TrajrecIOError

class KV(gym.Env):
    action_space = gym.spaces.Text(100)
    observation_space = gym.spaces.Text(400)
    def reset(self, *, seed=None, options=None):
        self.store = set()
        return "start", {}
    def step(self, a):
        op, key = a.split()
        if op == "put":
            self.store.add(key)
            return "ok " + "x" * 300, 0.0, False, False, {}
        if key not in self.store:
            return "no such key " + "x" * 300, 0.0, False, False, {"error": f"no key {key}"}
        return "value " + "x" * 300, 1.0, False, False, {}

# (action, lost): env steps 2 and 3 cannot be written, as fulldisk2.py in FINDINGS33 #5
plan = [("get a", False), ("put big", False), ("get a", True), ("put big2", True), ("put a", False),
        ("get a", False), ("get nope", False), ("get nope", False)]
env = Recorder(KV(), sys.argv[1])
env.reset(seed=0)
lost = []
for k, (action, lose) in enumerate(plan):
    if lose:  # the disk is full for this step: the file may not grow past what it holds now
        resource.setrlimit(resource.RLIMIT_FSIZE, (env.episode_path.stat().st_size + 16, resource.RLIM_INFINITY))
    try:
        env.step(action)
    except TrajrecIOError:
        lost.append(k)
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
env.close()
print(json.dumps({"lost": lost, "path": str(env.episode_path)}))
'''


@pytest.fixture(scope="module")
def gap_episode(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lostlinks")
    done = subprocess.run([sys.executable, "-c", _CHILD, str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["lost"] == [2, 3], done.stdout  # the limit did bite on those two env steps
    return Path(result["path"])


def test_a_retry_and_recovery_of_a_lost_step_do_not_link_to_the_step_written_next(gap_episode: Path) -> None:
    with open_episode(gap_episode) as ep:
        assert [st.action for st in ep] == ["get a", "put big", "put a", "get a", "get nope", "get nope"]
        assert ep.summary["lost_before"] == [[2, 2]]
        put_a, get_a = ep[2], ep[3]
        # Step 2 (put a) took the number the lost "get a" would have had: nothing links to it.
        assert put_a.failure is None and put_a.retry_of is None and put_a.recovers == []
        # Step 3 retries the lost "get a" and recovers it and step 0: the written one by number, the lost one by
        # its place (lost right before step 2).
        assert get_a.retry_of is None
        assert get_a.recovers == [0]
        assert get_a.lost_links == {"retry_of": 2, "recovers": [2]}
        # After the gap, written steps link by their own numbers.
        assert ep[5].retry_of == 4 and ep[5].lost_links == {}
        # The summary counts the episode as the env played it: the lost "get a" (a retry of 0), step 3 (a retry
        # of the lost one), step 5; one recovery.
        assert ep.summary["retries"] == 3 and ep.summary["recoveries"] == 1 and ep.summary["failures"] == 4


def test_show_and_rule_labels_name_no_step_a_lost_link_does_not_point_at(gap_episode: Path, tmp_path: Path) -> None:
    trajrec = [sys.executable, "-m", "trajrec"]
    shown = subprocess.run([*trajrec, "show", str(gap_episode), "--width", "800"], capture_output=True, text=True,
                           timeout=60)
    assert shown.returncode == 0, shown.stderr
    line = next(ln for ln in shown.stdout.splitlines() if ln.lstrip().startswith("3 "))
    assert "retry of 2" not in line and "recovers 0,2" not in line, line
    assert "recovers 0  retry of a lost step (before step 2)  recovers 1 lost step (before step 2)" in line, line
    step = subprocess.run([*trajrec, "show", str(gap_episode), "--step", "3"], capture_output=True, text=True,
                          timeout=60)
    assert "retry of  step" not in step.stdout and "recovers  steps 0\n" in step.stdout, step.stdout
    # The rule labels follow the record: the recovery names step 0 alone, not step 2 (a successful put).
    run = tmp_path / "run"
    run.mkdir()
    (run / gap_episode.name).write_bytes(gap_episode.read_bytes())
    auto = subprocess.run([*trajrec, "label", "auto", str(run), "--rules"], capture_output=True, text=True, timeout=60)
    assert auto.returncode == 0, auto.stderr
    labels = subprocess.run([*trajrec, "label", "ls", str(run), "--step", "3"], capture_output=True, text=True,
                            timeout=60)
    assert "recovers failed step 0 of the same operation" in labels.stdout, labels.stdout
    assert "0, 2" not in labels.stdout


def test_the_viewer_step_pane_shows_the_links_into_the_gap(gap_episode: Path) -> None:
    from trajrec.tui.step_detail import step_text

    with open_episode(gap_episode) as ep:
        text = step_text(ep[3], len(ep), []).plain
    assert "retry of step" not in text and "recovers step 0" in text, text
    assert "retry of a lost step (before step 2)" in text and "recovers 1 lost step (before step 2)" in text, text
