"""Screens pinned as SVG snapshots at 80x24 and 160x45 (``pytest --snapshot-update`` rewrites them after a wanted change).

The episodes are recorded with a pinned clock, ids and provenance (see ``tui_helpers``) and the app is given
a relative path, so nothing on screen depends on the machine, the day or the temp folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from tui_helpers import make_library, open_ready, until

from trajrec.replay.labels import LabelStore
from trajrec.tui.app import create_app

SIZES = [(80, 24), (160, 45)]


@pytest.fixture(params=SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def size(request: pytest.FixtureRequest) -> tuple[int, int]:
    return request.param


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    make_library(tmp_path / "runs")
    monkeypatch.chdir(tmp_path)
    return "runs"


def test_library_screen(snap_compare, runs: str, size: tuple[int, int]) -> None:
    async def ready(pilot: Pilot) -> None:
        await until(pilot, lambda: pilot.app.library.scan_done)
        await pilot.press("down")

    assert snap_compare(create_app([runs], annotator="ana"), terminal_size=size, run_before=ready)


def test_library_filtered_and_sorted(snap_compare, runs: str, size: tuple[int, int]) -> None:
    async def ready(pilot: Pilot) -> None:
        await until(pilot, lambda: pilot.app.library.scan_done)
        await pilot.press("slash", *"-env:none", "enter", "5")

    assert snap_compare(create_app([runs], annotator="ana"), terminal_size=size, run_before=ready)


def test_episode_screen(snap_compare, runs: str, size: tuple[int, int]) -> None:
    async def ready(pilot: Pilot) -> None:
        await until(pilot, lambda: pilot.app.library.scan_done)
        await pilot.press("enter")
        await open_ready(pilot)
        await pilot.press("n", "n", "r")  # step 6: a recovery with a state diff

    assert snap_compare(create_app([runs], annotator="ana"), terminal_size=size, run_before=ready)


def test_episode_whole_state(snap_compare, runs: str, size: tuple[int, int]) -> None:
    async def ready(pilot: Pilot) -> None:
        await until(pilot, lambda: pilot.app.library.scan_done)
        await pilot.press("enter")
        await open_ready(pilot)
        await pilot.press("l", "l", "s")

    assert snap_compare(create_app([runs], annotator="ana"), terminal_size=size, run_before=ready)


def test_help_screen(snap_compare, runs: str, size: tuple[int, int]) -> None:
    async def ready(pilot: Pilot) -> None:
        await until(pilot, lambda: pilot.app.library.scan_done)
        await pilot.press("enter")
        await open_ready(pilot)
        await pilot.press("question_mark")

    assert snap_compare(create_app([runs], annotator="ana"), terminal_size=size, run_before=ready)


def test_episode_labels(snap_compare, runs: str, size: tuple[int, int]) -> None:
    # Another annotator's and a rule's labels on step 0, then yours: rated, noted, tagged.
    bob = LabelStore("runs/a")
    eid = "Notes-v0-20250101T000000-00000001"
    bob.add(eid, 0, -1, judge="human:bob", rationale="should have listed the folder first", tags=["lucky-guess"])
    bob.add(eid, 0, -1, kind="rule", judge="trajrec-rules@1", rationale="failed: tool_error: no such file",
            tags=["failed"])
    bob.add(eid, 4, -1, judge="human:bob", tags=["repeated-mistake"])
    bob.close()

    async def ready(pilot: Pilot) -> None:
        await until(pilot, lambda: pilot.app.library.scan_done)
        await pilot.press("enter")
        await open_ready(pilot)
        await pilot.press("plus", "c", *"it looked", "enter", "t", "1", "l", "minus")
        await until(pilot, lambda: pilot.app.screen.session.progress() == (2, 3))
        await pilot.press("h")

    assert snap_compare(create_app([runs], annotator="ana"), terminal_size=size, run_before=ready)


def test_library_sorted_by_a_narrow_column(snap_compare, runs: str, size: tuple[int, int]) -> None:
    # The sort arrow stays in a column narrower than its label and the arrow (issue 16, item 14).
    async def ready(pilot: Pilot) -> None:
        await until(pilot, lambda: pilot.app.library.scan_done)
        await pilot.press("6", "6")

    assert snap_compare(create_app([runs], annotator="ana"), terminal_size=size, run_before=ready)


def test_episode_lines_wrapped(snap_compare, runs: str, size: tuple[int, int]) -> None:
    async def ready(pilot: Pilot) -> None:
        await until(pilot, lambda: pilot.app.library.scan_done)
        await pilot.press("enter")
        await open_ready(pilot)
        await pilot.press("n", "n", "r", "w")

    assert snap_compare(create_app([runs], annotator="ana"), terminal_size=size, run_before=ready)


def test_episode_screen_light_theme(snap_compare, runs: str) -> None:
    async def ready(pilot: Pilot) -> None:
        await until(pilot, lambda: pilot.app.library.scan_done)
        await pilot.press("enter")
        await open_ready(pilot)
        await pilot.press("n")

    assert snap_compare(create_app([runs], annotator="ana", theme="light"), terminal_size=(80, 24),
                        run_before=ready)
