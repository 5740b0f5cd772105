"""Damaged episode files open as far as they can be read, and say what is wrong, without crashing the app."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tui_helpers import SIZE, open_ready, record, step_of, until

from trajrec.recorder import open_episode, read_index
from trajrec.tui.app import create_app
from trajrec.tui.episode_header import EpisodeHeader
from trajrec.tui.step_detail import StepDetail
from trajrec.tui.timeline import StepTimeline
from trajrec.tui.timeline_legend import TimelineLegend


def many_frames(tmp_path: Path) -> Path:
    actions = [f"write f{i}.txt x" if i % 5 else "cat missing.txt" for i in range(60)]
    return record(tmp_path, actions, frame_steps=10)


def test_file_without_index_opens_and_says_so(tmp_path: Path) -> None:
    path = many_frames(tmp_path)
    data = path.read_bytes()
    # Cut the file after the last step's frame (no end record, no index): as if the writer had been killed.
    frames = read_index(path)["frames"]
    path.write_bytes(data[:frames[-1][3]])
    assert not read_index(path)["complete"]

    async def run() -> None:
        app = create_app([path])
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            header = app.screen.query_one(EpisodeHeader)
            assert "no index" in header.render().plain
            await pilot.press("G")
            assert step_of(app) == 59
            await pilot.press("N")
            assert step_of(app) == 55
    asyncio.run(run())


def test_damaged_frame_shows_errors_in_place(tmp_path: Path) -> None:
    path = many_frames(tmp_path)
    frames = read_index(path)["frames"]
    offset, first, _n, stop = frames[3][:4]  # steps 20..29 (frame 0 holds the header and reset)
    data = bytearray(path.read_bytes())
    for k in range(offset + 8, stop - 2):
        data[k] ^= 0x5A
    path.write_bytes(bytes(data))

    async def run() -> None:
        app = create_app([path])
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_ready(pilot)
            # Markers come from the index at once; the walk that finds damage reports it when it gets there.
            legend = screen.query_one(TimelineLegend)
            await until(pilot, lambda: "cannot be read" in legend.note)
            note = legend.note
            assert f"steps {first}–{first + 9} cannot be read" in note and "trajrec fsck" in note
            await pilot.press("colon", *str(first + 2), "enter")
            await until(pilot, lambda: step_of(app) == first + 2)
            await pilot.pause()
            assert "cannot be read" in screen.query_one(StepDetail).text.plain
            timeline = screen.query_one(StepTimeline)
            line = "".join(seg.text for seg in timeline.render_line(first + 2 - round(timeline.scroll_y)))
            assert "?" in line
            await pilot.press("g", "n")  # failures are found before the damaged frame, and after it
            assert step_of(app) == 5
            await pilot.press("colon", *str(first - 1), "enter")
            await until(pilot, lambda: step_of(app) == first - 1)
            await pilot.press("n")
            assert step_of(app) == first + 10  # the failures inside the damaged frame cannot be seen
            assert "cat missing.txt" in screen.query_one(StepDetail).text.plain
    asyncio.run(run())
    with open_episode(path) as ep:
        assert ep[first + 10].action == "cat missing.txt"
