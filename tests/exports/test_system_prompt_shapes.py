"""A system prompt that is not plain text (FINDINGS22 #8): OpenAI content parts are joined as the importers join
them, a blank prompt is none, any other value is warned about once naming the episode (never dropped silently).
Recorded with the real Recorder; exported with the real chat, atif and trl-stepwise formats."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

from trajrec.recorder import Recorder
from trajrec.replay.exports import ExportOptions, export

PROMPTS = {"parts": [{"type": "text", "text": "You are SYS."}, {"type": "image", "url": "x"},
                     {"type": "text", "text": "Be brief."}],
           "blank": "   ", "number": 5, "text": "Plain."}


class OneStep(gym.Env):
    observation_space = gym.spaces.Text(100)
    action_space = gym.spaces.Text(100)

    def __init__(self, system: Any) -> None:
        self.system = system

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return "Task: do it", {"system": self.system}

    def step(self, action: Any):
        return "ok", 0.0, True, False, {}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("sys") / "run"
    for name, system in PROMPTS.items():
        env = Recorder(OneStep(system), run, task={"id": name})
        env.reset(seed=0)
        env.step("done")
        env.close()
    return run


def _export(run: Path, fmt: str, out: Path, **opts: Any) -> tuple[list[dict[str, Any]], list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export([run], fmt, out, options=ExportOptions(**opts))
    return [json.loads(line) for line in out.read_text().splitlines()], [str(w.message) for w in caught]


def test_system_prompt_shapes(run: Path, tmp_path: Path) -> None:
    rows, said = _export(run, "chat", tmp_path / "c.jsonl")
    system = {r["trajrec"]["task_id"].split("/")[-1]: [m["content"] for m in r["messages"] if m["role"] == "system"]
              for r in rows}
    assert system == {"parts": ["You are SYS.\nBe brief."], "blank": [], "number": [], "text": ["Plain."]}
    odd = [w for w in said if "system prompt that is not text" in w]
    assert len(odd) == 1 and "(5)" in odd[0]
    episode = next(r["trajrec"]["episode_id"] for r in rows if r["trajrec"]["task_id"].endswith("number"))
    assert episode in odd[0]
    rows, _ = _export(run, "atif", tmp_path / "a.jsonl")
    steps = {r["extra"]["trajrec"]["task"]["id"].split("/")[-1]: [s["message"] for s in r["steps"]
                                                                   if s["source"] == "system"] for r in rows}
    assert steps == system
    rows, _ = _export(run, "trl-stepwise", tmp_path / "t.jsonl", unlabeled="false")
    prompts = sorted(r["prompt"] for r in rows)
    assert prompts == sorted(["You are SYS.\nBe brief.\n\nTask: do it", "Task: do it", "Task: do it",
                              "Plain.\n\nTask: do it"])
