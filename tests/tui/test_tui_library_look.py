"""What the library table draws: styled header and selected row, every column at 80 columns, the sort arrow in
narrow columns, unreadable files named; the help reaching its last line at 80 columns (issue 16)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.containers import VerticalScroll
from textual.strip import Strip
from textual.widgets import Static
from tui_helpers import open_ready, until

from trajrec.tui.app import create_app
from trajrec.tui.episode_table import COLUMNS, EpisodeTable
from trajrec.tui.help_screen import HelpScreen


def _styled(strip: Strip) -> bool:
    """Every cell of the line carries a background color (the terminal gets an SGR code for each)."""
    return all(seg.style is not None and seg.style.bgcolor is not None for seg in strip if seg.text)


def test_header_and_selected_row_are_styled(library: Path) -> None:
    async def run() -> None:
        app = create_app([library])
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            table = app.screen.query_one(EpisodeTable)
            header, cursor, other = table.render_line(0), table.render_line(1), table.render_line(2)
            assert _styled(header) and any(seg.style.bold for seg in header if seg.text.strip())
            assert _styled(cursor)
            cursor_bg = {seg.style.bgcolor for seg in cursor if seg.text}
            other_bg = {seg.style.bgcolor for seg in other if seg.text and seg.style is not None}
            assert len(cursor_bg) == 1 and cursor_bg != other_bg  # the selection stands out
            # On the selected row every cell takes the cursor's color (red or green on it was 1.5:1 on the light
            # theme); the outcome's word stands out in bold.
            passed = [seg for seg in cursor if seg.text.strip() == "passed"]
            assert passed and passed[0].style.bold and passed[0].style.color == next(iter(cursor)).style.color
    asyncio.run(run())


def test_every_column_fits_at_80_columns(library: Path) -> None:
    async def run() -> None:
        app = create_app([library])
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            table = app.screen.query_one(EpisodeTable)
            header = table.render_line(0).text
            assert header.split() == [("lab" if c.key == "labeled" else c.label) for c in COLUMNS]
            row = table.render_line(1).text
            assert "trajrec-test/" in table.rows[0].env_id and "notes-1" in row
            assert row.rstrip().endswith(table.rows[0].episode_id[-8:])  # the unique end of the id
    asyncio.run(run())


def test_builtin_prefix_left_out_of_the_env_column() -> None:
    from trajrec.replay.library import EpisodeEntry
    from trajrec.tui.episode_table import COLUMNS

    env = next(c for c in COLUMNS if c.key == "env")
    assert env.cell(EpisodeEntry(path="a", episode_id="a", env_id="trajrec/Shell-v0"))[0] == "Shell-v0"
    assert env.cell(EpisodeEntry(path="a", episode_id="a", env_id="CartPole-v1"))[0] == "CartPole-v1"


def test_sort_arrow_stays_in_a_narrow_column(library: Path) -> None:
    async def run() -> None:
        app = create_app([library])
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            table = app.screen.query_one(EpisodeTable)
            for key in ("6", "7", "8", "9"):  # fail, retry, recov, labeled: the narrowest columns
                await pilot.press(key)
                assert "▲" in table.render_line(0).text
                await pilot.press(key)
                assert "▼" in table.render_line(0).text
    asyncio.run(run())


def test_unreadable_file_is_named_and_outcome_not_cut(tmp_path: Path, library: Path) -> None:
    (library / "zz-broken.msgpack.zst").write_bytes(b"not an episode at all")

    async def run() -> None:
        app = create_app([library])
        async with app.run_test(size=(160, 45)) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            table = app.screen.query_one(EpisodeTable)
            row = next(i for i, e in enumerate(table.rows) if e.error)
            line = table.render_line(row + 1).text
            assert "zz-broken.msgpack.zst" in line and "unreadable" in line and "unreadabl…" not in line
    asyncio.run(run())


def test_help_end_reaches_the_last_line_at_80_columns(main_episode: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode])
        async with app.run_test(size=(80, 24)) as pilot:
            await open_ready(pilot)
            await pilot.press("question_mark")
            await until(pilot, lambda: isinstance(app.screen, HelpScreen))
            await pilot.press("end")
            scroll = app.screen.query_one(VerticalScroll)
            await until(pilot, lambda: scroll.max_scroll_y > 0 and scroll.scroll_y == scroll.max_scroll_y)
            body = app.screen.query_one("#help-body", Static)
            # The help's lines as wrapped at the width the body really has: all of them fit in the body, and
            # after End the body's bottom is the pane's bottom.
            wrapped = app.screen.help_text().wrap(app.console, body.content_region.width)
            assert body.size.height >= len(wrapped)
            assert scroll.scroll_y == scroll.max_scroll_y > 0
            assert scroll.scroll_y + scroll.scrollable_content_region.height >= body.outer_size.height
    asyncio.run(run())


def test_incomplete_file_says_so_uncut(tmp_path: Path) -> None:
    # A writer killed before close: the library shows "incomplete" whole (it was cut to "incomplet…").
    import subprocess
    import sys

    code = ("import os, gymnasium as gym; from trajrec.recorder import Recorder\n"
            f"env = Recorder(gym.make('CartPole-v1'), {str(tmp_path / 'live')!r}); env.reset(seed=0)\n"
            "[env.step(0) for _ in range(3)]\nos._exit(0)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)

    async def run() -> None:
        app = create_app([tmp_path / "live"])
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            table = app.screen.query_one(EpisodeTable)
            line = table.render_line(1).text
            assert not table.rows[0].complete
            assert table.rows[0].outcome == "incomplete" and " incomplete " in line and "incomplet…" not in line
    asyncio.run(run())


def test_one_line_diff_leaves_the_height_to_the_step(main_episode: Path) -> None:
    # Issue 16, item 2: at 80x24 a one-line diff took half the height of the right side.
    from trajrec.tui.state_pane import StatePane
    from trajrec.tui.step_detail import StepDetail

    async def run() -> None:
        app = create_app([main_episode])
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_ready(pilot)
            await pilot.press("G", "h", "h")  # step 7: one diff line
            await pilot.pause()
            state, detail = screen.query_one(StatePane), screen.query_one(StepDetail)
            assert len(state.text.plain.splitlines()) == 1
            assert state.outer_size.height <= 4 and detail.outer_size.height >= 2 * state.outer_size.height
    asyncio.run(run())


def test_marker_colors_are_readable_on_the_light_theme() -> None:
    # The viewer draws markers in ANSI colors that Textual maps per theme; on the light theme the default yellow
    # (tool errors) and green were 2.1:1 and 3.2:1 against the background. WCAG 2.x relative luminance/contrast.
    from textual.color import Color
    from textual.theme import BUILTIN_THEMES

    from trajrec.tui.app import TrajrecApp

    def luminance(rgb: tuple[int, int, int]) -> float:
        lin = [(c / 255 / 12.92) if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    bg = Color.parse(BUILTIN_THEMES["textual-light"].background or "#e0e0e0")
    palette = TrajrecApp.ansi_theme_light._default
    for index, name in ((1, "red"), (2, "green"), (3, "yellow"), (4, "blue"), (5, "magenta"), (6, "cyan")):
        fg = tuple(palette.ansi_colors[index])
        lighter, darker = sorted((luminance(fg), luminance((bg.r, bg.g, bg.b))), reverse=True)
        assert (lighter + 0.05) / (darker + 0.05) >= 4.0, name
