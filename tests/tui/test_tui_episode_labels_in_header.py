"""Labels on a whole episode (``trajrec label add ep --step episode``, the rules' ``episode-verdict``) show in the
episode header, under the recorded verdict: value, judge, ``(you)`` for the annotator's own, rationale; one
written by another process while the episode is open appears there too."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tui_helpers import SIZE, open_ready, until

import trajrec.tui.episode_screen
from trajrec.recorder import open_episode
from trajrec.replay.labels import LabelStore
from trajrec.tui.app import create_app
from trajrec.tui.episode_header import EpisodeHeader


@pytest.fixture(autouse=True)
def _quick_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trajrec.tui.episode_screen, "LABEL_REFRESH_SECONDS", 0.05)


def header_lines(app) -> list[str]:  # type: ignore[no-untyped-def]
    header = app.screen.query_one(EpisodeHeader)
    return [line for line in header.render().plain.splitlines()]


def test_episode_labels_show_under_the_verdict(main_episode: Path) -> None:
    with open_episode(main_episode) as ep:
        episode_id = ep.episode_id
    store = LabelStore.for_path(main_episode)
    store.add(episode_id, "episode", False, judge="human:bob", rationale="EPISODE-LEVEL-NOTE")
    store.add(episode_id, 2, 1, judge="human:bob")  # a step label: not in the header

    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            lines = header_lines(app)
            verdict = next(i for i, line in enumerate(lines) if line.startswith("verdict"))
            assert "PASSED" in lines[verdict]  # the recorded check stays what it is
            assert lines[verdict + 1] == "labels  fail human:bob: EPISODE-LEVEL-NOTE"
            # The annotator's own, written from a terminal meanwhile: first, marked.
            LabelStore.for_path(main_episode).add(episode_id, "episode", True, judge="human:ana", rationale="ok")
            await until(pilot, lambda: header_lines(app)[verdict + 1].startswith("labels  pass human:ana (you): ok"))
            assert header_lines(app)[verdict + 1].endswith("·  fail human:bob: EPISODE-LEVEL-NOTE")
    asyncio.run(run())


def test_no_episode_labels_no_line(main_episode: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            await pilot.press("plus")  # a step label
            assert not any(line.startswith("labels") for line in header_lines(app))
    asyncio.run(run())
