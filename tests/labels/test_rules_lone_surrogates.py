"""Rule labels of an episode whose failure message, check rationale or judge holds lone surrogates (tool output
decoded with surrogateescape): `label auto --rules` refused the rationale and stopped the whole run."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym

from trajrec import Recorder
from trajrec.cli import main
from trajrec.replay.labels import LabelStore

BAD = "cat: caf\udce9.txt: no such file"


class _Tool(gym.Env):
    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.k = 0
        return 0, {}

    def step(self, action):
        self.k += 1
        info = {"error": BAD} if self.k == 1 else {}
        return 0, 0.0, self.k == 2, False, info


def test_rules_label_an_episode_with_lone_surrogates(tmp_path: Path) -> None:
    env = Recorder(_Tool(), tmp_path / "run")
    env.reset(seed=0)
    env.step(0)
    env.step(1)
    env.check(False, judge="tests@1", target="episode", rationale="output: \udcff\udcfe")
    env.close()
    assert main(["label", "auto", str(tmp_path / "run"), "--rules"]) == 0
    labels = {lab.target: lab for lab in LabelStore(tmp_path / "run").current()}
    assert set(labels) == {0, 1, "episode"}
    assert labels[0].value == -1 and "caf\\udce9.txt" in labels[0].rationale
    assert labels["episode"].rationale.endswith("output: \\udcff\\udcfe")
    for lab in labels.values():
        lab.rationale.encode("utf-8")  # UTF-8 text, as a labels file holds
