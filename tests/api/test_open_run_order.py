"""``open_run`` lists episodes in path order (that of ``trajrec ls`` and exports); ``in_recording_order`` gives
the order they were recorded in, even within one second, and ``steps()``/``where`` keep it."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym

from trajrec import Recorder, open_run
from trajrec.replay.library import find_episode_files


def test_recording_order_within_one_second(tmp_path: Path) -> None:
    env = Recorder(gym.make("CartPole-v1"), tmp_path / "run")
    for seed in range(8):  # milliseconds apart: file names share their second, the random part orders them
        env.reset(seed=seed)
        env.step(0)
    env.close()
    run = open_run(tmp_path / "run")
    assert [e.path for e in run.entries] == find_episode_files([tmp_path / "run"])  # path order, as ls lists
    ordered = run.in_recording_order()
    assert [e.path for e in ordered.entries] == [str(p) for p in env.episode_paths]
    assert [ep.reset.seed for ep in ordered] == list(range(8))
    assert [r["episode_id"] for r in ordered.steps()] == [p.name.removesuffix(".msgpack.zst")
                                                          for p in env.episode_paths]
    assert [ep.reset.seed for ep in ordered.where("steps>=1")] == list(range(8))
    assert len(ordered) == len(run) == 8
