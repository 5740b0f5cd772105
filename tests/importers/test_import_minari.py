"""Minari datasets through minari's own API (heavy: needs `pip install 'trajrec[minari]'`).

The dataset is made with ``minari.create_dataset_from_buffers`` and the arrow storage, which needs no jax
(``DataCollector`` does). Run:  python -m pytest -m heavy tests/importers/test_import_minari.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trajrec.importers import import_paths
from trajrec.recorder import open_episode


@pytest.fixture
def dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    minari = pytest.importorskip("minari", reason="pip install 'trajrec[minari]'")
    import gymnasium as gym
    from minari.data_collector import EpisodeBuffer

    root = tmp_path / "datasets"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    env = gym.make("CartPole-v1")
    buffers = []
    for ep in range(3):
        obs, _ = env.reset(seed=ep)
        env.action_space.seed(ep)
        o, a, r, te, tr = [obs], [], [], [], []
        while True:
            action = env.action_space.sample()
            obs, reward, term, trunc, _ = env.step(action)
            o.append(obs), a.append(action), r.append(reward), te.append(term), tr.append(trunc)
            if term or trunc:
                break
        buffers.append(EpisodeBuffer(id=ep, seed=ep, observations=o, actions=a, rewards=r, terminations=te,
                                     truncations=tr, infos={"t": list(range(len(o)))}))
    minari.create_dataset_from_buffers("cartpole/random-v0", buffer=buffers, env=env, algorithm_name="random",
                                       author="trajrec tests", author_email="tests@example.org",
                                       code_permalink="https://example.org/trajrec", data_format="arrow")
    return root / "cartpole" / "random-v0"


@pytest.mark.heavy
@pytest.mark.parametrize("by", ["id", "folder"])
def test_minari_episodes_map_step_by_step(dataset: Path, tmp_path: Path, by: str) -> None:
    import minari

    source = "cartpole/random-v0" if by == "id" else str(dataset)
    report = import_paths("minari" if by == "id" else "auto", [source], tmp_path / "run")
    ds = minari.load_dataset("cartpole/random-v0")
    assert report.episodes == ds.total_episodes == 3 and report.steps == ds.total_steps
    eps = sorted((open_episode(tmp_path / "run" / n) for n in report.files[0].episodes), key=lambda e: e.task["id"])
    for ep, src in zip(eps, ds.iterate_episodes()):
        assert ep.task["env_id"] == "CartPole-v1" and ep.task["id"] == f"cartpole/random-v0/{src.id}"
        assert np.array_equal(ep.reset.observation, src.observations[0])
        assert len(ep) == len(src.actions)
        for t, step in enumerate(ep):
            assert step.action == src.actions[t]
            assert np.array_equal(step.observation, src.observations[t + 1])
            assert step.reward == src.rewards[t] and step.terminated == bool(src.terminations[t])
            assert step.info["t"] == t + 1
        assert ep.provenance["minari"]["author"] == ["trajrec tests"]
        assert ep.provenance["lineage"]["imported_from"]["format"] == "minari"
