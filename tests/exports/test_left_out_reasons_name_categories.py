""""Left out" reasons say what is true when the preferred label is a category (FINDINGS32 #8).

kto said "no terminal verdict and no episode label" for an episode with two episode labels (the newest a
category), and trl-stepwise "an unlabeled step" for steps every judge had labeled (a person's category first).
Now the reason names the category, the first episode shows where (step, judge, value, the judges that rated it),
and the hint says what would help (`--prefer`, a rating); `--json` carries the same in `examples`.
"""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import pytest

from trajrec import Recorder, open_episode
from trajrec.cli import main


class _Cut(gym.Env):
    """Cut short after one step: truncated, no verdict."""

    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        super().reset(seed=seed)
        return "count to 3", {"task": {"id": "count-1", "text": "count to 3"}}

    def step(self, action):  # type: ignore[no-untyped-def]
        return "1", 0.0, False, True, {}


def _json_report(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out.splitlines()[-1])


def test_trl_stepwise_names_the_category_of_a_labeled_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["record", "trajrec/Shell-v0", "--episodes", "1", "--out", str(out), "--json"]) == 0
    assert main(["label", "auto", str(out), "--rules"]) == 0
    eid = open_episode(next(out.glob("*.msgpack.zst"))).episode_id
    assert main(["label", "add", str(out), "--episode", eid, "--step", "1", "--value", "wrong-tool",
                 "--annotator", "ana"]) == 0
    capsys.readouterr()
    argv = ["export", str(out), "--format", "trl-stepwise", "--out", str(tmp_path / "prm.jsonl")]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "an unlabeled step" not in err  # every step is labeled
    reason = "a step whose preferred label is a category (no rating; --unlabeled skip-episode)"
    assert f"): {reason}\n      e.g. episode {eid}: step 1, human:ana 'wrong-tool' (rated by trajrec-rules@2)\n" in err
    assert "--prefer" in err.split("hint:", 1)[1]
    report = _json_report([*argv, "--overwrite"], capsys)
    assert report["examples"] == {reason: f"episode {eid}: step 1, human:ana 'wrong-tool' (rated by trajrec-rules@2)"}
    assert report["rules_would_label"] == 0  # the rules labeled it already: `label auto --rules` is no fix here
    # drop-step writes the other steps; when the category steps are all there is, the reason says so too.
    assert main(["export", str(out), "--format", "trl-stepwise", "--out", str(tmp_path / "d.jsonl"),
                 "--unlabeled", "drop-step", "--prefer", "human"]) == 0
    err = capsys.readouterr().err
    assert "no step with a rating to export (unlabeled, or a category as the preferred label)" in err
    assert f"e.g. episode {eid}: step 1, human:ana 'wrong-tool'" in err


def test_kto_names_the_category_of_an_episode_with_labels(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    env = Recorder(_Cut(), run)
    env.reset(seed=0)
    env.step(0)
    env.close()
    eid = open_episode(env.episode_path).episode_id
    assert main(["label", "add", str(run), "--episode", eid, "--step", "episode", "--value", "pass",
                 "--annotator", "ana"]) == 0
    assert main(["label", "add", str(run), "--episode", eid, "--step", "episode", "--value", "gave-up",
                 "--annotator", "bo"]) == 0  # newer: the preferred one
    capsys.readouterr()
    assert main(["export", str(run), "--format", "kto", "--out", str(tmp_path / "kto.jsonl")]) == 0
    err = capsys.readouterr().err
    assert "no terminal verdict and no episode label" not in err
    assert ("1 (0 passed, 0 failed, 1 truncated): no terminal verdict, and the preferred episode label is a "
            f"category (no rating)\n      e.g. episode {eid}: human:bo 'gave-up' (rated by human:ana)\n") in err
    assert "nothing written" in err and "--step episode --value pass|fail" in err
    # Labels there, but from no --prefer source: said as such, naming their judges.
    report = _json_report(["export", str(run), "--format", "kto", "--out", str(tmp_path / "k2.jsonl"),
                           "--prefer", "rule"], capsys)
    reason = "no terminal verdict, and no --prefer source labeled the episode"
    assert report["left_out"] == {reason: {"truncated": 1}}
    assert report["examples"] == {reason: f"episode {eid}: human:ana, human:bo"}
