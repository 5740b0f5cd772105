"""The report screen: r in the library shows `trajrec report`'s tables for the episodes shown (filter applied)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import Static
from tui_helpers import SIZE, step_of, until

from trajrec.tui.app import create_app
from trajrec.tui.episode_screen import EpisodeScreen
from trajrec.tui.library_screen import LibraryScreen
from trajrec.tui.report_screen import ReportScreen


def _body(screen: ReportScreen) -> str:
    return str(screen.query_one("#report-body", Static).render())


def test_report_screen_shows_the_figures_of_the_shown_episodes(library: Path) -> None:
    async def run() -> None:
        app = create_app([library])
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            await pilot.press("r")
            screen = app.screen
            assert isinstance(screen, ReportScreen)
            await until(pilot, lambda: screen.report is not None)
            assert screen.report["episodes"] == 4
            body = _body(screen)
            for title in ("1. Coverage", "2. Difficulty", "3. Failures", "4. Checks and labels", "5. Behaviour",
                          "6. Lineage"):
                assert title in body
            assert "4 episodes" in str(screen.query_one("#report-status", Static).render())
            # A key into the viewer: 1 opens the first episode worth a look, at its step; escape comes back.
            look = screen.report["failures"]["worth_a_look"]
            assert look and " 1. " in body
            await pilot.press("1")
            await until(pilot, lambda: isinstance(app.screen, EpisodeScreen))
            assert app.screen.episode.path == look[0]["path"]
            assert step_of(app) == (look[0]["step"] or 0)
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is screen)
            await pilot.press("9")  # fewer than nine listed: a notice, nothing opens
            assert app.screen is screen
            await pilot.press("escape")
            assert isinstance(app.screen, LibraryScreen)
            # With a filter, the report covers what the library shows.
            await pilot.press("slash", *"faulty", "enter")
            await pilot.press("r")
            screen = app.screen
            assert isinstance(screen, ReportScreen) and screen.where == "faulty"
            await until(pilot, lambda: screen.report is not None)
            assert screen.report["episodes"] == 2 and screen.report["failures"]["failed_steps"] > 0
            assert "where faulty" in str(screen.query_one("#report-status", Static).render())
            await pilot.press("q")
            assert isinstance(app.screen, LibraryScreen)
    asyncio.run(run())
