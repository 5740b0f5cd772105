"""A note, tag or score on a step nobody rated rides on a neutral 0 (a "carrier"); taken off again in the viewer
(tag toggled off, note or score cleared), the carrier is withdrawn, as undo would, instead of staying as a 0 rating
nobody gave that outranks the rules' -1 in every export (FINDINGS32 #4). The real app, headless; the rules and the
export through the CLI (in process)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from tui_helpers import SIZE, burst, open_ready, until

from trajrec.cli import main as cli
from trajrec.recorder import open_episode
from trajrec.replay.labels import LabelStore
from trajrec.tui.app import create_app
from trajrec.tui.prompt_bar import PromptBar
from trajrec.tui.timeline_legend import TimelineLegend


async def keys(pilot: Any, *typed: str) -> None:
    """Type ``typed`` in one burst and wait until every key ran (the prompt closed, nothing held)."""
    app = pilot.app
    burst(app, *typed)
    await until(pilot, lambda: not app._held and not app._holding and not app.screen.query_one(PromptBar).asking)
    await pilot.pause()


def test_tag_note_and_score_taken_off_again_leave_no_rating(main_episode: Path, tmp_path: Path) -> None:
    with open_episode(main_episode) as ep:
        eid = ep.episode_id
    assert cli(["label", "auto", str(main_episode), "--rules"]) == 0

    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_ready(pilot)
            legend = screen.query_one(TimelineLegend)
            await keys(pilot, "t", "1", "t", "1")  # step 0: a tag on, then off
            assert legend.note.startswith("step 0: tag useful-recovery off (the neutral 0 that carried it is "
                                          "withdrawn")
            await keys(pilot, "l", "c", "x", "enter", "c", "backspace", "enter")  # step 1: a note, then cleared
            await keys(pilot, "l", "number_sign", *"0.5", "enter",
                       "number_sign", "backspace", "backspace", "backspace", "enter")  # step 2: a score, then cleared
            assert LabelStore.for_path(main_episode).current(eid, judge="human:ana") == []
            assert [screen._label_mark(s) for s in range(3)] == ["•", "•", "•"]  # only the rules' labels
            assert screen.session.progress()[0] == 0
            await keys(pilot, "u")  # undo brings the score's carrier back
            [back] = LabelStore.for_path(main_episode).current(eid, judge="human:ana")
            assert (back.target, back.value, back.score) == (2, 0, 0.5)
            await keys(pilot, "ctrl+r")
            assert LabelStore.for_path(main_episode).current(eid, judge="human:ana") == []
            await keys(pilot, "0", "t", "1", "t", "1")  # a step rated 0 keeps its 0 when the tag goes
            assert [(lab.target, lab.value) for lab in
                    LabelStore.for_path(main_episode).current(eid, judge="human:ana")] == [(2, 0)]
    asyncio.run(run())

    # The export takes the rules' labels on steps 0 and 1 (-1 on the failed step 0), not an invented 0.
    out = tmp_path / "prm.jsonl"
    assert cli(["export", str(main_episode), "--format", "trl-stepwise", "--label-map", "lenient",
                "--unlabeled", "drop-step", "--out", str(out)]) == 0
    (row,) = map(json.loads, out.read_text().splitlines())
    judged = dict(zip(row["steps"], zip(row["labels"], row["label_judges"])))
    assert judged[0] == (False, "trajrec-rules@2") and judged[1][1] == "trajrec-rules@2"
    assert judged[2] == (True, "human:ana")
