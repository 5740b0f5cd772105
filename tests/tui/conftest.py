"""Fixtures for the TUI tests (the helpers live in ``tui_helpers``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_helpers import MAIN_ACTIONS, make_library, record


@pytest.fixture
def library(tmp_path: Path) -> Path:
    return make_library(tmp_path / "runs")


@pytest.fixture
def main_episode(tmp_path: Path) -> Path:
    return record(tmp_path / "one", MAIN_ACTIONS, notes={0: {"thought": "look for the notes first"}},
                  verdict=True, step_checks={2: True})



@pytest.fixture(autouse=True, scope="session")
def _settle_in_smaller_sleeps():
    """``Pilot.press`` waits, after each key, until the process's CPU time stops advancing, sampled in sleeps of
    ``textual._wait.SLEEP_GRANULARITY`` (20 ms, twice a key: 40 ms a key at least). The same test of idleness in
    10 ms samples settles as surely (CPU under 5% of a sample) and types a 10-letter note in 0.2 s, not 0.4.
    Tests still wait for what they check with ``until`` (a scroll, a worker's result), never for a fixed pause."""
    from textual import _wait

    saved = _wait.SLEEP_GRANULARITY, _wait.SLEEP_IDLE
    _wait.SLEEP_GRANULARITY, _wait.SLEEP_IDLE = 0.01, 0.01 / 20
    yield
    _wait.SLEEP_GRANULARITY, _wait.SLEEP_IDLE = saved
