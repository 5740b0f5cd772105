"""An ATIF trajectory without an agent step (the agent died before its first turn, or `steps: []`) is valid: it
imports as an episode of 0 steps (the prompt its reset), never as "invalid JSON"; trajrec's own atif export of a run
with a zero-step episode imports back whole."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import pytest

from import_helpers import ATIF, import_one
from trajrec import Recorder
from trajrec.cli import main


def _variant(tmp_path: Path, name: str, keep: str) -> Path:
    doc = json.loads(ATIF.read_text())
    doc["steps"] = [s for s in doc["steps"] if s["source"] != "agent"] if keep == "prompt" else []
    assert "final_metrics" in doc or keep == "none"  # a member after the steps: what the old reader ran into
    doc["final_metrics"] = doc.get("final_metrics") or {"total_steps": 0}
    out = tmp_path / name
    out.write_text(json.dumps(doc, indent=1))
    return out


@pytest.mark.parametrize("keep", ["prompt", "none"])
def test_a_trajectory_without_agent_steps_imports_with_zero_steps(keep: str, tmp_path: Path) -> None:
    src = _variant(tmp_path, f"p_{keep}.trajectory.json", keep)
    report, eps = import_one("atif", src, tmp_path / "run")
    assert len(eps) == 1 and len(eps[0]) == 0
    if keep == "prompt":
        first_user = next(s for s in json.loads(src.read_text())["steps"] if s["source"] == "user")
        assert first_user["message"] in str(eps[0].reset.observation)


def test_own_atif_lines_export_with_a_zero_step_episode_round_trips(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "2", "--out", str(run), "--json"]) == 0
    import trajrec.envs  # noqa: F401  (registers the ids)

    env = Recorder(gym.make("trajrec/MathCalc-v0"), run)
    env.reset(seed=5)
    env.close()  # reset, then close: an episode of 0 steps (outcome stopped)
    lines = tmp_path / "all.jsonl"
    assert main(["export", str(run), "--format", "atif", "--out", str(lines)]) == 0
    capsys.readouterr()
    assert main(["import", "atif", str(lines), "--out", str(tmp_path / "back"), "--json"]) == 0, \
        capsys.readouterr().err
    back = sorted((tmp_path / "back").glob("*.msgpack.zst"))
    assert len(back) == len(lines.read_text().splitlines()) == 3
