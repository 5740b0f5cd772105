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


def test_ls_sort_started_lists_the_recording_order_and_an_older_cache_is_rebuilt(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from trajrec.recorder.format import packb
    from trajrec.replay.library import CATALOG_VERSION

    env = Recorder(gym.make("CartPole-v1"), tmp_path / "run")
    for seed in range(8):
        env.reset(seed=seed)
        env.step(0)
    env.close()
    recorded = [str(p) for p in env.episode_paths]

    def ls(*args: str) -> list[dict]:  # type: ignore[type-arg]
        out = subprocess.run([sys.executable, "-m", "trajrec", "ls", str(tmp_path / "run"), "--json", *args],
                             capture_output=True, text=True, check=True).stdout
        return [json.loads(line) for line in out.splitlines()]

    rows = ls("--sort", "started")
    assert [r["path"] for r in rows] == recorded
    assert [r["started"] for r in rows] == sorted(r["started"] for r in rows)
    assert [r["path"] for r in ls("--sort=-started")] == recorded[::-1]
    # A shard an older trajrec wrote (no started column) is rebuilt, not misread.
    (shard,) = (tmp_path / "run" / ".trajrec" / "catalog").glob("*.msgpack")
    shard.write_bytes(packb({"version": CATALOG_VERSION - 1, "fields": ["episode_id"]}))
    assert [r["path"] for r in ls("--sort", "started")] == recorded
