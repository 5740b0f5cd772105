"""Fixtures for the report tests: the hand-computed quiz run of ``report_fixture_run.py``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from report_fixture_run import add_labels, record_quiz_run


@pytest.fixture(scope="session")
def quiz_master(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    out = tmp_path_factory.mktemp("quiz") / "run"
    paths = record_quiz_run(out)
    add_labels(out, paths)
    return out, paths


@pytest.fixture
def quiz(quiz_master: tuple[Path, dict[str, Path]], tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    """A fresh copy of the quiz run (a test may add files or labels), with each episode's file by name."""
    src, paths = quiz_master
    dst = tmp_path / "run"
    shutil.copytree(src, dst)
    return dst, {name: dst / p.name for name, p in paths.items()}
