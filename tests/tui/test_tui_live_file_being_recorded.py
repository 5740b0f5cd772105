"""The viewer says a file a live Recorder still writes is "being recorded" (FINDINGS33 #9), as `show`, `ls` and
`fsck` do (``trajrec.recorder.fsck.being_recorded``): the library row and its status line, and the episode
header, where it read "incomplete (no index: the writer did not close the file)", the text of a crashed writer. A
copy of the same bytes (nobody holds its lock) is still told as incomplete. The real Textual app, headless."""

from __future__ import annotations

import asyncio
import shutil
import warnings
from pathlib import Path

import gymnasium as gym
import pytest
from tui_helpers import open_ready, until

from trajrec.recorder import Recorder
from trajrec.tui.app import create_app
from trajrec.tui.episode_header import EpisodeHeader
from trajrec.tui.scan_status import ScanStatus

SIZE = (160, 40)


def _screen_text(app) -> str:  # type: ignore[no-untyped-def]
    return "\n".join("".join(seg.text for seg in strip) for strip in app.screen._compositor.render_strips())


async def _library(path: Path) -> tuple[str, str]:
    """The library's status line and table as drawn for folder ``path``."""
    app = create_app([path], use_catalog=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query(ScanStatus) and app.screen.query_one(ScanStatus).finished)
        await pilot.pause()
        return str(app.screen.query_one(ScanStatus).render()), _screen_text(app)


async def _header(path: Path) -> str:
    app = create_app([path])
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_ready(pilot)
        return " ".join(str(screen.query_one(EpisodeHeader).render()).split())


@pytest.fixture
def live(tmp_path: Path):  # type: ignore[no-untyped-def]
    import trajrec.envs  # noqa: F401 - registers the ids

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = Recorder(gym.make("trajrec/Shell-v0"), tmp_path / "live")
        env.reset(seed=0)
        for _ in range(2):
            env.step("ls")
    assert env.episode_path is not None
    try:
        yield env, Path(env.episode_path)
    finally:
        env.close()


def test_the_library_says_being_recorded(live, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env, path = live
    status, screen = asyncio.run(_library(path.parent))
    assert "1 being recorded (a live Recorder holds it; what it has written so far)" in status
    row = next(line for line in screen.splitlines() if "shell-organize-1" in line)
    assert "recording" in row and "incomplete" not in row and " 2 " in row  # the steps written so far
    # The same bytes with no writer: an unfinished file, as before.
    (tmp_path / "dead").mkdir()
    shutil.copyfile(path, tmp_path / "dead" / path.name)
    status, screen = asyncio.run(_library(tmp_path / "dead"))
    row = next(line for line in screen.splitlines() if "shell-organize-1" in line)
    assert "incomplete" in row and "recording" not in row and "being recorded" not in status


def test_the_episode_header_says_being_recorded(live, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env, path = live
    header = asyncio.run(_header(path))
    assert "outcome being recorded (a live Recorder holds it; F follows it)" in header
    assert "did not close" not in header and "incomplete" not in header
    (tmp_path / "dead").mkdir()
    copy = tmp_path / "dead" / path.name
    shutil.copyfile(path, copy)
    header = asyncio.run(_header(copy))
    assert "outcome incomplete (no index: the writer did not close the file)" in header
    assert "being recorded" not in header
    env.close()  # the recording ends: the real outcome
    header = asyncio.run(_header(path))
    assert "outcome stopped" in header and "being recorded" not in header
