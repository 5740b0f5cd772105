"""The keys typed after a library key that changes the rows (the filter's enter, escape clearing the filter, a
sort) act on the new rows, however fast they come: the rule the episode screen's marker jumps follow
(FINDINGS32 #1), found broken here while fixing them. The filter was applied on the filter input's Changed
message, which comes a turn after the keys, so in ``/ -faulty enter enter`` (one ``tmux send-keys``) the second
enter opened the first row of the *unfiltered* table, an episode the filter leaves out; and a library too large
to filter and sort at once (over ``SYNC_ROWS`` entries, made 0 here) computes its rows in a worker, so ``3 g
enter`` opened the first episode of the old order.

Keys are sent with ``burst`` (all queued at once, as a terminal delivers a paste or ``tmux send-keys``). The
library is ``make_library``'s four episodes, in path order notes-1 (10 steps, failures), notes-2 (3 steps,
failures), notes-3 (2 steps), notes-4 (3 steps). A slow view is made deterministic, not timed: the view
function waits on a gate the test opens, and the stale-hold guard is shortened to a few milliseconds."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from tui_helpers import SIZE, burst, until

from trajrec.recorder import open_episode
from trajrec.tui import key_order, library_screen
from trajrec.tui.app import create_app
from trajrec.tui.episode_screen import EpisodeScreen
from trajrec.tui.episode_table import EpisodeTable
from trajrec.tui.library_screen import LibraryScreen
from trajrec.tui.scan_status import ScanStatus


def opened_task(app: Any) -> str:
    """The task id of the episode the app's episode screen shows."""
    with open_episode(app.screen.episode.path) as ep:
        return str(ep.header["task"]["env_kwargs"]["task_id"])


def task_ids(app: Any) -> list[str]:
    return [e.task_id for e in app.library.query_one(EpisodeTable).rows]


@pytest.mark.parametrize("big", [False, True], ids=["small", "big"])
def test_enter_after_the_filters_enter_opens_a_filtered_row(library: Path, monkeypatch: pytest.MonkeyPatch,
                                                            big: bool) -> None:
    """``/ -faulty enter enter``: the second enter opens the first episode the filter keeps (notes-3)."""
    if big:
        monkeypatch.setattr(LibraryScreen, "SYNC_ROWS", 0)

    async def run() -> None:
        app = create_app([library])
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            burst(app, "/", *"-faulty", "enter", "enter")
            await until(pilot, lambda: isinstance(app.screen, EpisodeScreen))
            assert opened_task(app) == "notes-3"
            assert task_ids(app) == ["notes-3", "notes-4"]
    asyncio.run(run())


@pytest.mark.parametrize("big", [False, True], ids=["small", "big"])
def test_keys_after_escape_clears_the_filter_act_on_every_row(library: Path, monkeypatch: pytest.MonkeyPatch,
                                                              big: bool) -> None:
    """Escape clears the filter; ``g enter`` typed with it opens the first of all rows (notes-1), not the first
    row the filter kept (notes-3)."""
    if big:
        monkeypatch.setattr(LibraryScreen, "SYNC_ROWS", 0)

    async def run() -> None:
        app = create_app([library])
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            burst(app, "/", *"-faulty", "enter")
            await until(pilot, lambda: app.library.view_ready and task_ids(app) == ["notes-3", "notes-4"])
            burst(app, "escape", "g", "enter")
            await until(pilot, lambda: isinstance(app.screen, EpisodeScreen))
            assert opened_task(app) == "notes-1"
            assert len(task_ids(app)) == 4
    asyncio.run(run())


def test_keys_after_a_sort_of_a_big_library_act_on_the_sorted_rows(library: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """``3 g enter`` (sort by steps, first row, open) in a library sorted in a worker: the shortest episode
    (notes-3, 2 steps) opens, not the first of the path order (notes-1)."""
    monkeypatch.setattr(LibraryScreen, "SYNC_ROWS", 0)

    async def run() -> None:
        app = create_app([library])
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.library.scan_done and app.library.view_ready)
            burst(app, "3", "g", "enter")
            await until(pilot, lambda: isinstance(app.screen, EpisodeScreen))
            assert opened_task(app) == "notes-3"
            assert app.library.sort_column == "steps" and task_ids(app)[0] == "notes-3"
    asyncio.run(run())


class SlowView:
    """Makes the next view computations wait (checking for their cancellation) until :attr:`gate` is opened."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.gate = threading.Event()
        self.waiting = threading.Event()
        gate, waiting, real = self.gate, self.waiting, library_screen._view_rows

        def slow(*args: Any, cancelled: Any = None) -> Any:
            waiting.set()
            while not gate.wait(0.005):
                if cancelled is not None and cancelled():
                    return None
            return real(*args, cancelled=cancelled)

        monkeypatch.setattr(library_screen, "_view_rows", slow)
        monkeypatch.setattr(LibraryScreen, "SYNC_ROWS", 0)
        monkeypatch.setattr(key_order, "STALE_HOLD_SECONDS", 0.01)  # the short holds' guard: a view ignores it


def test_keys_wait_for_a_slow_view_and_escape_stops_the_wait(library: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sort slower than the stale-hold guard: the keys after it wait (the status line says so) and then act on
    the sorted rows. Escape while they wait drops them (said), the sort still arrives, and the library stays."""
    async def run() -> None:
        app = create_app([library])
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.library.scan_done and app.library.view_ready)
            view = SlowView(monkeypatch)
            status = app.library.query_one(ScanStatus)
            burst(app, "3", "g", "enter")
            await until(pilot, lambda: view.waiting.is_set())
            await pilot.pause(0.1)  # ten times the (shortened) stale-hold guard: the view's hold is not dropped
            assert isinstance(app.screen, LibraryScreen)
            assert status.search == "filtering and sorting…: keys wait (escape cancels)"
            view.gate.set()
            await until(pilot, lambda: isinstance(app.screen, EpisodeScreen))
            assert opened_task(app) == "notes-3"
            burst(app, "q")
            await until(pilot, lambda: isinstance(app.screen, LibraryScreen))

            view.gate.clear()
            view.waiting.clear()
            burst(app, "S", "g", "enter", "escape")  # reverse the order; escape while the keys wait
            await until(pilot, lambda: "dropped" in status.search)
            assert status.search == "filtering and sorting…; 2 keys typed after it dropped"
            view.gate.set()
            await until(pilot, lambda: app.library.view_ready)
            await pilot.pause()
            assert isinstance(app.screen, LibraryScreen) and task_ids(app)[-1] == "notes-3"
            assert app.library.sort_reverse and app.library.query_one("#library-filter").value == ""
    asyncio.run(run())
