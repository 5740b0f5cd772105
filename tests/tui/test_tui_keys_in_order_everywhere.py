"""Keys act in the order typed, however fast, everywhere (FINDINGS23): the editing keys of a prompt typed just
before enter, the keys typed after L/H or after the library's enter (they are the newly opened episode's), the
library's filter, and the focus after a prompt. Keys are sent with ``burst`` (all queued at once, as a terminal
delivers a paste or ``tmux send-keys``), and labels are read back through a fresh ``LabelStore``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import Input
from tui_helpers import SIZE, burst, open_ready, step_of, until

from trajrec.recorder import open_episode
from trajrec.replay.labels import LabelStore
from trajrec.tui.app import create_app
from trajrec.tui.episode_screen import EpisodeScreen
from trajrec.tui.library_screen import LibraryScreen


def labels_of(path: str | Path) -> list[tuple[int, int, str | None]]:
    """(step, value, rationale) of the episode's live labels, by step."""
    with open_episode(path) as ep:
        episode_id = ep.episode_id
    return sorted((lab.target, lab.value, lab.rationale) for lab in LabelStore.for_path(path).current(episode_id))


def test_a_prompts_editing_keys_typed_before_enter_act_in_order(main_episode: Path) -> None:
    """#1: backspace, left, home, end, ctrl+u typed in one burst with the text and enter edit the text before
    enter answers (they were looked up after the answer, and lost)."""
    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_ready(pilot)
            burst(app, "c", *"abc", "backspace", "backspace", "left", "X", "enter")
            await until(pilot, lambda: labels_of(main_episode) != [])
            assert labels_of(main_episode) == [(0, 0, "Xa")]
            burst(app, ":", "1", "2", "backspace", "enter")
            await until(pilot, lambda: step_of(app) == 1)
            burst(app, "c", *"zz", "ctrl+u", *"ok", "home", "[", "end", "]", "enter", "plus")
            await until(pilot, lambda: len(labels_of(main_episode)) == 2)
            await pilot.pause()
            assert labels_of(main_episode) == [(0, 0, "Xa"), (1, 1, "[ok]")]
            assert "out of range" not in screen.query_one("TimelineLegend").note
    asyncio.run(run())


def test_keys_after_next_episode_are_the_next_episodes(library: Path) -> None:
    """#2: L (or H) then ratings in one burst: the ratings land on the episode L opened."""
    async def run() -> None:
        app = create_app([library], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            burst(app, "enter")
            screen = await open_ready(pilot)
            first = screen.episode.path
            delta = 1 if app.library.neighbor(first, 1) is not None else -1
            target = app.library.neighbor(first, delta)
            assert target is not None
            burst(app, "L" if delta > 0 else "H", "plus", "l", "minus")
            await until(pilot, lambda: len(labels_of(target)) == 2)
            await pilot.pause()
            assert screen.episode.path == target
            assert labels_of(target) == [(0, 1, None), (1, -1, None)]
            assert labels_of(first) == []
            assert step_of(app) == 1
    asyncio.run(run())


def test_focus_comes_back_to_the_pane_a_prompt_was_opened_from(main_episode: Path) -> None:
    """#4: a note asked from the step pane gives the focus back to it, so its scroll keys do not move steps."""
    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_ready(pilot)
            burst(app, "tab")
            await until(pilot, lambda: screen.focused is not None and screen.focused is not screen.query_one(
                "StepTimeline"))
            pane = screen.focused
            burst(app, "c", "x", "enter", "down", "down")
            await until(pilot, lambda: labels_of(main_episode) == [(0, 0, "x")])
            await pilot.pause()
            assert screen.focused is pane
            assert step_of(app) == 0
    asyncio.run(run())


def test_library_filter_and_enter_keep_their_order(library: Path) -> None:
    """#3: the filter's editing keys typed with "/" and enter edit it (ctrl+u was lost); enter on the table
    then "/" opens the episode and searches it (the "/" and the text went into the library's filter)."""
    async def run() -> None:
        app = create_app([library], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            field = app.library.query_one("#library-filter", Input)
            burst(app, "/", *"faileddoned", "enter")
            await until(pilot, lambda: field.value == "faileddoned" and app.library.focused is not field)
            burst(app, "/", "ctrl+u", *"notes", "backspace", "enter")
            await until(pilot, lambda: field.value == "note" and app.library.focused is not field)
            burst(app, "escape", "/", "backspace", "backspace", "backspace", "backspace", "enter")
            await until(pilot, lambda: field.value == "" and app.library.focused is not field)
            # Enter opens the episode; the keys after it are the episode's: its search, then a rating.
            burst(app, "enter", "/", *"cat", "enter", "plus")
            await until(pilot, lambda: isinstance(app.screen, EpisodeScreen) and app.screen.last_query == "cat")
            screen = app.screen
            await until(pilot, lambda: len(labels_of(screen.episode.path)) == 1)
            assert field.value == ""
            assert isinstance(app.screen_stack[-2], LibraryScreen)
            step = labels_of(screen.episode.path)[0][0]
            assert step == screen.step_index
    asyncio.run(run())
