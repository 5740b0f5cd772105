"""Screens pinned as SVG snapshots at 120x40 (``pytest --snapshot-update`` rewrites them after a wanted change).

The episodes are recorded with a pinned clock, ids and provenance (see ``tui_helpers``) and the app is given
a relative path, so nothing on screen depends on the machine, the day or the temp folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from tui_helpers import make_library, open_ready, until

from tui.app import create_app

SIZE = (120, 40)


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    make_library(tmp_path / "runs")
    monkeypatch.chdir(tmp_path)
    return "runs"


def test_library_screen(snap_compare, runs: str) -> None:
    async def ready(pilot: Pilot) -> None:
        await until(pilot, lambda: pilot.app.library.scan_done)
        await pilot.press("down")

    assert snap_compare(create_app([runs]), terminal_size=SIZE, run_before=ready)


def test_library_filtered_and_sorted(snap_compare, runs: str) -> None:
    async def ready(pilot: Pilot) -> None:
        await until(pilot, lambda: pilot.app.library.scan_done)
        await pilot.press("slash", *"-env:none", "enter", "5")

    assert snap_compare(create_app([runs]), terminal_size=SIZE, run_before=ready)


def test_episode_screen(snap_compare, runs: str) -> None:
    async def ready(pilot: Pilot) -> None:
        await until(pilot, lambda: pilot.app.library.scan_done)
        await pilot.press("enter")
        await open_ready(pilot)
        await pilot.press("n", "n", "r")  # step 6: a recovery with a state diff

    assert snap_compare(create_app([runs]), terminal_size=SIZE, run_before=ready)


def test_episode_whole_state(snap_compare, runs: str) -> None:
    async def ready(pilot: Pilot) -> None:
        await until(pilot, lambda: pilot.app.library.scan_done)
        await pilot.press("enter")
        await open_ready(pilot)
        await pilot.press("l", "l", "s")

    assert snap_compare(create_app([runs]), terminal_size=SIZE, run_before=ready)


def test_help_screen(snap_compare, runs: str) -> None:
    async def ready(pilot: Pilot) -> None:
        await until(pilot, lambda: pilot.app.library.scan_done)
        await pilot.press("enter")
        await open_ready(pilot)
        await pilot.press("question_mark")

    assert snap_compare(create_app([runs]), terminal_size=SIZE, run_before=ready)
