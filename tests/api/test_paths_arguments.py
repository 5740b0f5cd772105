"""One path given as ``str`` or ``Path`` to ``export``, ``label_with_rules`` and ``label_with_judge`` is one path
(FINDINGS13 #1: a ``str`` was read as its characters, so ``"s7"`` exported folders ``s`` and ``7``, labels went
into another run, and an absolute path walked ``/``)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import gymnasium as gym
import pytest

from trajrec import Recorder, TrajrecError, open_episode
from trajrec.replay.autolabel import label_with_judge, label_with_rules
from trajrec.replay.exports import export


def _run(folder: Path, seeds: range) -> list[str]:
    env = Recorder(gym.make("CartPole-v1"), folder)
    for seed in seeds:
        env.reset(seed=seed)
        for _ in range(3):
            env.step(0)
    env.close()
    return [open_episode(p).episode_id for p in env.episode_paths]


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[str]]:
    monkeypatch.chdir(tmp_path)
    mine = _run(tmp_path / "s7", range(2))
    other = _run(tmp_path / "s", range(5, 6))  # a run named by the path's first character
    (tmp_path / "7").mkdir()
    return mine, other


def _ids(out: Path) -> list[str]:
    return [json.loads(line)["episode_id"] for line in out.read_text().splitlines()]


@pytest.mark.parametrize("given", [lambda p: "s7", lambda p: Path("s7"), lambda p: str(p / "s7"), lambda p: p / "s7"],
                         ids=["str", "Path", "absolute str", "absolute Path"])
def test_export_of_one_path(runs, tmp_path: Path, given) -> None:
    mine, other = runs
    out = tmp_path / "out.jsonl"
    report = export(given(tmp_path), "records", out)
    assert sorted(set(_ids(out))) == sorted(mine) and report.written == len(mine)


def test_labelers_write_into_the_run_named(runs, tmp_path: Path) -> None:
    mine, other = runs
    assert label_with_rules("s7").episodes == len(mine)
    result = label_with_judge(Path("s7"), lambda ctx: {"value": 1})
    assert result.episodes == len(mine) and result.added == 3 * len(mine)
    assert list((tmp_path / "s7" / ".trajrec" / "labels").glob("*.jsonl"))
    assert not (tmp_path / "s" / ".trajrec").exists()  # the other run is untouched


@pytest.mark.parametrize("bad", [5, None, b"s7", ["s7", 5]])
def test_what_is_not_a_path_is_refused_by_name(runs, tmp_path: Path, bad) -> None:
    with pytest.raises(TrajrecError, match="takes a run folder or episode file|each path must be a str or pathlib.Path"):
        export(bad, "records", tmp_path / "x.jsonl")
    assert not (tmp_path / "x.jsonl").exists()
