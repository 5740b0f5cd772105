"""Helpers for the TUI tests: a tiny text tool env, deterministic episodes, and Pilot helpers.

Episodes are recorded with the real Recorder, with its clock, ids and provenance pinned, so the same test
always writes the same episodes and the snapshot tests see the same screen on any machine, on any day.
(A module with a unique name, not conftest.py: test folders share one import namespace.)
"""

from __future__ import annotations

import itertools
import time as _time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import gymnasium as gym
import pytest
from textual.app import App
from textual.pilot import Pilot

from trajrec import recorder

import trajrec.recorder.wrapper
from trajrec import recorder
import trajrec.recorder.writer
from trajrec.recorder import Recorder

PINNED_PROVENANCE = {
    "host": "testhost",
    "pid": 1,
    "argv": ["pytest"],
    "python": "3.11",
    "platform": "test",
    "packages": {},
    "start_time": "2025-01-01T00:00:00Z",
    "code_revision": {"commit": "0123456789abcdef0123", "dirty": False},
    "recorder": {"name": "trajrec", "version": "0.0.test", "format_version": 1},
    "env_package": {"module": "conftest", "class": "NotesEnv", "package": "tests", "version": None},
}


class NotesEnv(gym.Env):
    """A tiny file tool env: ``write NAME TEXT``, ``cat NAME``, ``rm NAME``, ``submit``.

    Its state is ``{"cwd", "files": {name: text}, "log": [...]}``; ``cat`` of a missing file sets
    ``info["error"]`` (a tool error for the Recorder); ``boom`` raises.
    """

    metadata = {"render_modes": []}

    def __init__(self, task_id: str = "notes-1", goal: str = "write hello into notes.txt") -> None:
        self.observation_space = gym.spaces.Text(max_length=10_000)
        self.action_space = gym.spaces.Text(max_length=10_000)
        self.task_id = task_id
        self.goal = goal
        self.files: dict[str, str] = {}
        self.log: list[str] = []

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.files = {"readme.txt": "hello from the readme"}
        self.log = []
        return f"task: {self.goal}", {"task": {"id": self.task_id, "text": self.goal, "split": "train",
                                               "verification": ["rule"]}}

    def state_dict(self) -> dict[str, Any]:
        return {"cwd": "/home/user", "files": self.files, "log": self.log}

    def step(self, action: str):
        word, _, rest = action.partition(" ")
        info: dict[str, Any] = {"tool": word}
        if word == "boom":
            raise RuntimeError("the tool crashed")
        if word == "write":
            name, _, text = rest.partition(" ")
            self.files[name] = text
            obs = f"wrote {len(text)} bytes to {name}"
        elif word == "cat":
            if rest in self.files:
                obs = self.files[rest]
            else:
                obs = f"cat: {rest}: No such file or directory"
                info["error"] = "no such file"
        elif word == "rm":
            obs = "removed" if self.files.pop(rest, None) is not None else f"rm: {rest}: not found"
        else:
            obs = f"echo {action}"
        self.log.append(word)
        done = word == "submit"
        return obs, 1.0 if done else 0.0, done, False, info


ENV_ID = "trajrec-test/Notes-v0"
if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=NotesEnv, disable_env_checker=True)

_IDS = itertools.count(1)


@contextmanager
def pinned_clock(ids: Iterator[int] = _IDS) -> Iterator[None]:
    """Pin the Recorder's wall clock, step timer and random ids (episode ids are made from both)."""
    ticks = itertools.count()
    fake_time = SimpleNamespace(time=lambda: 1_735_689_600.0, strftime=lambda fmt, *a: "20250101T000000",
                                gmtime=_time.gmtime, monotonic=_time.monotonic, perf_counter=_time.perf_counter)
    fake_secrets = SimpleNamespace(token_hex=lambda n=4: f"{next(ids):0{2 * n}x}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(recorder.wrapper, "time", fake_time)
        mp.setattr(recorder.wrapper, "secrets", fake_secrets)
        mp.setattr(recorder.wrapper, "perf_counter", lambda: next(ticks) * 0.0015)
        mp.setattr(recorder.writer, "time", fake_time)
        yield


def record(out: Path, actions: list[str], *, task_id: str = "notes-1", goal: str = "write hello into notes.txt",
           notes: dict[int, dict[str, Any]] | None = None, verdict: bool | None = None,
           step_checks: dict[int, bool] | None = None, agent: str = "scripted",
           ids: Iterator[int] | None = None, **recorder_kw: Any) -> Path:
    """Record one NotesEnv episode of ``actions`` (under :func:`pinned_clock`); return its file.

    ``ids`` numbers the episode ids; pass one counter per folder so a folder's ids do not depend on what
    other tests recorded before.
    """
    notes = notes or {}
    step_checks = step_checks or {}
    with pinned_clock(ids if ids is not None else itertools.count(1)):
        env = Recorder(gym.make(ENV_ID, task_id=task_id, goal=goal), out,
                       agent={"name": agent, "version": "1.0", "model": "tiny"},
                       provenance=dict(PINNED_PROVENANCE), run_id="run-test", **recorder_kw)
        env.reset(seed=0)
        for i, action in enumerate(actions):
            if i in notes:
                env.note(**notes[i])
            try:
                env.step(action)
            except RuntimeError:
                pass  # recorded as an exception step; the episode goes on
            if i in step_checks:
                env.check(step_checks[i], kind="rule", judge="lint@1", rationale="file names are lower-case")
        if verdict is not None:
            env.check(verdict, kind="rule", judge="notes-goal@1", target="episode",
                      rationale="notes.txt holds 'hello'" if verdict else "notes.txt is missing")
        env.close()
    assert env.episode_path is not None
    return env.episode_path


MAIN_ACTIONS = [
    "cat notes.txt",            # 0 tool error
    "cat readme.txt",           # 1 recovers 0
    "write notes.txt hello",    # 2
    "cat todo.txt",             # 3 tool error
    "cat todo.txt",             # 4 retry of 3, fails again
    "write todo.txt buy milk",  # 5
    "cat todo.txt",             # 6 recovers 3, 4
    "boom",                     # 7 exception
    "rm todo.txt",              # 8
    "submit",                   # 9
]


def make_library(root: Path) -> Path:
    """A folder of four deterministic episodes (two envs' worth of tasks, passes and failures)."""
    root.mkdir(parents=True, exist_ok=True)
    ids = itertools.count(1)
    record(root / "a", MAIN_ACTIONS, notes={0: {"thought": "look for the notes first"}, 2: {"thought": "write it"}},
           verdict=True, step_checks={2: True}, ids=ids)
    record(root / "a", ["cat x.txt", "cat x.txt", "submit"], task_id="notes-2", goal="read x.txt", verdict=False,
           ids=ids)
    record(root / "b", ["write notes.txt hello", "submit"], task_id="notes-3", goal="write hello quickly",
           verdict=True, ids=ids)
    record(root / "b", ["cat readme.txt"] * 3, task_id="notes-4", goal="read the readme three times", ids=ids)
    return root


# -- driving the app ------------------------------------------------------------------------------------------

SIZE = (120, 40)


async def until(pilot: Pilot, cond: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the app run until ``cond()`` holds (workers post their results asynchronously)."""
    for _ in range(int(timeout / 0.01)):
        if cond():
            return
        await pilot.pause(0.01)
    raise AssertionError("condition not reached in time")


def step_of(app: App[None]) -> int:
    """The current step of the episode screen; -1 while another screen (a prompt, the help) is on top."""
    from trajrec.tui.episode_screen import EpisodeScreen

    return app.screen.step_index if isinstance(app.screen, EpisodeScreen) else -1


async def open_ready(pilot: Pilot) -> Any:
    """Wait for the episode screen and its marker index; return the screen."""
    from trajrec.tui.episode_screen import EpisodeScreen

    await until(pilot, lambda: isinstance(pilot.app.screen, EpisodeScreen) and pilot.app.screen.markers_ready)
    return pilot.app.screen


def call_args_shown(app: App[None]) -> list[str]:
    """The arguments of each ``set(...)`` call the screen shows now (the step list's one-line call summaries),
    top to bottom, as drawn."""
    screen = "\n".join("".join(seg.text for seg in strip) for strip in app.screen._compositor.render_strips())
    return [line.split("set(", 1)[1].split(")", 1)[0] for line in screen.splitlines() if "set(" in line]


def burst(app: App[None], *keys: str) -> None:
    """Send keys the way a terminal delivers fast typing or a paste: all queued at once, none waiting for the
    app (``Pilot.press`` waits for the app to settle after every key, which hides routing races)."""
    from textual import events

    names = {"/": "slash", ":": "colon", "-": "minus", " ": "space", "+": "plus", "#": "number_sign"}
    # The character a terminal sends with a named key (Textual's driver names "+" plus and keeps the "+"): a
    # prompt types it.
    chars = {"enter": "\r", "escape": "\x1b", "plus": "+", "minus": "-", "number_sign": "#", "space": " ",
             "slash": "/", "colon": ":"}
    for key in keys:
        char = key if len(key) == 1 else chars.get(key)
        event = events.Key(names.get(key, key), char)
        event.set_sender(app)
        assert app._driver is not None
        app._driver.send_message(event)
