"""The note, tag, go-to and search prompt keeps the focus until enter or escape: a tab (pressed by habit, or in
typed-ahead text) is a space in the answer, shift+tab and a click elsewhere leave the focus in it, and escape
cancels the prompt only (it neither leaves the episode nor loses the labels)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import Input
from tui_helpers import SIZE, burst, open_ready, step_of, until

from trajrec.recorder import open_episode
from trajrec.replay.labels import Label, LabelStore
from trajrec.tui.app import create_app
from trajrec.tui.episode_screen import EpisodeScreen
from trajrec.tui.library_screen import LibraryScreen
from trajrec.tui.prompt_bar import PromptBar
from trajrec.tui.timeline import StepTimeline


def live(path: Path) -> list[Label]:
    with open_episode(path) as ep:
        return LabelStore.for_path(path).current(ep.episode_id)


def test_tab_in_the_note_is_a_space(main_episode: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_ready(pilot)
            bar = screen.query_one(PromptBar)
            await pilot.press("c", *"ab", "tab", "shift+tab", *"cd+")
            assert bar.asking and screen.focused is bar.input
            assert bar.input.value == "ab cd+" and step_of(app) == 0 and not live(main_episode)
            await pilot.press("enter")
            await until(pilot, lambda: not bar.asking and screen.focused is screen.query_one(StepTimeline))
            [lab] = live(main_episode)
            assert (lab.target, lab.value, lab.rationale) == (0, 0, "ab cd+")
            # In one burst, as a paste or tmux send-keys types it: the same.
            burst(app, "l", "c", *"x", "tab", *"y", "enter", "plus")
            await until(pilot, lambda: len(live(main_episode)) == 2 and not bar.asking)
            await until(pilot, lambda: live(main_episode)[1].value == 1)
            assert [(x.target, x.value, x.rationale) for x in live(main_episode)] == [(0, 0, "ab cd+"),
                                                                                     (1, 1, "x y")]
            # A click on a pane while the prompt asks: the focus comes back to it; escape cancels it only.
            await pilot.press("c", *"zz")
            await pilot.click(StepTimeline)
            await until(pilot, lambda: screen.focused is bar.input)
            await pilot.press("tab", "escape")
            await until(pilot, lambda: not bar.asking and screen.focused is screen.query_one(StepTimeline))
            assert app.screen is screen and step_of(app) == 1
            assert [x.rationale for x in live(main_episode)] == ["ab cd+", "x y"]
    asyncio.run(run())


def test_tab_then_escape_in_the_library_stays_in_the_episode(library: Path) -> None:
    async def run() -> None:
        app = create_app([library], annotator="hal")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            await pilot.press("enter")
            screen = await open_ready(pilot)
            path = Path(screen.episode.path)
            await pilot.press("plus", "c", *"see", "tab", *"note", "escape")
            bar = screen.query_one(PromptBar)
            await until(pilot, lambda: not bar.asking)
            assert isinstance(app.screen, EpisodeScreen) and screen.session.can_undo  # still in the episode
            assert [(x.value, x.rationale) for x in live(path)] == [(1, None)]
            await pilot.press("c", *"see", "tab", *"note", "enter")
            await until(pilot, lambda: live(path)[0].rationale == "see note")
            await pilot.press("q")
            await until(pilot, lambda: isinstance(app.screen, LibraryScreen))
            # The library's own prompt (ctrl+f, search the steps) keeps the focus the same way.
            await pilot.press("ctrl+f", *"a", "tab", *"b")
            field = app.screen.query_one(PromptBar).query_one(Input)
            assert app.screen.focused is field and field.value == "a b"
            await pilot.press("escape")
    asyncio.run(run())
