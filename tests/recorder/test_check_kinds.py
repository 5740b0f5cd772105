"""A check an env reports in ``info["checks"]`` with a kind outside the model's three (``env.check`` refuses
those) is kept as an environment check with the given kind beside it, never taken for a model judge's verdict."""

from __future__ import annotations

import json
from typing import Any

import gymnasium as gym
import pytest

from trajrec import Recorder, open_episode
from trajrec.cli import main
from trajrec.recorder.model import normalize_check


class UnitTestEnv(gym.Env):
    observation_space = gym.spaces.Text(100)
    action_space = gym.spaces.Text(100)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return "s", {}

    def step(self, action: str):
        checks = [{"target": "step", "kind": "unit", "judge": "pytest@1", "value": False},
                  {"target": "step", "kind": "rule", "judge": "lint@1", "value": True}]
        return "ran tests", 1.0, True, False, {"checks": checks}


def test_an_unknown_kind_is_kept_beside_an_environment_check(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    env = Recorder(UnitTestEnv(), tmp_path / "run")
    env.reset(seed=0)
    env.step("pytest -q")
    env.close()
    checks = open_episode(env.episode_path)[0].checks
    assert [(c.kind, c.judge, c.value) for c in checks] == [("environment", "pytest@1", False), ("rule", "lint@1", True)]
    assert main(["export", str(tmp_path / "run"), "--format", "chat", "--out", str(tmp_path / "o.jsonl"),
                 "--prefer", "judge"]) == 0
    step = json.loads((tmp_path / "o.jsonl").read_text().splitlines()[0])["trajrec"]["steps"][0]
    assert step["label"] is None  # no model judge labeled this step


@pytest.mark.parametrize("kind", ["unit", 3, "Judge"])
def test_normalize_check_keeps_the_given_kind(kind: object) -> None:
    rec = normalize_check({"value": 1, "kind": kind}, default_target=0)
    assert rec["kind"] == "environment" and rec["kind_given"] == str(kind)
    assert normalize_check({"value": 1, "kind": "judge"}, default_target=0)["kind"] == "judge"
