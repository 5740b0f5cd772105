"""A recorded time out of ``timestamp[us]``'s range (a salvaged step of a repaired file held 1e172: the export
raised pyarrow's OverflowError; a flaky failure of test_partial_episodes when the flipped byte landed there) is a
null time in parquet and ``Run.to_arrow``, in the usual steps' fast path and in the general loop alike, and every
other value of the step is kept."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

from trajrec import Recorder, open_run
from trajrec.replay.exports import export

pq = pytest.importorskip("pyarrow.parquet")

TIMES = [1_700_000_000.5, 1e172, -1e20, float("nan"), 1_700_000_001.25]
#: Every time a finite float: the fast path's own range check is what sends these steps to the general loop.
FINITE = [1_700_000_000.5, 1e172, -1e20, 1e13, 1_700_000_001.25]


class Text(gym.Env):  # type: ignore[type-arg]
    """Text actions and observations: the parquet export's usual-steps fast path takes such steps."""

    observation_space = gym.spaces.Text(100)
    action_space = gym.spaces.Text(100)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        return "ready", {}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        return f"did {action}", 0.5, False, False, {}


def _record(folder: Path, env: gym.Env, actions: list[Any], times: list[float],  # type: ignore[type-arg]
            monkeypatch: pytest.MonkeyPatch) -> None:
    import trajrec.recorder.wrapper as wrapper

    rec = Recorder(env, folder)
    rec.reset(seed=0)
    for action, t in zip(actions, times):
        monkeypatch.setattr(wrapper, "time", types.SimpleNamespace(time=lambda t=t: t))
        rec.note(thought=f"try {action}")
        rec.step(action)
    monkeypatch.undo()
    rec.close()


@pytest.mark.parametrize("times", [TIMES, FINITE], ids=["with-nan", "finite"])
@pytest.mark.parametrize("kind", ["text", "cartpole"])
def test_out_of_range_times_are_null_and_the_rest_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          kind: str, times: list[float]) -> None:
    run = tmp_path / "run"
    if kind == "text":
        _record(run, Text(), ["a", "b", "c", "d", "e"], times, monkeypatch)
    else:
        _record(run, gym.make("CartPole-v1"), [0, 1, 0, 1, 0], times, monkeypatch)
    out = tmp_path / "steps.parquet"
    export([run], "parquet", out)
    table = pq.read_table(str(out))
    got = table.column("time").to_pylist()
    assert [t is None for t in got] == [False, True, True, True, False]
    assert got[0].timestamp() == times[0] and got[4].timestamp() == times[4]
    assert table.column("step").to_pylist() == [0, 1, 2, 3, 4]
    assert open_run(run).to_arrow().column("time").to_pylist() == got
