"""An episode with no step (reset, then closed) has nothing for a trainer to learn: the training formats leave it
out and count it as ``no step``, instead of writing a conversation with no assistant turn (``chat``) or calling it
unlabeled (``trl-stepwise``). ``records`` and ``atif`` keep it: they hold episodes, not training rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from trajrec import Recorder
from trajrec.replay.exports import export
from trajrec.replay.exports.base import ExportOptions


class _Env:
    def reset(self, *, seed: Any = None, options: Any = None) -> tuple[str, dict[str, Any]]:
        return "fix the bug", {}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        done = action == "submit"
        checks = [{"target": "episode", "judge": "tests@1", "value": True}] if done else []
        return f"ran {action}", 1.0, done, False, {"checks": checks}


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """Two judged episodes of one task (so dpo can pair them) and one of 0 steps, judged too."""
    out = tmp_path / "run"
    for seed, actions in ((0, ["ls", "submit"]), (0, ["submit"]), (0, [])):
        env = Recorder(_Env(), out)
        env.reset(seed=seed)
        for a in actions:
            env.step(a)
        if not actions:
            env.check(False, judge="tests@1", target="episode")  # a verdict: left out for having no step only
        env.close()
    return out


@pytest.mark.parametrize("fmt", ["chat", "trl-stepwise", "kto"])
def test_training_formats_leave_out_a_zero_step_episode(run: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "x.jsonl"
    report = export([run], fmt, out, options=ExportOptions(unlabeled="neutral"))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == report.rows == 2
    assert report.skipped == {"no step": 1}
    for row in rows:
        if fmt == "chat":
            assert row["messages"][-1]["role"] == "assistant"
        elif fmt == "kto":
            assert any(m["role"] == "assistant" for m in row["completion"])
        else:
            assert row["completions"]


def test_records_and_atif_keep_a_zero_step_episode(run: Path, tmp_path: Path) -> None:
    for fmt in ("records", "atif"):
        report = export([run], fmt, tmp_path / f"{fmt}.jsonl")
        assert report.rows == 3 and not report.skipped
