"""A label's value decides every exported label; a score kept beside it never does (FINDINGS32 #2).

The viewer's `P f` then `P s 0.9` writes an episode label `fail` with score 0.9. kto exported such an episode as
`label: True` and dpo made it the `chosen` side over a passed attempt, because the score was read ahead of the
verdict; trl-stepwise wrote `scores [0.9]` beside `labels [False]` for a step labeled the same way. Now the value
decides (as docs/EXPORT.md already said for steps), the score breaks ties between equal values in dpo, and
`scores` is the number the label is made from. Two truncated attempts at one task (no recorded verdict) are
recorded through the Recorder, labeled and exported through the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import pytest

from trajrec import Recorder, open_episode
from trajrec.cli import main


class _Task(gym.Env):
    """One task; every episode is cut short after two steps (truncated: no verdict)."""

    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        super().reset(seed=seed)
        self._t = 0
        return "sum 2 and 2", {"task": {"id": "add-1", "text": "sum 2 and 2"}}

    def step(self, action):  # type: ignore[no-untyped-def]
        self._t += 1
        return f"seen {action}", 0.0, False, self._t >= 2, {}


def _attempts(run: Path, n: int = 2) -> list[str]:
    env = Recorder(_Task(), run)
    for k in range(n):
        env.reset(seed=0)
        env.step(k % 2)
        env.step(1)
    env.close()
    eps = [open_episode(p) for p in sorted(run.glob("*.msgpack.zst"))]
    assert len(eps) == n and {ep.summary["outcome"] for ep in eps} == {"truncated"}
    return [ep.episode_id for ep in eps]


def _label(run: Path, eid: str, step: str, *args: str) -> None:
    assert main(["label", "add", str(run), "--episode", eid, "--step", step, "--annotator", "ana", *args]) == 0


def _export(run: Path, fmt: str, out: Path, *extra: str) -> list[dict]:
    assert main(["export", str(run), "--format", fmt, "--out", str(out), "--overwrite", *extra]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return tmp_path / "run"


def test_an_episode_failed_with_a_high_score_is_a_kto_negative_and_dpo_rejected(run: Path, tmp_path: Path) -> None:
    passed, failed = _attempts(run)
    _label(run, failed, "episode", "--value", "fail", "--score", "0.9")  # the viewer: P f, then P s 0.9 enter
    _label(run, passed, "episode", "--value", "pass", "--score", "0.5")
    kto = {r["trajrec"]["episode_id"]: r["label"] for r in _export(run, "kto", tmp_path / "kto.jsonl")}
    assert kto == {passed: True, failed: False}
    [pair] = _export(run, "dpo", tmp_path / "dpo.jsonl")
    assert (pair["trajrec"]["chosen"]["episode_id"], pair["trajrec"]["rejected"]["episode_id"]) == (passed, failed)


@pytest.mark.parametrize(("value", "score", "label"), [("+1", "-0.5", True), ("0", "0.8", False),
                                                      ("-1", "0.8", False), ("pass", "-1", True),
                                                      ("0.3", None, True), ("-0.3", None, False)])
def test_kto_label_is_the_value_whatever_the_score(run: Path, tmp_path: Path, value: str, score: str | None,
                                                   label: bool) -> None:
    eid, _other = _attempts(run)
    _label(run, eid, "episode", "--value", value, *(["--score", score] if score else []))
    rows = {r["trajrec"]["episode_id"]: r["label"] for r in _export(run, "kto", tmp_path / "kto.jsonl")}
    assert rows == {eid: label}  # the other attempt has no label and no verdict: left out


def test_a_score_breaks_a_tie_between_equal_verdicts_only(run: Path, tmp_path: Path) -> None:
    low, high = _attempts(run)
    _label(run, low, "episode", "--value", "pass")
    _label(run, high, "episode", "--value", "pass")
    assert _export(run, "dpo", tmp_path / "dpo.jsonl") == []  # equal values, no score: no pair
    _label(run, low, "episode", "--value", "pass", "--score", "0.2")
    _label(run, high, "episode", "--value", "pass", "--score", "0.7")
    [pair] = _export(run, "dpo", tmp_path / "dpo.jsonl")
    assert pair["trajrec"]["chosen"]["episode_id"] == high
    # A score never lifts a lower value: fail with 0.99 stays below pass with -0.9.
    _label(run, low, "episode", "--value", "pass", "--score", "-0.9")
    _label(run, high, "episode", "--value", "fail", "--score", "0.99")
    [pair] = _export(run, "dpo", tmp_path / "dpo.jsonl")
    assert pair["trajrec"]["chosen"]["episode_id"] == low


def test_an_episode_category_ranks_nothing_whatever_its_score(run: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    eid, _other = _attempts(run)
    _label(run, eid, "episode", "--value", "gave-up", "--score", "0.8")
    capsys.readouterr()
    assert _export(run, "kto", tmp_path / "kto.jsonl") == []
    err = capsys.readouterr().err
    assert "the preferred episode label is a category (no rating)" in err
    assert f"e.g. episode {eid}: human:ana 'gave-up'" in err


def test_trl_stepwise_scores_agree_with_labels(run: Path, tmp_path: Path) -> None:
    eid, _other = _attempts(run)
    _label(run, eid, "0", "--value", "fail", "--score", "0.9")
    _label(run, eid, "1", "--value", "5.0")  # a pure score: its value, of any range
    [row] = _export(run, "trl-stepwise", tmp_path / "prm.jsonl", "--unlabeled", "drop-step")
    assert (row["episode_id"], row["steps"], row["labels"], row["scores"]) == (eid, [0, 1], [False, True], [-1.0, 5.0])


def test_parquet_and_chat_follow_the_value_and_keep_the_score(run: Path, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    eid, _other = _attempts(run)
    _label(run, eid, "0", "--value", "fail", "--score", "0.9")
    out = tmp_path / "steps.parquet"
    assert main(["export", str(run), "--format", "parquet", "--out", str(out), "--where", f"episode={eid}"]) == 0
    rows = pq.read_table(out).to_pylist()
    step0 = next(r for r in rows if r["step"] == 0)
    assert (step0["label"], step0["label_rating"], step0["label_score"]) == (0.0, -1, 0.9)
    [chat] = _export(run, "chat", tmp_path / "chat.jsonl", "--where", f"episode={eid}")
    steps = {s["step"]: s for s in chat["trajrec"]["steps"]}
    assert (steps[0]["weight"], steps[0]["rating"], steps[0]["label"]) == (0, -1, False)
