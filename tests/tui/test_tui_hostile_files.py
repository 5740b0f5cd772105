"""Crafted files in a library: the viewer lists each (an unreadable one with its file name and the reason), opening
one gives a notice or shows what can be read, and the app keeps working; recorded text with terminal escapes and
Rich markup shows literally in the episode header."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tui_helpers import SIZE, record, until

from trajrec.recorder import read_index
from trajrec.recorder.format import compress_frame, index_frame, packb
from trajrec.recorder.writer import EpisodeWriter
from trajrec.tui.app import create_app
from trajrec.tui.episode_header import EpisodeHeader
from trajrec.tui.episode_screen import EpisodeScreen
from trajrec.tui.episode_table import EpisodeTable
from trajrec.tui.library_screen import LibraryScreen

ESC = "\x1b]0;PWNED-TITLE\x07\x1b[31mRED\x1b[0m[bold]markup[/bold]"


def _split(path: Path) -> tuple[bytes, dict]:
    """A file's bytes before its index frame, and its index as readers see it (any format version)."""
    index = read_index(path)
    start = index.pop("index_offset")
    for key in ("complete", "damage", "file_size"):
        del index[key]
    return path.read_bytes()[:start], index


def _nested_tuples() -> bytes:
    inner = b"\xc0"
    for _ in range(300):
        payload = b"\x91" + inner
        n = len(payload)
        inner = (b"\xc7" + bytes([n]) if n < 256 else b"\xc8" + n.to_bytes(2, "big")) + b"\x04" + payload
    return inner


def hostile_library(root: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    good = record(root / "good", ["cat notes.txt", "submit"])
    files["good"] = good
    body, index = _split(good)
    (root / "bad").mkdir()
    files["summary-list"] = root / "bad" / "summary-list.msgpack.zst"
    files["summary-list"].write_bytes(body + index_frame({**index, "summary": [1, 2]}))
    files["frame-past-eof"] = root / "bad" / "frame-past-eof.msgpack.zst"
    files["frame-past-eof"].write_bytes(body + index_frame({**index, "frames": [[0, 0, 0, 100],
                                                                              [len(body) + 9999, 0, 2, 10**6]]}))
    head = compress_frame([packb({"t": "header", "magic": "trajrec", "version": 2, "episode_id": "nest",
                                  "task": {}, "provenance": {}}),
                           packb({"t": "reset", "seed": 0, "observation": "o", "info": {}, "time": 0.0,
                                  "duration": 0.0})])
    files["nested-tuples"] = root / "bad" / "nested-tuples.msgpack.zst"
    files["nested-tuples"].write_bytes(head + compress_frame([b"\x83\xa1t\xa4step\xa1i\x00\xabobservation"
                                                             + _nested_tuples()]))
    files["step-diff-int"] = root / "bad" / "step-diff-int.msgpack.zst"
    step = compress_frame([packb({"t": "step", "i": 0, "action": "a", "observation": "o", "reward": 0.0,
                                  "terminated": True, "truncated": False, "info": {}, "time": 0.0, "duration": 0.0,
                                  "diff": 5})])
    files["step-diff-int"].write_bytes(head + step + index_frame({
        "version": 2, "steps": 1, "frames": [[0, 0, 0, len(head)], [len(head), 0, 1, len(head) + len(step)]],
        "header": {"magic": "trajrec", "version": 2, "episode_id": "d", "task": {}, "provenance": {}},
        "summary": {}, "checks": [], "step_checks": []}))
    files["not-an-episode"] = root / "bad" / "text.msgpack.zst"
    files["not-an-episode"].write_text("hello")
    path = root / "bad" / "task-list.msgpack.zst"
    w = EpisodeWriter(path, {"episode_id": "t", "task": [1, 2], "provenance": {}})
    w.write_reset({"seed": 0, "observation": "o", "info": {}, "time": 0.0, "duration": 0.0})
    w.close()
    files["task-list"] = path
    labels = root / "good" / ".trajrec" / "labels"
    labels.mkdir(parents=True)
    (labels / "x.jsonl").write_text(json.dumps({"v": 1, "id": "a" * 32, "episode_id": "x", "target": 0,
                                                "kind": "judge", "judge": "human:x", "value": 1,
                                                "tags": [{"a": 1}]}) + "\n")
    return files


def test_the_library_lists_crafted_files_and_the_app_keeps_working(tmp_path: Path) -> None:
    files = hostile_library(tmp_path / "lib")

    async def run() -> None:
        app = create_app([str(tmp_path / "lib")])
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one(EpisodeTable)
            await until(pilot, lambda: len(table._rows) == len(files), timeout=20)
            rows = {Path(e.path).name: e for e in table._rows}
            assert rows["text.msgpack.zst"].error is not None and "text.msgpack.zst" in rows["text.msgpack.zst"].error
            assert rows["task-list.msgpack.zst"].error is not None
            for k in range(len(files)):
                table.cursor = k
                await pilot.press("enter")
                await pilot.pause()
                if isinstance(app.screen, EpisodeScreen):
                    await pilot.press("G", "g", "n", "s")  # move about the steps that can be read
                    await pilot.pause()
                    await pilot.press("escape")
                    await until(pilot, lambda: isinstance(app.screen, LibraryScreen))
            assert app.is_running
            table.cursor = next(i for i, e in enumerate(table._rows) if e.path == str(files["good"]))
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, EpisodeScreen))
    asyncio.run(run())


def test_escapes_and_markup_in_recorded_text_show_literally_in_the_header(tmp_path: Path) -> None:
    path = tmp_path / "Inject-v0-x.msgpack.zst"
    w = EpisodeWriter(path, {"episode_id": "id" + ESC, "task": {"env_id": "env" + ESC, "id": "task" + ESC,
                                                                 "split": "s" + ESC, "text": "goal" + ESC},
                             "provenance": {"host": "host" + ESC, "agent": {"name": "a" + ESC}}})
    w.write_reset({"seed": 0, "observation": "o", "info": {}, "time": 0.0, "duration": 0.0})
    w.write_step({"i": 0, "action": "a", "observation": "o", "reward": 0.0, "terminated": True, "truncated": False,
                  "info": {}, "time": 0.0, "duration": 0.0})
    w.write_check({"target": "episode", "kind": "kind" + ESC, "judge": "judge" + ESC, "value": True,
                   "rationale": "why" + ESC})
    w.close()

    async def run() -> None:
        app = create_app([str(path)])
        async with app.run_test(size=(200, 40)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, EpisodeScreen))
            text = app.screen.query_one(EpisodeHeader).render()
            plain = text.plain
            assert "\x1b" not in plain and "\x07" not in plain
            assert "\\x1b]0;PWNED-TITLE\\x07" in plain and "[bold]markup[/bold]" in plain
            assert plain.count("\\x1b[31mRED") >= 6  # env, task, episode, host, agent, judge, kind...
            assert app.title == "trajrec"
    asyncio.run(run())
