"""One annotator in two viewers (two windows, or two people sharing a login) labeling the same episode: a rating in
one right after the other's on the same step writes a new version of the one live label, never a second label
(docs/LABELS.md, "One label per step and annotator"), however soon after the other window wrote it.

The other window is a ``LabelSession`` on its own ``LabelStore`` of the same folder (as another viewer process
has: its own labels file); the viewer's periodic read of other writers' labels is slowed to an hour, so only the
write itself can find the other window's label."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tui_helpers import SIZE, open_ready, step_of, until

import trajrec.tui.episode_screen
from trajrec.recorder import open_episode
from trajrec.replay.labels import LabelStore
from trajrec.tui.app import create_app
from trajrec.tui.label_session import LabelSession
from trajrec.tui.prompt_bar import PromptBar
from trajrec.tui.step_detail import StepDetail


@pytest.fixture(autouse=True)
def _no_periodic_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trajrec.tui.episode_screen, "LABEL_REFRESH_SECONDS", 3600.0)


def test_rating_right_after_another_window_updates_its_label(main_episode: Path) -> None:
    with open_episode(main_episode) as ep:
        episode_id, n = ep.episode_id, len(ep)

    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_ready(pilot)
            other = LabelSession(LabelStore.for_path(main_episode), episode_id, n, "ana")  # the second window
            first = other.rate(0, 1)
            assert first is not None
            await pilot.press("minus")  # this window has not read the other's +1 yet
            await until(pilot, lambda: screen.session.mine_at(0).value == -1)
            [lab] = LabelStore.for_path(main_episode).current(episode_id)
            assert (lab.target, lab.value, lab.judge, lab.supersedes) == (0, -1, "human:ana", first.after.id)
            text = screen.query_one(StepDetail).text.plain
            assert "-1 human:ana (you)" in text and "+1 human:ana" not in text
            # A note and a tag on a step the other window rated keep its rating: a new version of its label.
            other.rate(1, 1)
            await pilot.press("l", "c", *"why", "enter")
            await until(pilot, lambda: not screen.query_one(PromptBar).asking and step_of(app) == 1)
            await until(pilot, lambda: (screen.session.mine_at(1) or lab).rationale == "why")
            other.toggle_tag(2, "lucky-guess")
            await pilot.press("l", "t", "1")  # tag 1: useful-recovery
            await until(pilot, lambda: screen.session.mine_at(2) is not None
                        and len(screen.session.mine_at(2).tags) == 2)
            live = sorted((x.target, x.value, x.rationale, tuple(x.tags))
                          for x in LabelStore.for_path(main_episode).current(episode_id))
            assert live == [(0, -1, None, ()), (1, 1, "why", ()), (2, 0, None, ("lucky-guess", "useful-recovery"))]
            # And back: the other window, which read nothing since, updates this window's label too.
            assert other.rate(0, 0) is not None
            assert [x.value for x in LabelStore.for_path(main_episode).current(episode_id, 0)] == [0]
            # Undo in this window takes back its own version only: step 2 gets the other window's tags back.
            await pilot.press("u")
            await until(pilot, lambda: screen.session.mine_at(2) is not None
                        and screen.session.mine_at(2).tags == ("lucky-guess",))
    asyncio.run(run())
