"""Fixtures for the label, agreement and export tests (the fixture run lives in ``labels_fixture_run.py``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from labels_fixture_run import episode_ids_by_seed, record_fixture_run


@pytest.fixture(scope="session")
def master_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_fixture_run(tmp_path_factory.mktemp("master") / "run")


@pytest.fixture
def run_dir(master_run: Path, tmp_path: Path) -> Path:
    """A fresh copy of the fixture run (tests add labels to it)."""
    dst = tmp_path / "run"
    shutil.copytree(master_run, dst)
    return dst


@pytest.fixture
def ids(run_dir: Path) -> dict[int, str]:
    """Episode id by seed."""
    return episode_ids_by_seed(run_dir)

