"""Recorded text reaches the screen as literal characters: no markup, no links, no terminal escapes."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

from rich.segment import Segment
from textual.app import App
from tui_helpers import open_ready, record, until

from trajrec.tui.app import create_app

NASTY = [
    "[bold]x[/]",
    "[link=http://x]y[/link]",
    "\x1b[31mred\x1b[0m",
    "bell\x07",
    "cr\rover",
    "[@click=app.quit]quit[/]",
]
# What each must look like on screen (control characters as visible escapes, everything else as typed).
SHOWN = [
    "[bold]x[/]",
    "[link=http://x]y[/link]",
    "\\x1b[31mred\\x1b[0m",
    "bell\\x07",
    "cr\\x0dover",
    "[@click=app.quit]quit[/]",
]


def screen_segments(app: App[None]) -> list[list[Segment]]:
    """The composed screen, line by line, as styled segments (what would be written to the terminal)."""
    return [list(strip) for strip in app.screen._compositor.render_strips()]


def assert_literal(app: App[None], expected: list[str]) -> str:
    lines = screen_segments(app)
    text = "\n".join("".join(seg.text for seg in line) for line in lines)
    for shown in expected:
        # Each value is one run of one style: nothing inside it was read as markup or an escape.
        assert any(shown in seg.text for line in lines for seg in line), (shown, text)
    for line in lines:
        for seg in line:
            assert not any(c in seg.text for c in "\x1b\x07\r"), repr(seg.text)
            assert seg.style is None or not seg.style.link, seg
            assert seg.style is None or not seg.style.meta.get("@click"), seg
    return text


def test_recorded_text_is_shown_literally(tmp_path: Path) -> None:
    observation = "\n".join(NASTY)
    ids = itertools.count(1)
    path = record(tmp_path / "runs", [f"say {NASTY[0]} {NASTY[2]}", "cat nothing"],
                  task_id="[b]task[/b]", goal="goal [blink]G[/blink] \x1b[5mX",
                  notes={0: {"thought": NASTY[1] + " " + NASTY[3]}}, ids=ids)
    # A second episode whose step 1 observation is the whole nasty text (the env returns the file's text).
    big = record(tmp_path / "runs", [f"write f.txt {observation}", "cat f.txt"], task_id="t2", ids=ids)
    assert path != big

    async def run() -> None:
        app = create_app([tmp_path / "runs"])
        async with app.run_test(size=(200, 50)) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            text = assert_literal(app, ["[b]task[/b]", "goal [blink]G[/blink] \\x1b[5mX"])
            assert "(?)" not in text
            app.library.select_path(str(path))
            await pilot.press("enter")
            await open_ready(pilot)
            await pilot.pause()
            assert_literal(app, ["say [bold]x[/] \\x1b[31mred\\x1b[0m", "[link=http://x]y[/link] bell\\x07",
                                 "goal [blink]G[/blink] \\x1b[5mX"])
            await pilot.press("L")  # the other episode: the nasty text as a whole observation
            await until(pilot, lambda: app.screen.episode.path == str(big))
            assert app.screen.episode[1].observation == observation
            await pilot.press("l")
            await pilot.pause()
            assert_literal(app, SHOWN)
    asyncio.run(run())


def test_header_with_fields_of_unexpected_types_and_lone_surrogates_renders(tmp_path):
    import gymnasium as gym

    from trajrec.recorder import Recorder, open_episode
    from trajrec.tui.episode_header import header_text

    rec = Recorder(gym.make("CartPole-v1"), tmp_path,
                   task={"id": 5, "text": ["a\udcff"], "split": 3.5},
                   provenance={"code_revision": 5, "agent": [1], "host": {"h": "\ud83d"}, "recorder": "x"})
    rec.reset(seed=0)
    rec.step(0)
    rec.close()
    text = header_text(open_episode(rec.episode_path), width=100).plain
    assert "\\udcff" in text and "\\ud83d" in text
    text.encode("utf-8")  # nothing a terminal cannot encode
