"""A ``Run`` opened before labeling sees the labels added since, through any store (this process or another)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

from trajrec import Recorder, open_run
from trajrec.replay.labels import LabelStore


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    env = Recorder(gym.make("CartPole-v1"), tmp_path / "run")
    for seed in (0, 1):
        env.reset(seed=seed)
        for _ in range(2):
            env.step(0)
    env.close()
    return tmp_path / "run"


def test_same_run_sees_labels_added_later(run_dir: Path) -> None:
    pytest.importorskip("pyarrow")
    run = open_run(run_dir)
    assert run.to_arrow().column("label_rating").to_pylist() == [None] * 4
    assert len(run.where("labeled")) == 0
    eids = [e.episode_id for e in run.entries]
    store = LabelStore(run_dir)  # not the run's own store
    for eid in eids:
        store.add(eid, 0, -1, judge="human:me")
        store.add(eid, 1, 1, judge="human:me")
    assert run.to_arrow().column("label_rating").to_pylist() == [-1, 1, -1, 1]
    assert [r["label_rating"] for r in run.steps()] == [-1, 1, -1, 1]
    assert len(run.where("labeled")) == 2
    # a newer version through yet another store, then one added by another process
    LabelStore(run_dir).add(eids[1], 0, 1, judge="human:me")
    assert [r["label_rating"] for r in run.steps()] == [-1, 1, 1, 1]
    code = (f"from trajrec.replay.labels import LabelStore; "
            f"LabelStore({str(run_dir)!r}).add({eids[0]!r}, 1, -1, judge='human:me')")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert [r["label_rating"] for r in run.steps()] == [-1, -1, 1, 1]


def test_filtered_run_refreshes_too(run_dir: Path) -> None:
    run = open_run(run_dir).where("steps>=2")
    assert len(run.where("labeled")) == 0
    eid = run.entries[0].episode_id
    LabelStore(run_dir).add(eid, "episode", True, judge="human:me")
    assert [e.episode_id for e in run.where("labeled")] == [eid]
    assert run.refresh_labels() == 0  # nothing new: nothing read
