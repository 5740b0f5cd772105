"""An ATIF trajectory with no agent step (the agent died before its first turn, or ``steps: []``) is valid ATIF: it
imports as an episode of 0 steps whose reset holds the prompt, in a document and in a lines file, and trajrec's own
export of a zero-step episode imports back. (The step reader used to read past the end of ``steps`` and report
valid JSON as broken.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from import_helpers import ATIF, import_one

from trajrec import Recorder, open_episode
from trajrec.cli import main


def _without_agent(steps: str) -> dict[str, Any]:
    doc = json.loads(ATIF.read_text())
    doc["steps"] = [] if steps == "none" else [s for s in doc["steps"] if s["source"] != "agent"]
    assert "final_metrics" in doc  # a member after steps: what the reader ran into
    return doc


@pytest.mark.parametrize("steps", ["prompt only", "none"])
def test_a_trajectory_without_agent_steps_imports_as_zero_steps(tmp_path: Path, steps: str) -> None:
    doc = _without_agent(steps)
    path = tmp_path / "t.trajectory.json"
    path.write_text(json.dumps(doc, indent=1))
    _, [ep] = import_one("atif", path, tmp_path / "run")
    assert len(ep) == 0 and ep.summary["outcome"] == "stopped"
    users = [s["message"] for s in doc["steps"] if s["source"] == "user"]
    assert ep.header["task"]["text"] == (users[0] if users else None)
    if users:
        assert users[0] in ep.reset.observation


def test_a_lines_file_with_zero_step_trajectories_imports_every_line(tmp_path: Path) -> None:
    full = json.loads(ATIF.read_text())
    lines = tmp_path / "t.jsonl"
    lines.write_text("".join(json.dumps(d) + "\n" for d in (full, _without_agent("none"), _without_agent("prompt only"))))
    report, eps = import_one("atif", lines, tmp_path / "run")
    assert sorted(len(ep) for ep in eps) == [0, 0, sum(s["source"] == "agent" for s in full["steps"])]


class _Env:
    def reset(self, *, seed: Any = None, options: Any = None) -> tuple[str, dict[str, Any]]:
        return "fix the bug", {}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        return f"ran {action}", 1.0, action == "submit", False, {}


def test_export_then_import_round_trips_a_zero_step_episode(tmp_path: Path) -> None:
    run = tmp_path / "run"
    env = Recorder(_Env(), run)
    env.reset(seed=0)
    env.step("ls")
    env.step("submit")
    env.close()
    env = Recorder(_Env(), run)
    env.reset(seed=1)
    env.close()  # reset, then closed: 0 steps, outcome stopped
    assert main(["export", str(run), "--format", "atif", "--out", str(tmp_path / "a.jsonl")]) == 0
    assert main(["import", "atif", str(tmp_path / "a.jsonl"), "--out", str(tmp_path / "back")]) == 0
    before = sorted((len(open_episode(p)), open_episode(p).summary["outcome"]) for p in run.glob("*.msgpack.zst"))
    after = sorted((len(open_episode(p)), open_episode(p).summary["outcome"])
                   for p in (tmp_path / "back").rglob("*.msgpack.zst"))
    assert before == after == [(0, "stopped"), (2, "terminated")]
