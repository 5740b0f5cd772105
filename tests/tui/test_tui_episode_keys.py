"""The episode screen driven by keys, headless: stepping, jumps, failures, recoveries, go-to, search, playback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import Input

from tui_helpers import MAIN_ACTIONS, SIZE, open_ready, step_of, until

from trajrec.tui.app import TrajrecApp, create_app
from trajrec.tui.episode_screen import EpisodeScreen
from trajrec.tui.help_screen import HelpScreen
from trajrec.tui.key_hints import KeyHints
from trajrec.tui.library_screen import LibraryScreen
from trajrec.tui.prompt_bar import PromptBar
from trajrec.tui.state_pane import StatePane
from trajrec.tui.step_detail import StepDetail
from trajrec.tui.timeline import StepTimeline
from trajrec.tui.timeline_legend import TimelineLegend


def detail_text(app: TrajrecApp) -> str:
    return app.screen.query_one(StepDetail).text.plain


def test_step_keys_and_jumps(main_episode: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode])
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            assert step_of(app) == 0
            await pilot.press("l", "l", "right")
            assert step_of(app) == 3
            await pilot.press("h", "left")
            assert step_of(app) == 1
            await pilot.press("G")
            assert step_of(app) == len(MAIN_ACTIONS) - 1
            await pilot.press("l")  # past the end: stays
            assert step_of(app) == len(MAIN_ACTIONS) - 1
            await pilot.press("g")
            assert step_of(app) == 0
            await pilot.press("h")  # before the start: stays
            assert step_of(app) == 0
            await pilot.press("down", "j")  # the focused timeline's own keys
            assert step_of(app) == 2
            await pilot.pause()
            assert "write notes.txt hello" in detail_text(app)
            assert app.screen.query_one(TimelineLegend).step == 2
    asyncio.run(run())


def test_failures_and_recoveries(main_episode: Path) -> None:
    # Failures are steps 0, 3, 4 (tool errors) and 7 (exception); recoveries are steps 1 and 6.
    async def run() -> None:
        app = create_app([main_episode])
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            seen = []
            for _ in range(4):
                await pilot.press("n")
                seen.append(step_of(app))
            assert seen == [3, 4, 7, 7]
            assert "no next failure" in app.screen.query_one(TimelineLegend).note
            await pilot.press("N", "N")
            assert step_of(app) == 3
            await pilot.press("g", "r")
            assert step_of(app) == 1
            await pilot.press("r")
            assert step_of(app) == 6
            await pilot.press("R")
            assert step_of(app) == 1
            await pilot.press("l", "l", "l", "l", "l", "l", "l")  # step 8
            await pilot.press("N")
            assert step_of(app) == 7
            await pilot.pause()
            assert "RuntimeError" in detail_text(app) and "the tool crashed" in detail_text(app)
    asyncio.run(run())


def test_seek_waits_for_the_marker_index(main_episode: Path) -> None:
    # Pressed before the marker worker reports, `n` is remembered and resolved when the markers arrive.
    async def run() -> None:
        app = create_app([main_episode])
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, EpisodeScreen))
            screen = app.screen
            assert isinstance(screen, EpisodeScreen)
            # The real scan first runs to its end, so none of its reports can arrive after the reset below.
            await until(pilot, lambda: screen._scanned >= len(screen._markers))
            screen._scanned = 0  # as if the worker had not reported yet
            screen._markers[:] = bytes([255]) * len(screen._markers)
            await pilot.press("n")
            assert step_of(app) == 0 and "looking for the next failure" in screen.query_one(TimelineLegend).note
            screen._scan_markers(screen.episode.path, screen._generation)
            await until(pilot, lambda: step_of(app) == 3)
    asyncio.run(run())


def test_goto_step(main_episode: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode])
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            await pilot.press("colon")
            await until(pilot, lambda: app.screen.query_one(PromptBar).asking)
            await pilot.press("6", "enter")
            await until(pilot, lambda: isinstance(app.screen, EpisodeScreen))
            assert step_of(app) == 6
            await pilot.press("colon", "minus", "2", "enter")
            await until(pilot, lambda: isinstance(app.screen, EpisodeScreen) and step_of(app) == 8)
            await pilot.press("colon", "9", "9", "enter")  # out of range: goes to the last step, says so
            await until(pilot, lambda: isinstance(app.screen, EpisodeScreen) and step_of(app) == 9)
            assert "out of range" in app.screen.query_one(TimelineLegend).note
            await pilot.press("colon", "x", "escape")  # escape cancels
            await until(pilot, lambda: not app.screen.query_one(PromptBar).asking)
            assert step_of(app) == 9
            # A tester typed 1e3: the old key filter dropped the "e" and went to step 13 (out of range: the last).
            await pilot.press("g", "colon", "1", "e", "3", "enter")
            await until(pilot, lambda: "not a step number: '1e3'" in app.screen.query_one(TimelineLegend).note)
            assert step_of(app) == 0
            await pilot.press("colon", "1", ",", "0", "0", "0", "enter")  # counts as the prompt writes them
            await until(pilot, lambda: "step 1,000 is out of range" in app.screen.query_one(TimelineLegend).note)
            await pilot.press("colon", "3", "enter")
            await until(pilot, lambda: step_of(app) == 3)
    asyncio.run(run())


def test_search_jumps_to_next_match_and_wraps(main_episode: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode])
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            await pilot.press("slash", *"TODO", "enter")  # any case; matches actions and observations
            await until(pilot, lambda: step_of(app) == 3)
            await pilot.press("slash", "enter")  # the last query is kept: next match
            await until(pilot, lambda: step_of(app) == 4)
            await pilot.press("slash")
            await until(pilot, lambda: app.screen.query_one(PromptBar).asking)
            await pilot.press(*"\b\b\b\b", *"notes first", "enter")  # a note's text (step 0: wraps around)
            await until(pilot, lambda: step_of(app) == 0)
            assert "wrapped" in app.screen.query_one(TimelineLegend).note
            await pilot.press("slash", *"zzz-nothing", "enter")
            await until(pilot, lambda: "not found" in app.screen.query_one(TimelineLegend).note)
            assert step_of(app) == 0
    asyncio.run(run())


def test_playback_starts_stops_and_changes_speed(main_episode: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode])
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_ready(pilot)
            legend = screen.query_one(TimelineLegend)
            for _ in range(4):
                await pilot.press("greater_than_sign")
            assert screen.speed == 32.0 and legend.speed == 32.0
            await pilot.press("less_than_sign", "greater_than_sign", "less_than_sign")
            assert screen.speed == 16.0
            await pilot.press("space")
            assert screen.playing and legend.playing
            await until(pilot, lambda: step_of(app) >= 2)
            await pilot.press("space")
            assert not screen.playing and not legend.playing
            stopped_at = step_of(app)
            await pilot.pause(0.3)
            assert step_of(app) == stopped_at
            await pilot.press("space")  # plays to the end, then stops by itself
            await until(pilot, lambda: not screen.playing, timeout=5)
            assert step_of(app) == len(MAIN_ACTIONS) - 1
    asyncio.run(run())


def test_state_pane_toggles_and_steps_back_in_time(main_episode: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode])
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            body = lambda: app.screen.query_one(StatePane).text.plain  # noqa: E731
            await pilot.press("g", "l", "l")  # step 2 writes notes.txt
            await pilot.pause()
            assert "+ files['notes.txt'] = hello" in body() or "files['notes.txt']" in body()
            await pilot.press("s")
            await pilot.pause()
            assert app.screen.query_one(StatePane).mode == "state"
            assert '"notes.txt": "hello"' in body()
            assert "todo.txt" not in body().split("changed here")[-1].split("\n", 1)[-1]
            await pilot.press("G")
            await pilot.pause()
            assert '"todo.txt"' not in body()  # removed at step 8
            await pilot.press("colon", "5", "enter")
            await until(pilot, lambda: isinstance(app.screen, EpisodeScreen) and step_of(app) == 5)
            await pilot.pause()
            assert '"todo.txt": "buy milk"' in body()  # back in time: the state as it was at step 5
            await pilot.press("s")
            await pilot.pause()
            assert app.screen.query_one(StatePane).mode == "diff"
    asyncio.run(run())


def test_help_opens_and_closes(main_episode: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode])
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            await pilot.press("question_mark")
            await until(pilot, lambda: isinstance(app.screen, HelpScreen))
            text = str(app.screen.query_one("#help-body").render())
            for binding in EpisodeScreen.BINDINGS:
                assert binding.tooltip or binding.description in text
            assert "Step markers" in text and "tool error" in text
            await pilot.press("question_mark")
            await until(pilot, lambda: isinstance(app.screen, EpisodeScreen))
            await pilot.press("f1")
            await until(pilot, lambda: isinstance(app.screen, HelpScreen))
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, EpisodeScreen))
    asyncio.run(run())


def test_q_quits_when_opened_on_a_file_and_goes_back_from_a_library(main_episode: Path, library: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode], step=-2)
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            assert step_of(app) == len(MAIN_ACTIONS) - 2  # --step -2
            await pilot.press("q")
            await pilot.pause()
            assert not app.is_running
        app = create_app([library])
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            await pilot.press("enter")
            await open_ready(pilot)
            await pilot.press("q")
            await until(pilot, lambda: isinstance(app.screen, LibraryScreen))
            assert app.is_running
    asyncio.run(run())


def test_escape_does_not_quit_a_viewer_opened_on_a_file(main_episode: Path, library: Path) -> None:
    """One file: escape (pressed to leave prompts, zoom, help) stays and says q quits; the hints say "q Quit"."""
    async def run() -> None:
        app = create_app([main_episode])
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_ready(pilot)
            await pilot.press("escape", "escape")
            await pilot.pause()
            assert app.is_running and app.screen is screen
            assert any("q quits" in str(n.message) for n in app._notifications)
            assert " q Quit " in str(screen.query_one(KeyHints).render())
            await pilot.press("q")
            await pilot.pause()
            assert not app.is_running
        app = create_app([library])
        async with app.run_test(size=SIZE) as pilot:  # from the library, escape still goes back
            await until(pilot, lambda: app.library.scan_done)
            await pilot.press("enter")
            screen = await open_ready(pilot)
            assert " q Back " in str(screen.query_one(KeyHints).render())
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, LibraryScreen))
            assert app.is_running
    asyncio.run(run())


@pytest.mark.parametrize("where", ["episode", "library"])
def test_help_lists_every_bound_key(main_episode: Path, library: Path, where: str) -> None:
    """Every key Textual would dispatch on the screen (the app's, the screen's and each focusable pane's
    bindings, inherited ones too) has a row in the help; j and k among them."""
    async def run() -> None:
        app = create_app([main_episode if where == "episode" else library])
        async with app.run_test(size=SIZE) as pilot:
            if where == "episode":
                screen = await open_ready(pilot)
            else:
                await until(pilot, lambda: app.library.scan_done)
                screen = app.screen
            nodes = [app, screen, *(w for w in screen.query("*") if w.can_focus and not isinstance(w, Input))]
            bound = {key for node in nodes for key in node._bindings.key_to_bindings
                     if not any(b.action.endswith("command_palette") for b in node._bindings.key_to_bindings[key])}
            await pilot.press("question_mark")
            await until(pilot, lambda: isinstance(app.screen, HelpScreen))
            help_screen = app.screen
            listed = {k for _title, bindings in help_screen._sections for b in bindings for k in b.key.split(",")}
            assert bound - listed == set()
            rows = [line.split() for line in help_screen.help_text().plain.splitlines() if line.startswith("  ")]
            assert ["↓,", "j", "Next", "step" if where == "episode" else "episode"] in [r[:4] for r in rows]
            assert ["↑,", "k", "Previous", "step" if where == "episode" else "episode"] in [r[:4] for r in rows]
    asyncio.run(run())


def test_detail_shows_note_failure_links_and_checks(main_episode: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode])
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            text = detail_text(app)
            assert "thought: look for the notes first" in text and "tool_error" in text and "no such file" in text
            await pilot.press("l")
            await pilot.pause()
            assert "recovers step 0" in detail_text(app)
            await pilot.press("l")
            await pilot.pause()
            text = detail_text(app)
            assert "lint@1" in text and "file names are lower-case" in text
            await pilot.press("colon", "6", "enter")
            await until(pilot, lambda: isinstance(app.screen, EpisodeScreen) and step_of(app) == 6)
            await pilot.pause()
            assert "recovers steps 3, 4" in detail_text(app)
            assert isinstance(app.screen.query_one(StepDetail), StepDetail)
            assert app.screen.query_one(StepTimeline).cursor == 6
    asyncio.run(run())
