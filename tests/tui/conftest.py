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

# --doctest-modules would import this file as a module named "conftest"; when pytest is given several test
# folders at once (`pytest tests/tui tests/labels`), that name is already taken by another folder's conftest
# and collection fails with "import file mismatch". It holds no doctests.
collect_ignore = ["conftest.py"]
