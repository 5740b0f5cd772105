"""The keys typed after a step search's enter wait for its answer, however long it takes (FINDINGS25): the
episode's ``/`` search (#3: a search longer than the 2 s stale-hold guard put the rating on the old step; #2: a
search started after an earlier one's hold was dropped held nothing), and the library's ctrl+f search (#1: it
held nothing, so the enter typed after it opened the row under the cursor of the unfiltered table).

A slow search is made deterministic, not timed: the search function waits on a gate the test opens, and the
stale-hold guard is shortened to a few milliseconds, so a search hold that still obeyed it would be dropped
while the gate is closed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tui_helpers import SIZE, burst, open_ready, step_of, until

from trajrec.recorder import open_episode
from trajrec.replay.labels import LabelStore
from trajrec.tui import episode_screen, key_order, library_screen
from trajrec.tui.app import create_app
from trajrec.tui.episode_screen import EpisodeScreen
from trajrec.tui.step_scan import find_text


def labels_of(path: str | Path) -> list[tuple[int, int]]:
    """(step, value) of the episode's live labels, by step."""
    with open_episode(path) as ep:
        episode_id = ep.episode_id
    return sorted((lab.target, lab.value) for lab in LabelStore.for_path(path).current(episode_id))


class Gates:
    """Makes the next searches slow: each waits (checking for its cancellation) until its gate is opened."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, module: Any, count: int) -> None:
        self.gates = [threading.Event() for _ in range(count)]
        self.waiting = [threading.Event() for _ in range(count)]
        pending = list(zip(self.gates, self.waiting))
        lock = threading.Lock()

        def slow(path: str, query: str, start: int, cancelled: Callable[[], bool] | None = None,
                 progress: Callable[[int, int], None] | None = None) -> Any:
            with lock:
                gate, waiting = pending.pop(0) if pending else (None, None)
            if gate is not None and waiting is not None:
                if progress is not None:
                    progress(0, 10)
                waiting.set()
                while not gate.wait(0.005):
                    if cancelled is not None and cancelled():
                        break
            return find_text(path, query, start, cancelled=cancelled, progress=progress)

        monkeypatch.setattr(module, "find_text", slow)
        monkeypatch.setattr(key_order, "STALE_HOLD_SECONDS", 0.01)  # the short holds' guard: a search ignores it


def note(app: Any) -> str:
    return str(app.screen.query_one("TimelineLegend").note)


def test_a_rating_after_a_slow_search_lands_on_the_match(main_episode: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """#3: ``/ milk enter +`` in one burst, the search slower than the stale-hold guard: the rating waits (the
    screen says so) and lands on the match (step 5), not on step 0."""
    gates = Gates(monkeypatch, episode_screen, 1)

    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            burst(app, "/", *"milk", "enter", "plus")
            await until(pilot, lambda: gates.waiting[0].is_set())
            await pilot.pause(0.1)  # ten times the (shortened) stale-hold guard: a search's hold is not dropped
            assert labels_of(main_episode) == [] and step_of(app) == 0
            assert note(app) == "searching for 'milk'… 0%: keys wait (escape cancels)"
            gates.gates[0].set()
            await until(pilot, lambda: labels_of(main_episode) != [])
            assert labels_of(main_episode) == [(5, 1)] and step_of(app) == 5
    asyncio.run(run())


def test_escape_cancels_a_search_and_drops_the_keys_waiting_for_it(main_episode: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Escape acts at once while a search holds the keys: the search stops, the rating typed for its match is
    dropped (said on screen), the screen stays open and the next keys act at once."""
    Gates(monkeypatch, episode_screen, 1)  # never opened: only escape ends this search

    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            burst(app, "/", *"milk", "enter", "plus", "escape")
            await until(pilot, lambda: "cancelled" in note(app))
            assert "1 key typed after it dropped" in note(app)
            assert isinstance(app.screen, EpisodeScreen) and step_of(app) == 0
            burst(app, "j", "minus")
            await until(pilot, lambda: labels_of(main_episode) != [])
            assert labels_of(main_episode) == [(1, -1)]
    asyncio.run(run())


def test_a_search_typed_while_another_holds_waits_its_turn(main_episode: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """#2: a second search typed (with ``j -``) while a slow first one runs, past the stale-hold guard: it
    runs after the first answers (at step 5), and ``j -`` act at its match (-1 on the step after it)."""
    gates = Gates(monkeypatch, episode_screen, 1)

    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            burst(app, "/", *"milk", "enter")
            await until(pilot, lambda: gates.waiting[0].is_set())
            await pilot.pause(0.1)
            burst(app, "/", *"hello", "enter", "j", "minus")
            await pilot.pause(0.1)
            assert labels_of(main_episode) == [] and step_of(app) == 0
            gates.gates[0].set()
            await until(pilot, lambda: labels_of(main_episode) != [])
            match, _wrapped = find_text(str(main_episode), "hello", 5, cancelled=lambda: False)
            assert match is not None and labels_of(main_episode) == [(match + 1, -1)]
    asyncio.run(run())


def test_a_late_answer_of_an_earlier_search_releases_no_later_hold(main_episode: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """#2: each search owns its hold: the answer of an earlier search, arriving while a later one runs, neither
    moves the screen nor lets the keys waiting for the later one run."""
    gates = Gates(monkeypatch, episode_screen, 1)

    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_ready(pilot)
            burst(app, "/", *"milk", "enter", "plus")
            await until(pilot, lambda: gates.waiting[0].is_set())
            earlier = screen._searches - 1  # (as if an earlier search answered late)
            screen.post_message(EpisodeScreen.SearchDone(earlier, screen._generation, "notes", 2, False))
            await pilot.pause(0.1)
            assert labels_of(main_episode) == [] and step_of(app) == 0
            gates.gates[0].set()
            await until(pilot, lambda: labels_of(main_episode) != [])
            assert labels_of(main_episode) == [(5, 1)]
    asyncio.run(run())


def test_enter_after_a_library_step_search_opens_the_first_match(library: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """#1: ``ctrl+f readme enter enter`` in one burst, the cursor on an episode without "readme": the second
    enter waits for the search and opens the first episode found, at its match."""
    gates = Gates(monkeypatch, library_screen, 1)

    async def run() -> None:
        app = create_app([library], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            table = app.library.query_one("EpisodeTable")
            table.cursor = next(i for i, e in enumerate(table.rows) if e.task_id == "notes-2")
            unmatched = table.rows[table.cursor].path
            await pilot.pause()
            burst(app, "ctrl+f", *"readme", "enter", "enter")
            await until(pilot, lambda: gates.waiting[0].is_set())
            await pilot.pause(0.1)
            assert app.screen is app.library
            gates.gates[0].set()
            screen = await open_ready(pilot)
            hits = app.library.step_hits
            assert hits is not None and screen.episode.path in hits
            assert screen.episode.path != unmatched and screen.episode.path == table.rows[0].path
            await until(pilot, lambda: step_of(app) == hits[screen.episode.path])  # (the start step is shown
            # a turn after the screen: a wrong start stays wrong and times out)
    asyncio.run(run())


def test_escape_cancels_a_library_step_search(library: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Escape while the library's step search holds the keys: the search stops (every episode shown again), the
    enter typed for its answer is dropped (said in the status line), and the keys after escape act at once."""
    Gates(monkeypatch, library_screen, 1)  # never opened: only escape ends this search

    async def run() -> None:
        app = create_app([library], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            table = app.library.query_one("EpisodeTable")
            everyone = [e.path for e in table.rows]
            burst(app, "ctrl+f", *"readme", "enter", "enter", "escape")
            status = app.library.query_one("ScanStatus")
            await until(pilot, lambda: "cancelled" in str(status.search))
            assert "1 key typed after it dropped" in str(status.search)
            assert app.screen is app.library and app.library.step_hits is None
            assert [e.path for e in table.rows] == everyone
            burst(app, "enter")
            screen = await open_ready(pilot)
            assert screen.episode.path == table.current.path
    asyncio.run(run())
