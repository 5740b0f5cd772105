"""Labeling keys driven through the Pilot: + - 0 rate, c note, t tag, u undo, ] next unlabeled; other annotators'
labels; progress; the library's labeled column. Every label is checked through a fresh ``LabelStore``, as another
process would read it."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from textual.pilot import Pilot
from tui_helpers import SIZE, burst, open_ready, step_of, until

from trajrec import tui

import trajrec.tui.episode_screen
from trajrec.recorder import open_episode
from trajrec.replay.labels import Label, LabelStore
from trajrec.tui.app import TrajrecApp, create_app
from trajrec.tui.episode_screen import EpisodeScreen
from trajrec.tui.episode_table import EpisodeTable
from trajrec.tui.help_screen import HelpScreen
from trajrec.tui.library_screen import LibraryScreen
from trajrec.tui.prompt_bar import PromptBar
from trajrec.tui.step_detail import StepDetail
from trajrec.tui.timeline_legend import TimelineLegend


def episode_id(path: Path) -> str:
    with open_episode(path) as ep:
        return ep.episode_id


def live(path: Path) -> list[Label]:
    """The episode's live labels, read by a new store (another process's view)."""
    return LabelStore.for_path(path).current(episode_id(path))


def history(path: Path, step: int) -> list[Label]:
    return LabelStore.for_path(path).history((episode_id(path), step))


def detail(app: TrajrecApp) -> str:
    return app.screen.query_one(StepDetail).text.plain


def legend(app: TrajrecApp) -> TimelineLegend:
    return app.screen.query_one(TimelineLegend)


async def answer(pilot: Pilot, *keys: str) -> None:
    """Type into the prompt bar once it is open; wait until it closed."""
    bar = pilot.app.screen.query_one(PromptBar)
    await until(pilot, lambda: bar.asking)
    await pilot.press(*keys)
    await until(pilot, lambda: not bar.asking)


def test_rate_updates_one_label(main_episode: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_ready(pilot)
            assert legend(app).labeled == "labeled 0/10 (you)"
            await pilot.press("plus")
            [lab] = live(main_episode)
            assert (lab.target, lab.value, lab.kind, lab.judge, lab.author) == (0, 1, "judge", "human:ana", "ana")
            assert legend(app).labeled == "labeled 1/10 (you)" and legend(app).note == "step 0: rated +1"
            assert "labels (1)" in detail(app) and "+1 human:ana (you)" in detail(app)
            assert screen._label_mark(0) == "+"
            await pilot.press("minus")  # the same step again: a new version of the same label
            [lab] = live(main_episode)
            assert lab.value == -1 and len(history(main_episode, 0)) == 2
            assert "-1 human:ana (you)" in detail(app) and screen._label_mark(0) == "-"
            await pilot.press("0", "0")  # the second 0 changes nothing: no version written
            [lab] = live(main_episode)
            assert lab.value == 0 and len(history(main_episode, 0)) == 3
            assert legend(app).note == "no change" and legend(app).labeled == "labeled 1/10 (you)"
            await pilot.press("l", "plus")
            assert [(x.target, x.value) for x in live(main_episode)] == [(0, 0), (1, 1)]
            assert legend(app).labeled == "labeled 2/10 (you)"
            # Speed is on > and < only now.
            assert screen.speed == 2.0
    asyncio.run(run())


def test_note_and_tags(main_episode: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode], annotator="ana", tags=("useful-recovery", "lucky-guess", "wrong-tool"))
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            await pilot.press("l", "l", "c")  # step 2, not rated yet: the note comes with a neutral label
            await answer(pilot, *"wrong file", "enter")
            [lab] = live(main_episode)
            assert (lab.target, lab.value, lab.rationale) == (2, 0, "wrong file")
            assert "wrong file" in detail(app)
            await pilot.press("plus", "c")  # the note stays with the rating; the prompt starts from it
            bar = app.screen.query_one(PromptBar)
            await until(pilot, lambda: bar.asking)
            assert bar.input.value == "wrong file"
            await answer(pilot, *"bad text", "enter")
            [lab] = live(main_episode)
            assert (lab.value, lab.rationale) == (1, "bad text")
            await pilot.press("t")
            await until(pilot, lambda: bar.asking)
            assert "1 useful-recovery  2 lucky-guess  3 wrong-tool" in str(bar.query_one("Label").render())
            await answer(pilot, "2")  # a number answers at once
            assert live(main_episode)[0].tags == ("lucky-guess",)
            assert legend(app).note == "step 2: tag lucky-guess on"
            await pilot.press("t")
            await answer(pilot, *"wro", "enter")  # a unique prefix
            assert live(main_episode)[0].tags == ("lucky-guess", "wrong-tool")
            await pilot.press("t")
            await answer(pilot, "2")  # again: off
            assert live(main_episode)[0].tags == ("wrong-tool",)
            await pilot.press("t")
            await answer(pilot, *"my-own-tag", "enter")  # a name not in the list: a new tag
            assert live(main_episode)[0].tags == ("wrong-tool", "my-own-tag")
            await pilot.press("t")
            await answer(pilot, "escape")  # cancelled: nothing written
            await pilot.press("c")
            await answer(pilot, "ctrl+u", "enter")  # an empty note clears the rationale
            [lab] = live(main_episode)
            assert lab.rationale is None and lab.tags == ("wrong-tool", "my-own-tag")
            assert "tags wrong-tool, my-own-tag" in detail(app)
            assert len(history(main_episode, 2)) == 8  # one version per action: nothing else written
    asyncio.run(run())


def test_keys_typed_in_one_burst_land_in_the_prompt(main_episode: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            bar = app.screen.query_one(PromptBar)
            # c and t are text in the note; + - 0 ] u too; h and l do not step.
            burst(app, "c", *"try: c t + - 0 ] u h l", "enter")
            await until(pilot, lambda: bool(live(main_episode)) and not bar.asking)
            [lab] = live(main_episode)
            assert (lab.target, lab.value, lab.rationale) == (0, 0, "try: c t + - 0 ] u h l")
            assert step_of(app) == 0
            burst(app, ":", "-", "1", "enter")  # "-" in the go-to prompt is a sign, not a rating
            await until(pilot, lambda: step_of(app) == 9)
            burst(app, "t", "1", "l")  # the tag number answers at once; the next key steps again
            await until(pilot, lambda: len(live(main_episode)) == 2)
            assert live(main_episode)[1].tags == ("useful-recovery",) and live(main_episode)[1].target == 9
    asyncio.run(run())


def test_undo_restores_and_deletes(main_episode: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            await pilot.press("plus", "minus", "c")
            await answer(pilot, *"why", "enter")
            await pilot.press("t", "1")
            await until(pilot, lambda: live(main_episode)[0].tags == ("useful-recovery",))
            await pilot.press("u")  # the tag goes
            [lab] = live(main_episode)
            assert (lab.value, lab.rationale, lab.tags) == (-1, "why", ())
            assert legend(app).note == "undid step 0: tag useful-recovery on"
            await pilot.press("u")  # the note goes
            assert [(x.value, x.rationale) for x in live(main_episode)] == [(-1, None)]
            await pilot.press("l", "l", "l", "u")  # the rating is restored; undo goes back to its step
            assert step_of(app) == 0 and [x.value for x in live(main_episode)] == [1]
            assert "+1 human:ana (you)" in detail(app)
            await pilot.press("u")  # the label was added in this session: it is deleted
            assert live(main_episode) == [] and legend(app).labeled == "labeled 0/10 (you)"
            versions = history(main_episode, 0)
            assert len(versions) == 8 and versions[-1].deleted  # the store keeps every version
            assert "labels" not in detail(app)
            await pilot.press("u")
            assert legend(app).note == "nothing to undo"
    asyncio.run(run())


def test_next_unlabeled_wraps_and_says_when_done(main_episode: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            await pilot.press("plus", "l", "minus", "l", "l", "0")  # steps 0, 1, 3
            await pilot.press("right_square_bracket")
            assert step_of(app) == 4
            await pilot.press("G", "plus", "right_square_bracket")  # from the last step: wraps around to 2
            assert step_of(app) == 2
            for _ in range(5):
                await pilot.press("plus", "right_square_bracket")
            assert step_of(app) == 8
            await pilot.press("right_square_bracket")
            assert step_of(app) == 8 and "only step you have not labeled" in legend(app).note
            await pilot.press("0", "right_square_bracket")
            assert step_of(app) == 8 and legend(app).note == "all steps labeled (by you)"
            assert legend(app).labeled == "labeled 10/10 (you)"
    asyncio.run(run())


def test_other_annotators_labels_appear_marked_as_theirs(main_episode: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tui.episode_screen, "LABEL_REFRESH_SECONDS", 0.05)

    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_ready(pilot)
            eid = episode_id(main_episode)
            with LabelStore.for_path(main_episode) as bob:  # another process, while the screen is open
                bob.add(eid, 0, -1, judge="human:bob", rationale="looked in the wrong place", tags=["lucky-guess"])
                bob.add(eid, 0, -1, kind="rule", judge="trajrec-rules@1", tags=["failed"])
                bob.add(eid, 5, 1, judge="human:bob")
            await until(pilot, lambda: "human:bob" in detail(app))  # the refresh timer read them
            text = detail(app)
            assert "labels (2)" in text and "-1 human:bob  tags lucky-guess\n   looked in the wrong place" in text
            assert "-1 trajrec-rules@1  rule  tags failed" in text and "(you)" not in text
            assert screen._label_mark(0) == "•" and screen._label_mark(5) == "•" and screen._label_mark(1) == " "
            assert legend(app).labeled == "labeled 0/10 (you) 2/10 (anyone)"
            await pilot.press("plus")
            text = detail(app)
            assert text.index("+1 human:ana (you)") < text.index("human:bob")  # yours first
            assert screen._label_mark(0) == "+" and legend(app).labeled == "labeled 1/10 (you) 2/10 (anyone)"
            with LabelStore.for_path(main_episode) as bob:
                [theirs] = bob.current(eid, target=5)
                bob.update(theirs.id, value=0, rationale="changed my mind")
            await until(pilot, lambda: screen.session.labels_at(5)[0].value == 0)  # the timer read the edit
            await pilot.press("colon", "5", "enter")
            await until(pilot, lambda: step_of(app) == 5)
            assert " 0 human:bob\n   changed my mind" in detail(app)
    asyncio.run(run())


def test_library_shows_labeled_fraction_after_labeling(library: Path) -> None:
    async def run() -> None:
        app = create_app([library], annotator="ana")  # the column comes from the app's LabelSource
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            table = app.screen.query_one(EpisodeTable)
            assert [e.labeled for e in table.rows] == [None] * 4  # shown "-": no labels yet
            await pilot.press("enter")  # notes-1: 10 steps
            await open_ready(pilot)
            await pilot.press("plus", "l", "minus")
            await pilot.press("q")
            await until(pilot, lambda: isinstance(app.screen, LibraryScreen))
            await until(pilot, lambda: table.rows[0].labeled is not None)
            assert [e.labeled for e in table.rows] == [0.2, None, None, None]
            assert "20%" in "".join(s.text for s in table.render_line(1))  # line 0 is the header
    asyncio.run(run())


def test_help_lists_labeling_keys_and_tags(main_episode: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode], annotator="ana", tags=("lucky-guess", "wrong-tool"))
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            await pilot.press("question_mark")
            await until(pilot, lambda: isinstance(app.screen, HelpScreen))
            text = str(app.screen.query_one("#help-body").render())
            assert "Labeling (as human:ana)" in text and "1 lucky-guess  2 wrong-tool" in text
            for binding in EpisodeScreen.LABEL_BINDINGS:
                assert binding.tooltip in text
            # (the key column is as wide as its widest key: ctrl+r's)
            assert re.search(r"\n  \+ +Rate this step good \(\+1\)", text)
            assert re.search(r"\n  \] +Next step you have not labeled", text)
            assert "you rated +1" in text and "labeled by others only" in text
    asyncio.run(run())


def test_a_store_that_cannot_be_written_is_reported(main_episode: Path) -> None:
    (main_episode.parent / ".trajrec").write_text("not a folder")  # the labels folder cannot be made

    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            await pilot.press("plus")
            await pilot.pause()
            [note] = app._notifications
            assert note.title == "label not saved" and "cannot create the labels folder" in note.message
            assert legend(app).labeled == "labeled 0/10 (you)"
            await pilot.press("l")  # still working
            assert step_of(app) == 1
    asyncio.run(run())
