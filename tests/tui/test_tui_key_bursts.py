"""Keys typed in one burst (fast typing, a paste, ``tmux send-keys "/failed" Enter``) land where they belong,
although Textual routes each key to the widget focused when it arrives."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import Input
from tui_helpers import SIZE, burst, open_ready, step_of, until

from trajrec.tui.app import create_app
from trajrec.tui.episode_table import EpisodeTable
from trajrec.tui.library_screen import LibraryScreen


def test_filter_typed_in_one_burst(library: Path) -> None:
    async def run() -> None:
        app = create_app([library])
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            burst(app, "/", *"faulty", "enter", "3")
            await until(pilot, lambda: app.library.sort_column == "steps")
            assert isinstance(app.screen, LibraryScreen)  # the enter applied the filter, opened nothing
            assert app.screen.query_one("#library-filter", Input).value == "faulty"
            assert [e.task_id for e in app.screen.query_one(EpisodeTable).rows] == ["notes-2", "notes-1"]
            burst(app, "/", *"/x")  # a "/" typed in the filter is text
            await until(pilot, lambda: app.screen.query_one("#library-filter", Input).value == "faulty/x")
    asyncio.run(run())


def test_goto_and_search_typed_in_one_burst(main_episode: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode])
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            burst(app, ":", "6", "enter")
            await until(pilot, lambda: step_of(app) == 6)
            burst(app, "/", *"milk", "enter")
            await until(pilot, lambda: step_of(app) == 5)  # after 6, wrapping around: "buy milk" is step 5
            assert "at step 5" in app.screen.query_one("TimelineLegend").note
            # In the prompt, the step keys (h, l: priority bindings) and ":" "/" are text; the last query is
            # selected, so typing replaces it.
            bar = app.screen.query_one("PromptBar")
            burst(app, "/", *"hello:/", "escape")
            await until(pilot, lambda: bar.input.value == "hello:/" and not bar.asking)
            # The prompt hides on escape; the focus goes back when the screen handles the answer, a turn later.
            await until(pilot, lambda: app.screen.focused is app.screen.query_one("StepTimeline"))
            assert step_of(app) == 5
    asyncio.run(run())
