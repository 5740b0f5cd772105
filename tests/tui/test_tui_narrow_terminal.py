"""In a narrow terminal the step timeline gives way: the step pane keeps most of its share of the width instead
of being squeezed to a word a line by the timeline's minimum width; wide terminals keep the usual layout."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tui_helpers import open_ready, until

from trajrec.tui.app import create_app
from trajrec.tui.step_detail import StepDetail
from trajrec.tui.timeline import StepTimeline


def widths(main_episode: Path, size: tuple[int, int], resize: tuple[int, int] | None = None) -> tuple[int, int]:
    out: list[int] = []

    async def run() -> None:
        app = create_app([main_episode])
        async with app.run_test(size=size) as pilot:
            screen = await open_ready(pilot)
            if resize is not None:
                await pilot.resize_terminal(*resize)
                await until(pilot, lambda: screen.size.width == resize[0])
                await pilot.pause()
            out.extend([screen.query_one(StepTimeline).outer_size.width, screen.query_one(StepDetail).outer_size.width])
    asyncio.run(run())
    return out[0], out[1]


def test_narrow_terminal_gives_the_step_pane_room(main_episode: Path) -> None:
    timeline, step = widths(main_episode, (40, 12))
    assert timeline + step == 40 and step >= 20, (timeline, step)
    timeline, step = widths(main_episode, (120, 40), resize=(40, 12))  # shrunk while open
    assert timeline + step == 40 and step >= 20, (timeline, step)
    timeline, step = widths(main_episode, (120, 40))
    assert timeline == 54 and step == 66  # 45% of the width, as before
