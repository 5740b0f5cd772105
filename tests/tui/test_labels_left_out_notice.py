"""The viewer opened on an episode whose labels folder holds a label for a step it does not have (another tool's
line, a copied labels folder): the label is not shown or counted, and a notification says which was left out."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from tui_helpers import MAIN_ACTIONS, open_ready, record

from trajrec.recorder import open_episode
from trajrec.tui.app import create_app


@pytest.mark.filterwarnings("ignore::trajrec.replay.label_model.LabelWarning")  # the library's scan read it too
def test_the_viewer_says_which_labels_it_left_out(tmp_path: Path) -> None:
    path = record(tmp_path / "run", MAIN_ACTIONS)
    with open_episode(path) as ep:
        eid, n = ep.episode_id, len(ep)
    labels = tmp_path / "run" / ".trajrec" / "labels"
    labels.mkdir(parents=True)
    (labels / "zed-x.jsonl").write_text(json.dumps(
        {"v": 1, "id": "feedbeef", "episode_id": eid, "target": n + 5, "kind": "judge", "judge": "human:zed",
         "value": -1, "author": "zed", "time": 1}, separators=(",", ":")) + "\n")

    async def run() -> None:
        app = create_app([path])
        async with app.run_test(size=(160, 50)) as pilot:
            screen = await open_ready(pilot)
            await pilot.pause()
            notes = [(x.title, x.message) for x in app._notifications]
            assert any(title == "labels left out" and f"step {n + 5} by human:zed (id feedbeef)" in message
                       for title, message in notes), notes
            assert screen.session is not None and screen.session.progress() == (0, 0)
    asyncio.run(run())
