"""`trajrec diff` does not compare a state the recording marks unknown (the recorder could not read it: a state_fn
that raised, an AsyncVectorEnv that raised): it names it as not compared, never as a difference (FINDINGS34 B1,
the fix's follow-up). Real recorded files, the real CLI."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from text_env import EchoTextEnv

from trajrec import Recorder
from trajrec.cli import main


def _record(folder: Path, fail_at: int | None) -> Path:
    count = {"n": -1}

    def state(env: Any) -> dict[str, int]:
        if count["n"] == fail_at:
            raise KeyError("no counter yet")
        return {"n": count["n"]}

    env = Recorder(EchoTextEnv(), folder, state_fn=state)
    env.reset(seed=0)
    for i in range(3):
        count["n"] = i
        env.step(f"step {i}")
    env.close()
    assert env.episode_path is not None
    return env.episode_path


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the state_fn's error, warned once
        return _record(tmp_path / "a", None), _record(tmp_path / "b", 1)


def test_an_unknown_state_is_named_as_not_compared_not_as_a_difference(pair, capsys) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    assert main(["diff", str(a), str(b)]) == 1  # not the same: one side's state at step 1 is not known
    out = capsys.readouterr().out
    assert "B: state unknown after step 1 (the recording marks it so): state not compared there" in out
    assert "differs in state" not in out
    assert main(["diff", str(a), str(b), "--json"]) == 1
    summary = [json.loads(line) for line in capsys.readouterr().out.splitlines()][-1]
    assert summary["differing_steps"] == 0
    assert summary["not_compared_b"] == ["state unknown after step 1 (the recording marks it so): state not "
                                         "compared there"]
    # The file against itself: both sides know the same, so it is the same.
    assert main(["diff", str(b), str(b)]) == 0
