"""ctrl+r redoes what u took back, last undone first, as new versions (the store keeps every version); a new
labeling action ends what can be redone; a label changed by another process since is not redone."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tui_helpers import SIZE, open_ready, step_of, until

from trajrec.recorder import open_episode
from trajrec.replay.labels import Label, LabelStore
from trajrec.tui.app import create_app
from trajrec.tui.prompt_bar import PromptBar
from trajrec.tui.timeline_legend import TimelineLegend


def live(path: Path) -> list[tuple[int, object, str | None]]:
    with open_episode(path) as ep:
        return [(x.target, x.value, x.rationale) for x in LabelStore.for_path(path).current(ep.episode_id)]


def test_redo_after_undo(main_episode: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_ready(pilot)
            legend = screen.query_one(TimelineLegend)
            bar = screen.query_one(PromptBar)
            await pilot.press("plus", "minus", "c", *"why", "enter")
            await until(pilot, lambda: not bar.asking and live(main_episode) == [(0, -1, "why")])
            await pilot.press("u", "u", "u")
            await until(pilot, lambda: live(main_episode) == [])
            await pilot.press("l", "l", "ctrl+r")  # the cursor goes back to the step redone
            await until(pilot, lambda: live(main_episode) == [(0, 1, None)] and step_of(app) == 0)
            assert legend.note == "redid step 0: rated +1"
            await pilot.press("ctrl+r", "ctrl+r")
            await until(pilot, lambda: live(main_episode) == [(0, -1, "why")])
            await pilot.press("ctrl+r")
            await until(pilot, lambda: legend.note == "nothing to redo")
            await pilot.press("u")  # a redone action is undone like any other
            await until(pilot, lambda: live(main_episode) == [(0, -1, None)])
            await pilot.press("l", "plus", "ctrl+r")  # a new action: nothing left to redo
            await until(pilot, lambda: legend.note == "nothing to redo")
            assert live(main_episode) == [(0, -1, None), (1, 1, None)]
            # Changed from a terminal after the undo: not redone, and said so.
            await pilot.press("u")
            await until(pilot, lambda: live(main_episode) == [(0, -1, None)])
            with open_episode(main_episode) as ep:
                LabelStore.for_path(main_episode).add(ep.episode_id, 1, 0, judge="human:ana", rationale="terminal")
            await pilot.press("ctrl+r")
            await until(pilot, lambda: any(n.title == "cannot redo" for n in app._notifications))
            assert live(main_episode) == [(0, -1, None), (1, 0, "terminal")]
    asyncio.run(run())
