"""The rules' terminal-failure label when the episode's terminal step is not in the file (FINDINGS30 #4)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from trajrec import open_episode
from trajrec.replay.autolabel import rule_proposals

# A MathCalc episode whose final submit (a wrong answer: the terminal check fails) could not be written: a real
# file-size limit in a child process, as a full disk does it.
_LOSE_SUBMIT = r'''
import os, resource, sys
import gymnasium as gym
import trajrec.envs
from trajrec import Recorder
env = Recorder(gym.make("trajrec/MathCalc-v0"), sys.argv[1])
env.reset(seed=102)
actions = ['{"tool":"calc","args":{"expr":"1+1"}}'] * 3 + ['{"tool":"submit","args":{"answer":"-987654.25"}}']
for i, a in enumerate(actions):
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    if i == 3:
        resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(env.episode_path), hard))
    try:
        env.step(a)
    except Exception as e:
        print("lost", i)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
env.close()
'''


def test_no_written_step_is_labeled_terminal_failure_when_the_terminal_step_was_lost(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _LOSE_SUBMIT, str(tmp_path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["lost", "3"], done.stdout  # the limit did bite the submit
    ep = open_episode(next(tmp_path.glob("*.msgpack.zst")))
    assert ep.summary.get("outcome") == "failed"
    assert [(g.first, g.numbered) for g in ep.gaps] == [(len(ep), False)]
    steps = {p.target: p for p in rule_proposals(ep) if p.target != "episode"}
    assert sorted(steps) == list(range(len(ep)))
    assert not any("terminal-failure" in p.tags for p in steps.values())
    last = steps[len(ep) - 1]
    assert last.value == 0 and "terminal step was lost" in last.rationale
    episode = [p for p in rule_proposals(ep) if p.target == "episode"]
    assert [p.value for p in episode] == [-1]  # the verdict still stands: the env said it failed
    # Its check record went with the step; the summary still names the judge (FINDINGS31 #6: "terminal check
    # terminal check failed").
    judge = ep.summary["checks"]["terminal_judge"]
    assert judge and episode[0].rationale == f"terminal check {judge} failed"


def test_the_last_readable_step_says_the_terminal_step_was_lost_to_damage(tmp_path: Path) -> None:
    """Damage that took the steps to the end (repaired: the steps keep their numbers) is a lost terminal step
    too: the last step the file still holds gets the documented reason (FINDINGS31 #6)."""
    import gymnasium as gym

    import trajrec.envs  # noqa: F401  (registers trajrec/MathCalc-v0)
    from trajrec import Recorder
    from damage import break_frame

    from trajrec.recorder import fsck, read_index

    env = Recorder(gym.make("trajrec/MathCalc-v0"), tmp_path / "rec", frame_steps=2)
    env.reset(seed=102)
    for a in ['{"tool":"calc","args":{"expr":"1+1"}}'] * 3 + ['{"tool":"submit","args":{"answer":"-987654.25"}}']:
        env.step(a)
    env.close()
    path = env.episode_path
    with open_episode(path) as ep:
        assert ep.summary["outcome"] == "failed" and len(ep) == 4
    break_frame(path, read_index(path)["frames"][1])  # steps 2 and 3, the submit among them
    fsck(path, repair=True)
    ep = open_episode(path)
    assert ep.lost == [(2, 2)]
    steps = {p.target: p for p in rule_proposals(ep) if p.target != "episode"}
    assert sorted(steps) == [0, 1] and not any("terminal-failure" in p.tags for p in steps.values())
    assert "terminal step was lost" in steps[1].rationale and "terminal step was lost" not in steps[0].rationale
