"""`trajrec report` (a real subprocess) on LLM episodes: a cost no call carried is unknown (`-`, null), never 0, as
`ls` and `show` say; a total over priced and unpriced episodes says which share was priced."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym

from trajrec import Recorder
from trajrec.recorder.model_call import ModelCall


def _episode(out: Path, seed: int, cost: float | None) -> None:
    with Recorder(gym.make("CartPole-v1"), out) as env:
        env.reset(seed=seed)
        env.note(model_call=ModelCall(model="m-x", usage={"prompt_tokens": 100, "completion_tokens": 20},
                                      cost=cost).to_dict())
        env.step(0)


def _report(run: Path, *extra: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "trajrec", "report", str(run), *extra], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_no_priced_call_is_an_unknown_cost(tmp_path):
    _episode(tmp_path, 0, None)
    _episode(tmp_path, 1, None)
    u = json.loads(_report(tmp_path, "--json"))["behaviour"]["usage"]
    assert u["tokens"]["total"] == 240 and u["episodes"] == 2
    assert u["cost"] is None and u["cost_episodes"] == 0 and u["per_episode"]["cost"] is None
    assert [(m["model"], m["cost"]) for m in u["by_model"]] == [("m-x", None)]
    [line] = [x for x in _report(tmp_path).splitlines() if x.strip().startswith("tokens:")]
    assert "cost -; per episode 120.0 tokens, -" in line, line
    assert "cost 0" not in line


def test_a_total_over_some_priced_episodes_says_which_share(tmp_path):
    _episode(tmp_path, 0, 0.25)
    _episode(tmp_path, 1, None)
    u = json.loads(_report(tmp_path, "--json"))["behaviour"]["usage"]
    assert (u["cost"], u["cost_episodes"], u["episodes"]) == (0.25, 1, 2)
    assert u["per_episode"]["cost"] == 0.25  # over the priced episode, not halved by the unknown one
    [row] = u["by_model"]
    assert (row["cost"], row["cost_episodes"], row["episodes"]) == (0.25, 1, 2)
    text = _report(tmp_path)
    [line] = [x for x in text.splitlines() if x.strip().startswith("tokens:")]
    assert "cost $0.25 (priced: 1 of 2 episodes; the rest unknown)" in line, line
