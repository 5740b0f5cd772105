"""The library screen driven headless: streaming rows, filter, sorting, opening, H/L between episodes."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from textual.widgets import Input
from tui_helpers import SIZE, open_ready, record, step_of, until

from trajrec.replay.library import ScanBatch
from trajrec.tui.app import create_app
from trajrec.tui.episode_screen import EpisodeScreen
from trajrec.tui.episode_table import EpisodeTable
from trajrec.tui.library_screen import LibraryScreen
from trajrec.tui.scan_status import ScanStatus
from trajrec.tui.step_detail import StepDetail


def task_ids(table: EpisodeTable) -> list[str]:
    return [e.task_id for e in table.rows]


def test_rows_filter_and_clear(library: Path) -> None:
    async def run() -> None:
        app = create_app([library])
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            table = app.screen.query_one(EpisodeTable)
            assert task_ids(table) == ["notes-1", "notes-2", "notes-3", "notes-4"]
            await pilot.press("slash", *"faulty")
            assert task_ids(table) == ["notes-1", "notes-2"]  # episodes with a failed step
            assert app.screen.query_one(ScanStatus).shown == 2
            await pilot.press(*" -recovered")
            assert task_ids(table) == ["notes-2"]
            await pilot.press("enter")  # back to the table, filter kept
            assert table.has_focus and task_ids(table) == ["notes-2"]
            await pilot.press("escape")  # clears the filter
            assert task_ids(table) == ["notes-1", "notes-2", "notes-3", "notes-4"]
            filter_input = app.screen.query_one("#library-filter", Input)
            for query, expected in [("outcome:pass", ["notes-1", "notes-3"]), ("readme", ["notes-4"]),
                                    ("env:notes -outcome:passed", ["notes-2", "notes-4"]),
                                    ('"failed"', []), ("env:nothing", [])]:
                filter_input.value = query
                await pilot.pause()
                assert task_ids(table) == expected, query
            filter_input.value = "evn:notes"  # a typo of a key: said, and the last good filter stays
            await pilot.pause()
            assert "did you mean 'env'" in app.screen.query_one(ScanStatus).problem
            assert task_ids(table) == []
    asyncio.run(run())


def test_bad_filter_typed_is_shown_on_screen(library: Path) -> None:
    """Typed like a user: the error line is drawn (the status grows a line), as ``ls --where`` says it."""
    async def run() -> None:
        app = create_app([library])
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            status = app.screen.query_one(ScanStatus)
            table = app.screen.query_one(EpisodeTable)
            heights = {}
            for query, said in [("fail>0", "unknown field 'fail' (did you mean 'failures'?)"),
                                ("failures>abc", "'abc' is not a number"),
                                ("foo:bar", "unknown field 'foo'; fields: episode")]:
                await pilot.press("escape", "escape", "slash", *query, "enter")
                await pilot.pause()
                assert said in status.problem, query
                heights[query] = status.region.height
            await pilot.press("escape")  # clears the filter: the message goes
            await pilot.pause()
            assert status.problem == "" and len(table.rows) == 4
            # The message is on screen, not just stored: the status line grew by its lines.
            assert all(h > status.region.height for h in heights.values()), (heights, status.region)
    asyncio.run(run())


def test_sort_by_keys_and_header_click(library: Path) -> None:
    async def run() -> None:
        app = create_app([library])
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            table = app.screen.query_one(EpisodeTable)
            await pilot.press("3")  # column 3: steps
            assert [e.steps for e in table.rows] == [2, 3, 3, 10]
            await pilot.press("3")  # again: reversed
            assert [e.steps for e in table.rows] == [10, 3, 3, 2]
            await pilot.press("S")
            assert [e.steps for e in table.rows] == [2, 3, 3, 10]
            await pilot.press("s")  # next column after steps: return
            assert table.sort_column == "return"
            assert [e.ret for e in table.rows] == [0.0, 1.0, 1.0, 1.0]
            # Click the "fail" header (x of its column): sorts by failures.
            x = sum(w + 1 for w in table._widths(table.scrollable_content_region.width)[:5]) + 1
            await pilot.click(EpisodeTable, offset=(x, 0))
            assert table.sort_column == "failures"
            assert [e.failures for e in table.rows] == [0, 0, 2, 4]
            assert "failures ▲" in app.screen.query_one(ScanStatus).sort
    asyncio.run(run())


def test_open_then_walk_episodes_in_library_order(library: Path) -> None:
    async def run() -> None:
        app = create_app([library])
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            await pilot.press("3", "3")  # by steps, descending: notes-1 (10), notes-2, notes-4 (3), notes-3 (2)
            await pilot.press("enter")
            screen = await open_ready(pilot)
            assert screen.episode.task["id"] == "notes-1"
            await pilot.press("l", "l")
            await pilot.press("L")
            await until(pilot, lambda: screen.episode.task["id"] == "notes-2" and screen.markers_ready)
            assert step_of(app) == 0  # a new episode opens at its first step
            await pilot.press("L", "L")
            await until(pilot, lambda: screen.episode.task["id"] == "notes-3")
            await pilot.press("L")  # the last one: stays, says so
            await pilot.pause()
            assert screen.episode.task["id"] == "notes-3"
            await pilot.press("H")
            await until(pilot, lambda: screen.episode.task["id"] == "notes-4")
            await pilot.press("q")
            await until(pilot, lambda: isinstance(app.screen, LibraryScreen))
            table = app.screen.query_one(EpisodeTable)
            assert table.current is not None and table.current.task_id == "notes-4"  # the library follows
    asyncio.run(run())


def test_labeled_column_uses_the_provider(library: Path) -> None:
    calls: list[tuple[str, int]] = []
    labels = {"notes-1": 0.5}

    def labeled_fraction(episode_path: str, episode_id: str, n_steps: int) -> float | None:
        calls.append((episode_id, n_steps))
        return 1.0 if n_steps == 2 else None

    async def run() -> None:
        app = create_app([library], labeled_fraction=labeled_fraction)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            table = app.screen.query_one(EpisodeTable)
            assert sorted(n for _, n in calls) == [2, 3, 3, 10]
            assert [e.labeled for e in table.rows] == [None, None, 1.0, None]
            line = "".join(s.text for s in table.render_line(3))  # row 3 of the screen: notes-3
            assert "100%" in line
            line = "".join(s.text for s in table.render_line(1))
            assert " - " in line
            assert labels  # the provider is asked again when the user comes back from an episode
            await pilot.press("enter")
            await open_ready(pilot)
            calls.clear()
            await pilot.press("q")
            await until(pilot, lambda: isinstance(app.screen, LibraryScreen) and bool(calls))
            assert [n for _, n in calls] == [10]
    asyncio.run(run())


def test_unreadable_files_are_rows_not_crashes(library: Path) -> None:
    (library / "broken.msgpack.zst").write_bytes(b"not an episode at all")

    async def run() -> None:
        app = create_app([library])
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            table = app.screen.query_one(EpisodeTable)
            broken = [e for e in table.rows if e.error]
            assert len(broken) == 1 and broken[0].outcome == "unreadable"
            table.select_path(broken[0].path)
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, LibraryScreen)  # a notice, no crash
    asyncio.run(run())


def test_episode_screen_of_empty_episode(tmp_path: Path) -> None:
    path = record(tmp_path, [])

    async def run() -> None:
        app = create_app([path])
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, EpisodeScreen))
            await pilot.press("l", "n", "space", "colon", "slash", "G")
            await pilot.pause()
            assert "no steps recorded" in app.screen.query_one(StepDetail).text.plain
    asyncio.run(run())


def test_header_counts_the_rows_shown_and_says_empty_files_were_skipped(library: Path) -> None:
    """An empty stub (a writer killed at its first write) is no row: the count is the rows', the stub is said."""
    (library / "stub.msgpack.zst").write_bytes(b"")

    async def run() -> None:
        app = create_app([library])
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            status = app.screen.query_one(ScanStatus)
            rows = len(app.screen.query_one(EpisodeTable).rows)
            assert rows == 4 and status.episodes == rows
            assert f"  ·  {rows} episodes  ·  1 empty file skipped" in str(status.render()).splitlines()[0]
    asyncio.run(run())
    asyncio.run(run())  # again from the summary cache


def test_big_library_filters_and_sorts_in_a_worker(library: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Over SYNC_ROWS entries the view is computed in a thread: the same rows arrive, the newest view wins,
    the cursor stays on its episode, and batches arriving under a filter are filtered as they come."""
    monkeypatch.setattr(LibraryScreen, "SYNC_ROWS", 0)

    async def run() -> None:
        app = create_app([library])
        async with app.run_test(size=SIZE) as pilot:
            screen = app.library
            await until(pilot, lambda: screen.scan_done)
            table = app.screen.query_one(EpisodeTable)
            await pilot.press("slash", *"faulty")  # every keystroke starts a view; only the last one shows
            await until(pilot, lambda: screen.view_ready)
            assert task_ids(table) == ["notes-1", "notes-2"]
            await pilot.press("enter", "j", "S")  # cursor on notes-2, then reverse the order
            await until(pilot, lambda: screen.view_ready)
            assert task_ids(table) == ["notes-2", "notes-1"] and table.current.task_id == "notes-2"
            await pilot.press("escape")
            await until(pilot, lambda: screen.view_ready and len(table.rows) == 4)
            assert task_ids(table) == ["notes-4", "notes-3", "notes-2", "notes-1"]

        # Batches arriving under a filter (a big run still being read) are filtered on arrival, in path order.
        app = create_app([library])
        async with app.run_test(size=SIZE) as pilot:
            screen = app.library
            await until(pilot, lambda: screen.scan_done)
            await pilot.press("slash", *"-faulty", "enter")
            await until(pilot, lambda: screen.view_ready)
            table = app.screen.query_one(EpisodeTable)
            assert task_ids(table) == ["notes-3", "notes-4"]
            more = [dataclasses.replace(e, path=f"{e.path}.later") for e in screen.entries]
            screen.post_message(LibraryScreen.EntriesRead(ScanBatch(more, 8, 8)))
            await until(pilot, lambda: len(screen.entries) == 8)
            assert [e.path for e in table.rows] == [e.path for e in screen.entries if not e.failures]
            assert task_ids(table) == ["notes-3", "notes-4", "notes-3", "notes-4"]
    asyncio.run(run())
