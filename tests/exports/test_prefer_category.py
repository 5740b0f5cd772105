"""A preferred label whose value is a category (a person marking a step `typo`) makes the step unlabeled in
trl-stepwise, as docs/EXPORT.md says: a lower-ranked source (the rules' True) does not take its place, and chat and
parquet name the same winner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trajrec.cli import main
from trajrec.recorder import open_episode


@pytest.fixture()
def run(tmp_path: Path) -> tuple[Path, str]:
    out = tmp_path / "run"
    assert main(["record", "trajrec/Shell-v0", "--episodes", "1", "--out", str(out), "--json"]) == 0
    assert main(["label", "auto", str(out), "--rules"]) == 0
    path = next(out.glob("*.msgpack.zst"))
    eid = open_episode(path).episode_id
    assert main(["label", "add", str(out), "--episode", eid, "--step", "1", "--value", "typo",
                 "--annotator", "ana"]) == 0
    return out, eid


def test_trl_stepwise_leaves_a_step_whose_preferred_label_is_a_category_unlabeled(run: tuple[Path, str],
                                                                                  tmp_path: Path) -> None:
    out, _eid = run
    rows = {}
    for policy in ("neutral", "truncate", "drop-step"):
        dest = tmp_path / f"{policy}.jsonl"
        assert main(["export", str(out), "--format", "trl-stepwise", "--out", str(dest), "--unlabeled", policy]) == 0
        [rows[policy]] = [json.loads(line) for line in dest.read_text().splitlines()]
    neutral = rows["neutral"]
    assert neutral["label_judges"][1] is None and neutral["label_judges"][0] == neutral["label_judges"][2]
    assert neutral["label_judges"][0].startswith("trajrec-rules")
    assert rows["truncate"]["steps"] == [0]
    assert 1 not in rows["drop-step"]["steps"] and 2 in rows["drop-step"]["steps"]
    # With the rules first, their label wins and the step is labeled again.
    dest = tmp_path / "rules.jsonl"
    assert main(["export", str(out), "--format", "trl-stepwise", "--out", str(dest), "--prefer", "rule,human"]) == 0
    [row] = [json.loads(line) for line in dest.read_text().splitlines()]
    assert row["label_judges"][1].startswith("trajrec-rules")
    # chat names the same winner: the person's category, no label
    dest = tmp_path / "chat.jsonl"
    assert main(["export", str(out), "--format", "chat", "--out", str(dest)]) == 0
    text = dest.read_text()
    assert "human:ana" in text


def test_an_episode_check_of_nan_gives_no_kto_example(tmp_path: Path) -> None:
    """A NaN episode check is no verdict and no score: the episode is left out of kto (as one with no label),
    not written as a negative example."""
    from trajrec import Recorder

    class _Env:
        def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
            return "task", {}

        def step(self, action):  # type: ignore[no-untyped-def]
            return "ok", 0.0, True, False, {"checks": [{"target": "episode", "value": float("nan"),
                                                         "judge": "score@1", "kind": "rule"}]}

    env = Recorder(_Env(), tmp_path / "run")
    env.reset(seed=0)
    env.step("go")
    env.close()
    out = tmp_path / "kto.jsonl"
    assert main(["export", str(tmp_path / "run"), "--format", "kto", "--out", str(out)]) == 0
    assert out.read_text() == ""
