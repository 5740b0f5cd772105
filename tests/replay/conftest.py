"""Fixtures for the replay tests (the test envs live in ``replay_envs.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from replay_envs import TEST_IDS, ScriptEnv, record_episode, register_test_envs


@pytest.fixture(autouse=True)
def _test_envs():
    """Register the ``replaytest/*`` ids for one test; remove them after it, so other tests see the usual registry."""
    register_test_envs()
    yield
    ScriptEnv.tweak = None
    for env_id in TEST_IDS:
        gym.registry.pop(env_id, None)


@pytest.fixture
def record(tmp_path: Path) -> Callable[..., Path]:
    """``record(env_or_id, actions, seed=0, ...)``: record an episode under ``tmp_path/runs``."""

    def _record(env: gym.Env | str, actions: Iterable[Any], **kwargs: Any) -> Path:
        return record_episode(env, tmp_path / "runs", actions, **kwargs)

    return _record

