"""`ls --where` and `--sort` take the model usage columns `ls` shows (tokens, cost), as the viewer's filter does
(FINDINGS33 #14): episodes recorded with model calls noted, read back through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from text_env import EchoTextEnv

from trajrec import Recorder
from trajrec.cli import main


@pytest.fixture
def usage_run(tmp_path: Path) -> tuple[Path, dict[str, tuple[int | None, float | None]]]:
    """Four episodes: 300 tokens at $0.30, 1,200 at $0.02, 50 unpriced, and one without model calls."""
    env = Recorder(EchoTextEnv(), tmp_path / "run")
    want = {}
    for tokens, cost in ((300, 0.30), (1200, 0.02), (50, None), (None, None)):
        env.reset(seed=0)
        if tokens is not None:
            call = {"model": "m", "usage": {"prompt_tokens": tokens - 10, "completion_tokens": 10,
                                            "total_tokens": tokens}}
            if cost is not None:
                call["cost"] = cost
            env.note(model_call=call)
        env.step("go")
        env.end_episode()
        want[str(env.episode_path)] = (tokens, cost)
    env.close()
    return tmp_path / "run", want


def _ids(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert main(["ls", *argv, "--json"]) == 0
    return [json.loads(line)["path"] for line in capsys.readouterr().out.splitlines()]


def test_where_and_sort_read_tokens_and_cost(usage_run, capsys) -> None:  # type: ignore[no-untyped-def]
    run, want = usage_run
    by = {v: k for k, v in want.items()}
    assert _ids(capsys, str(run), "--where", "cost>0.1") == [by[(300, 0.30)]]
    assert sorted(_ids(capsys, str(run), "--where", "tokens>=300")) == sorted([by[(300, 0.30)], by[(1200, 0.02)]])
    # Unknown (no calls, or no price) matches no comparison, and sorts last in both directions (in path order).
    unknown = sorted([by[(50, None)], by[(None, None)]])
    assert _ids(capsys, str(run), "--sort", "cost") == [by[(1200, 0.02)], by[(300, 0.30)], *unknown]
    assert _ids(capsys, str(run), "--sort=-cost") == [by[(300, 0.30)], by[(1200, 0.02)], *unknown]
    assert _ids(capsys, str(run), "--sort=-tokens")[:3] == [by[(1200, 0.02)], by[(300, 0.30)], by[(50, None)]]
    assert _ids(capsys, str(run), "--sort=-tokens")[3] == by[(None, None)]
