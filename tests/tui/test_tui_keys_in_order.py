"""Keys act in the order they were typed, however fast they come (typing ahead, a key's auto-repeat, a paste,
``tmux send-keys + l + l``): a rating lands on the step that was current when its key was typed, never on a step
a later key moved to. Keys are sent with ``burst`` (all queued at once, as a terminal delivers them), and every
label is read back through a fresh ``LabelStore``, as another process would."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tui_helpers import SIZE, burst, open_ready, step_of, until

from trajrec.recorder import open_episode
from trajrec.replay.labels import LabelStore
from trajrec.tui.app import create_app


def ratings(path: Path) -> list[tuple[int, int]]:
    """(step, value) of the episode's live labels, by step."""
    with open_episode(path) as ep:
        episode_id = ep.episode_id
    return sorted((lab.target, lab.value) for lab in LabelStore.for_path(path).current(episode_id))


def test_rate_then_step_in_one_burst(main_episode: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_ready(pilot)
            burst(app, "plus", "l", "plus", "l", "plus", "l")
            await until(pilot, lambda: step_of(app) == 3 and screen.session.progress()[0] == 3)
            await pilot.pause()
            assert ratings(main_episode) == [(0, 1), (1, 1), (2, 1)]
            # The arrows and h step the same way; - and 0 rate, u undoes the last rating (step 5's 0).
            burst(app, "minus", "right", "0", "right", "0", "u", "left", "left", "h", "plus")
            await until(pilot, lambda: step_of(app) == 2 and screen.session.progress()[0] == 5)
            await pilot.pause()
            assert ratings(main_episode) == [(0, 1), (1, 1), (2, 1), (3, -1), (4, 0)]
            assert step_of(app) == 2
    asyncio.run(run())


def test_every_moving_key_keeps_its_place(main_episode: Path) -> None:
    """Jumps (n G ] g }) and the timeline's own keys (j k) between ratings: each rating is on the step its key
    found current."""
    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            # j/k are the timeline's keys; n: the next failure (3, after 1), then l: 4; G: the last step; ]: the
            # next step not rated (wrapping around: 0); g: the first step; } twice: the labeled steps 1, then 4.
            burst(app, "j", "plus", "n", "l", "minus", "G", "0", "right_square_bracket", "plus", "j", "j", "k",
                  "minus", "g", "right_curly_bracket", "right_curly_bracket", "plus")
            expected = [(0, 1), (1, -1), (4, 1), (9, 0)]
            await until(pilot, lambda: ratings(main_episode) == expected and step_of(app) == 4)
            await pilot.pause()
            assert ratings(main_episode) == expected
    asyncio.run(run())


def test_keys_after_a_prompt_answer_act_after_it(main_episode: Path) -> None:
    """Keys typed right after enter (or a tag number, which answers at once) are the screen's, and act after the
    answer: a go-to, then a rating on the step it went to; a tag, then the next step."""
    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_ready(pilot)
            burst(app, ":", "5", "enter", "plus", "t", "1", "l", "minus", "c", *"why", "enter", "l", "0")
            await until(pilot, lambda: step_of(app) == 7 and screen.session.progress()[0] == 3)
            await pilot.pause()
            with open_episode(main_episode) as ep:
                labels = LabelStore.for_path(main_episode).current(ep.episode_id)
            assert [(x.target, x.value, x.tags, x.rationale) for x in labels] == [
                (5, 1, ("useful-recovery",), None), (6, -1, (), "why"), (7, 0, (), None)]
            assert not screen.query_one("PromptBar").asking and screen.query_one("PromptBar").input.value == "why"
    asyncio.run(run())
