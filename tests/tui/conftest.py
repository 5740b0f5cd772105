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

