"""The library's ``labeled`` column picks up labels other processes wrote while an episode was open: the episode
screen reads its folder's labels every couple of seconds, so by the time the user comes back the library's own
read finds nothing new; the column must still show them (on return, and on the library's periodic read)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tui_helpers import SIZE, open_ready, until

import trajrec.tui.episode_screen
from trajrec.replay.labels import LabelStore
from trajrec.tui.app import create_app
from trajrec.tui.library_screen import LibraryScreen


@pytest.fixture(autouse=True)
def _quick_episode_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    # The episode screen reads other writers' labels often, so it surely reads them before the user goes back.
    monkeypatch.setattr(trajrec.tui.episode_screen, "LABEL_REFRESH_SECONDS", 0.05)


def test_labels_written_while_an_episode_was_open_show_in_the_library(library: Path) -> None:
    async def run() -> None:
        app = create_app([library], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            entries = {e.task_id: e for e in app.library.entries}
            assert all(e.labeled is None for e in entries.values())
            await pilot.press("enter")
            screen = await open_ready(pilot)
            opened = screen.episode.episode_id
            other = next(e for e in entries.values() if e.episode_id != opened and Path(e.path).parent.name == "a")
            # Another process (trajrec label auto, a colleague) labels an episode of the same folder: the episode
            # screen reads it (its folder's store is the library's).
            LabelStore(Path(other.path).parent).add(other.episode_id, 0, 1, judge="human:bob")
            store = app.labels.store_for(other.path)
            await until(pilot, lambda: bool(store.current(other.episode_id)))
            await pilot.press("q")
            await until(pilot, lambda: isinstance(app.screen, LibraryScreen))
            await until(pilot, lambda: other.labeled is not None)
            assert other.labeled == pytest.approx(1 / other.steps)
            line = "\n".join("".join(s.text for s in app.screen.query_one("EpisodeTable").render_line(y))
                             for y in range(1, 6))
            assert f"{round(100 / other.steps)}%" in line
            # An episode of a folder with no labels yet, labeled while another episode is open: shown on return.
            await pilot.press("enter")
            await open_ready(pilot)
            third = next(e for e in entries.values() if Path(e.path).parent.name == "b")
            LabelStore(Path(third.path).parent).add(third.episode_id, "episode", "pass", judge="human:bob")
            LabelStore(Path(third.path).parent).add(third.episode_id, 1, 0, judge="human:bob")
            await pilot.press("q")
            await until(pilot, lambda: isinstance(app.screen, LibraryScreen))
            await until(pilot, lambda: third.labeled == pytest.approx(1 / third.steps))
    asyncio.run(run())
