"""The viewer's header says where an episode lost env steps to a failed write (FINDINGS27 #1): how many, before
which step. A real file made by a file-size limit (``unwritten_run`` in tests/conftest.py); the real app headless."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tui_helpers import SIZE, open_ready

from trajrec.recorder import open_episode
from trajrec.tui.app import create_app
from trajrec.tui.episode_header import EpisodeHeader, header_text


def test_header_says_how_many_env_steps_were_not_recorded_and_where(unwritten_run: Path) -> None:
    with open_episode(unwritten_run / "last.msgpack.zst") as ep:
        assert "1 env step not recorded, a write failed: 1 before step 2" in header_text(ep, width=160).plain
    with open_episode(unwritten_run / "whole.msgpack.zst") as ep:
        assert "not recorded" not in header_text(ep, width=160).plain
    path = unwritten_run / "mid.msgpack.zst"

    async def run() -> None:
        app = create_app([path])
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            text = app.screen.query_one(EpisodeHeader).render().plain
            assert "2 env steps not recorded, a write failed: 2 before step 2" in text
    asyncio.run(run())
