"""The viewer opens episodes whose model-call totals hold NaN, infinite, huge or negative values (a file written
before the recorder left such values out) and episodes whose notes hold them: the library lists them, the episode
header shows ``?`` for a total that is no count, and the app keeps working."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tui_helpers import SIZE, until

from trajrec.tui.app import create_app
from trajrec.tui.episode_header import EpisodeHeader
from trajrec.tui.episode_screen import EpisodeScreen
from trajrec.tui.episode_table import EpisodeTable
from trajrec.tui.library_screen import LibraryScreen

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recorder"))
from test_model_usage_hostile import _record  # noqa: E402  (the recording with hostile usage, shared)


def test_the_viewer_shows_episodes_with_hostile_usage(tmp_path: Path) -> None:
    good = _record(tmp_path / "lib" / "good")
    bad = _record(tmp_path / "lib" / "bad", hostile_summary=True)
    headers: dict[str, str] = {}

    async def run() -> None:
        app = create_app([str(tmp_path / "lib")])
        async with app.run_test(size=(200, 40)) as pilot:
            table = app.screen.query_one(EpisodeTable)
            await until(pilot, lambda: len(table._rows) == 2, timeout=20)
            for k, entry in enumerate(list(table._rows)):
                table.cursor = k
                await pilot.press("enter")
                await until(pilot, lambda: isinstance(app.screen, EpisodeScreen))
                headers[Path(entry.path).name] = app.screen.query_one(EpisodeHeader).render().plain
                await pilot.press("G", "g")
                await pilot.press("escape")
                await until(pilot, lambda: isinstance(app.screen, LibraryScreen))
            assert app.is_running
    asyncio.run(run())
    assert "5 calls, ? tokens (? in / ? out), ? s" in headers[bad.name], headers[bad.name]
    assert "5 calls, 24 tokens (17 in / 7 out), 0.75 s" in headers[good.name], headers[good.name]
