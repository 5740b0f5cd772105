"""The episode screen's jumps to retries, checks and (un)labeled steps, the legend's keys, wrapping, zoom,
pane widths, copying a step, following a growing file, themes: driven by keys, headless."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import gymnasium as gym
import pytest
from tui_helpers import ENV_ID, open_ready, record, step_of, until

from trajrec.recorder import Recorder, open_episode
from trajrec.tui.app import create_app
from trajrec.tui.episode_header import EpisodeHeader
from trajrec.tui.episode_screen import EpisodeScreen
from trajrec.tui.key_hints import KeyHints
from trajrec.tui.markers import JUMPS, legend
from trajrec.tui.state_pane import StatePane
from trajrec.tui.step_detail import StepDetail
from trajrec.tui.timeline import StepTimeline
from trajrec.tui.timeline_legend import TimelineLegend

SMALL = (80, 24)


async def _walk(pilot, key: str, limit: int = 20) -> list[int]:  # type: ignore[no-untyped-def]
    """Press ``key`` until the step stops changing; the steps visited."""
    seen: list[int] = []
    for _ in range(limit):
        before = step_of(pilot.app)
        await pilot.press(key)
        now = step_of(pilot.app)
        if now == before:
            break
        seen.append(now)
    return seen


def test_retry_and_check_jumps(main_episode: Path) -> None:
    with open_episode(main_episode) as ep:
        retries = [s.index for s in ep if s.retry_of is not None]
        checked = [s.index for s in ep if s.checks]
    assert retries and checked  # the episode has both, drawn as failures and recoveries too

    async def run() -> None:
        app = create_app([main_episode])
        async with app.run_test(size=SMALL) as pilot:
            await open_ready(pilot)
            assert await _walk(pilot, "e") == [i for i in retries if i > 0]
            assert app.screen.query_one(TimelineLegend).note == "no next retry"
            assert await _walk(pilot, "E") == [i for i in reversed(retries) if i < retries[-1]]
            await pilot.press("g")
            assert await _walk(pilot, "v") == [i for i in checked if i > 0]
            assert await _walk(pilot, "V") == [i for i in reversed(checked) if i < checked[-1]]
    asyncio.run(run())


def test_legend_shows_the_keys_that_are_bound() -> None:
    # Issue 16, item 5: the legend said "r retry  R recovery" while r/R jumped to recoveries.
    actions = {}
    for binding in EpisodeScreen.NAVIGATION_BINDINGS:
        for key in binding.key.split(","):
            actions[key] = binding.action
    text = legend().plain
    for label, _kinds, keys in JUMPS:
        forward, backward = keys.split("/")
        assert f"{label} [{keys}]" in text  # keys in brackets: "r retry [e/E]", not "r retry e/E"
        name = {"failure": "failure", "recovery": "recovery", "retry": "retry", "check": "check"}[label]
        assert actions[forward] == f"{name}(1)" and actions[backward] == f"{name}(-1)"


def test_labeled_and_unlabeled_jumps(main_episode: Path, tmp_path: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SMALL) as pilot:
            screen = await open_ready(pilot)
            await pilot.press("l", "l", "plus", "l", "l", "l", "minus", "g")  # steps 2 and 5 rated
            await until(pilot, lambda: screen.session.progress()[0] == 2)
            assert await _walk(pilot, "right_curly_bracket") == [2, 5]
            assert await _walk(pilot, "left_curly_bracket") == [2]
            await pilot.press("g", "left_square_bracket")  # previous unlabeled from 0: wraps to the end
            assert step_of(app) == len(screen.episode) - 1
            await pilot.press("l")  # (stays on the last step)
            await pilot.press(*["left_square_bracket"] * 3)  # 8, 7, 6
            assert step_of(app) == 6
            await pilot.press("left_square_bracket")  # 5 is labeled: skipped
            assert step_of(app) == 4
            await pilot.press("right_square_bracket")
            assert step_of(app) == 6
    asyncio.run(run())


def test_wrap_toggle_and_cut_lines_end_in_an_ellipsis(tmp_path: Path) -> None:
    # Issue 16, item 15: long diff lines were cut with no mark. A note long enough to run past 80 columns:
    long = "the quick brown fox jumps over the lazy dog " * 4
    from tui_helpers import record

    path = record(tmp_path / "w", [f"write notes.txt {long}", "submit"])

    async def run() -> None:
        app = create_app([path])
        async with app.run_test(size=SMALL) as pilot:
            screen = await open_ready(pilot)
            state = screen.query_one(StatePane)
            detail = screen.query_one(StepDetail)
            await pilot.pause()
            assert not state.wrap and detail.wrap
            cut = [state.render_line(y).text for y in range(state.scrollable_content_region.height)]
            assert any(line.endswith("…") for line in cut)
            assert not any(long.strip() in line for line in cut)
            await pilot.press("w")
            await pilot.pause()
            assert state.wrap and detail.wrap
            assert "long lines wrap" in screen.query_one(TimelineLegend).note
            shown = "".join(line.plain for line in state._lines)  # every line of the pane, wrapped
            assert "lazy dog the quick" in shown and state.virtual_size.width <= state.scrollable_content_region.width
            await pilot.press("w")
            await pilot.pause()
            assert not state.wrap and not detail.wrap
    asyncio.run(run())


@pytest.mark.parametrize("size", [(80, 24), (160, 45)])
def test_zoom_fills_the_screen_and_the_hints_say_how_to_leave(main_episode: Path, size: tuple[int, int]) -> None:
    async def run() -> None:
        app = create_app([main_episode])
        async with app.run_test(size=size) as pilot:
            screen = await open_ready(pilot)
            hints = screen.query_one(KeyHints)
            header = screen.query_one(EpisodeHeader)
            for keys, pane in [(("z",), screen.query_one(StepTimeline)), (("tab", "z"), screen.query_one(StepDetail)),
                               (("tab", "z"), screen.query_one(StatePane))]:
                await pilot.press("vertical_line", "equals_sign")  # sizes set inline: the zoom still fills
                await pilot.press(*keys)
                await pilot.pause()
                assert screen.maximized is pane
                assert pane.outer_size.width == size[0]
                # Everything but the header (on top) and the key hints (the last line).
                assert header.region.y == 0 and hints.region.y == size[1] - 1
                assert pane.region.y == header.outer_size.height
                assert pane.outer_size.height == size[1] - header.outer_size.height - 1
                assert str(hints.render()).startswith(" z esc Unzoom ")
                await pilot.press("escape" if pane is not screen.query_one(StepDetail) else "z")
                await pilot.pause()
                assert screen.maximized is None and "Unzoom" not in str(hints.render())
                assert screen.is_current  # escape unzoomed, it did not leave the episode
    asyncio.run(run())


def test_zoom_and_resize(main_episode: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode])
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_ready(pilot)
            timeline = screen.query_one(StepTimeline)
            await pilot.press("z")
            assert screen.maximized is timeline
            await pilot.press("l")  # stepping still works while zoomed
            assert step_of(app) == 1
            await pilot.press("z")
            assert screen.maximized is None
            before = timeline.size.width
            await pilot.press("vertical_line")
            await pilot.pause()
            assert timeline.size.width > before  # 45% -> 60%
            await pilot.press("vertical_line")
            await pilot.pause()
            assert timeline.size.width < before  # -> 30%
            state, detail = screen.query_one(StatePane), screen.query_one(StepDetail)
            fit = state.outer_size.height
            await pilot.press("equals_sign")  # half
            await pilot.pause()
            assert state.outer_size.height > fit and abs(state.outer_size.height - detail.outer_size.height) <= 1
            await pilot.press("equals_sign")  # three quarters
            await pilot.pause()
            assert state.outer_size.height > 2 * detail.outer_size.height
            await pilot.press("equals_sign")  # back to fitting its text
            await pilot.pause()
            assert state.outer_size.height == fit
    asyncio.run(run())


def test_copy_step_as_json(main_episode: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode])
        async with app.run_test(size=SMALL) as pilot:
            await open_ready(pilot)
            await pilot.press("l", "l", "l", "y")
            record = json.loads(app.clipboard)
            assert record["index"] == 3 and record["action"] == "cat todo.txt"
            assert record["failure"]["kind"] == "tool_error" and record["path"] == str(main_episode)
            assert "copied as JSON" in app.screen.query_one(TimelineLegend).note
    asyncio.run(run())


#: Recorded text that would drive a terminal: a C1 CSI (U+009B), a right-to-left override, a line separator.
HOSTILE = "write a \x9b31m\u202eevil\u2028x\x7f"


def test_copied_json_escapes_control_characters(tmp_path: Path) -> None:
    episode = record(tmp_path / "run", [HOSTILE, "submit"])
    async def run() -> None:
        app = create_app([episode])
        async with app.run_test(size=SMALL) as pilot:
            await open_ready(pilot)
            await pilot.press("y")
            text = app.clipboard
            assert not any(c in text for c in "\x9b\u202e\u2028\x7f")  # escaped: \u009b ...
            assert "\\u009b" in text and "\\u202e" in text
            assert json.loads(text)["action"] == HOSTILE  # the same value
    asyncio.run(run())


def one_step_episode(env: gym.Env, folder: Path) -> Path:
    """``env`` recorded into ``folder``: a reset and one step (action "go"); the episode file's path."""
    rec = Recorder(env, folder)
    rec.reset(seed=0)
    rec.step("go")
    rec.close()
    assert rec.episode_path is not None
    return rec.episode_path


class _OddValues(gym.Env):
    """One step whose values plain JSON cannot hold as they are: a NaN reward, bytes, an infinity, a "$" key."""

    observation_space = gym.spaces.Text(64)
    action_space = gym.spaces.Text(64)

    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        super().reset(seed=seed)
        return "start", {}

    def step(self, action):  # type: ignore[no-untyped-def]
        return b"\x00\xffraw", float("nan"), True, False, {"limit": float("-inf"), "$ref": "a"}


def test_copied_json_is_the_exact_encoding_of_other_commands(tmp_path: Path) -> None:
    """`y` copies the step as strict JSON in the encoding `--json` and the exports use (docs/EXPORT.md): NaN and
    the infinities marked, bytes as hex, a recorded "$" key escaped; not the display's text ("nan", "<5 bytes>")."""
    path = one_step_episode(_OddValues(), tmp_path / "run")

    def refuse(name: str) -> None:
        raise ValueError(f"not strict JSON: {name}")

    async def run() -> None:
        app = create_app([path])
        async with app.run_test(size=SMALL) as pilot:
            await open_ready(pilot)
            await pilot.press("y")
            record = json.loads(app.clipboard, parse_constant=refuse)
            assert record["reward"] == {"$float": "nan"}
            assert record["observation"] == {"$bytes": "00ff726177"}
            assert record["info"] == {"limit": {"$float": "-inf"}, "$$ref": "a"}
    asyncio.run(run())


def test_follow_a_file_still_being_recorded(tmp_path: Path) -> None:
    env = Recorder(gym.make(ENV_ID), tmp_path / "live")
    env.reset(seed=0)
    for _ in range(3):
        env.step("cat readme.txt")
    path = env.episode_path
    assert path is not None

    async def run() -> None:
        app = create_app([path])
        async with app.run_test(size=SMALL) as pilot:
            screen = await open_ready(pilot)
            assert len(screen.episode) == 3
            await pilot.press("F", "g")
            assert screen.following and step_of(app) == 0
            assert screen.query_one(TimelineLegend).follow == "following (F stops)"
            for _ in range(4):
                env.step("write notes.txt hello")
            screen.poll_file()  # what the follow timer calls every second
            await pilot.pause()
            assert len(screen.episode) == 7 and step_of(app) == 6
            env.close()
            screen.poll_file()
            await pilot.pause()
            assert screen.episode.complete and not screen.following
            assert screen.query_one(TimelineLegend).follow == "recording finished: the file is closed"
    asyncio.run(run())


def test_light_theme_and_no_color(main_episode: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def run() -> None:
        app = create_app([main_episode], theme="light")
        async with app.run_test(size=SMALL) as pilot:
            assert app.theme == "textual-light"
            await pilot.press("ctrl+t")
            assert app.theme == "textual-dark"
        monkeypatch.setenv("NO_COLOR", "1")
        plain = create_app([main_episode])
        async with plain.run_test(size=SMALL) as pilot:
            await open_ready(pilot)
            assert plain.no_color
            # Textual reads NO_COLOR and draws every line through its monochrome filter.
            from textual.filter import Monochrome

            assert any(isinstance(f, Monochrome) for f in plain._filters)
    asyncio.run(run())


def test_search_the_steps_of_every_episode(library: Path) -> None:
    async def run() -> None:
        app = create_app([library])
        async with app.run_test(size=SMALL) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            from trajrec.tui.episode_table import EpisodeTable
            from trajrec.tui.scan_status import ScanStatus

            screen = app.library
            table = screen.query_one(EpisodeTable)
            everyone = [e.task_id for e in table.rows]
            await pilot.press("ctrl+f", *"readme", "enter")
            await until(pilot, lambda: screen.step_hits is not None)
            # notes-1 reads readme.txt at step 1, notes-4 at step 0; the others never do.
            assert [e.task_id for e in table.rows] == ["notes-1", "notes-4"]
            assert screen.step_hits == {table.rows[0].path: 1, table.rows[1].path: 0}
            assert "steps matching 'readme': 2 episodes" in screen.query_one(ScanStatus).search
            await pilot.press("enter")
            episode_screen = await open_ready(pilot)
            assert step_of(app) == 1 and "readme" in str(episode_screen.episode[1].action)
            await pilot.press("q")
            await pilot.press("escape")  # back to every episode
            assert [e.task_id for e in table.rows] == everyone and screen.step_hits is None
            await pilot.press("ctrl+f", *"nowhere to be found", "enter")
            await until(pilot, lambda: screen.step_hits is not None)
            assert table.rows == [] and "no step of the shown episodes contains" in table.empty_text
    asyncio.run(run())


def test_library_shows_labels_other_processes_write(library: Path) -> None:
    from trajrec.replay.labels import LabelStore
    from trajrec.tui.episode_table import EpisodeTable

    async def run() -> None:
        app = create_app([library], annotator="ana")
        async with app.run_test(size=SMALL) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            table = app.screen.query_one(EpisodeTable)
            first = table.rows[0]
            assert first.labeled in (None, 0.0)
            other = LabelStore(Path(first.path).parent)  # another writer: its own file in the labels folder
            other.add(first.episode_id, 0, 1, judge="human:bob")
            other.close()
            app.poll_labels()  # what the app's timer calls every couple of seconds
            await until(pilot, lambda: (first.labeled or 0) > 0)
            assert f"{first.labeled:.0%}" in table.render_line(1).text
    asyncio.run(run())


class _NumpyValuesEnv:
    """One step whose observation holds the numpy values trajrec records exactly but plain JSON cannot take."""

    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        return "start", {}

    def step(self, action):  # type: ignore[no-untyped-def]
        import numpy as np

        obs = {"day": np.datetime64("2020-01-01"), "days": np.array(["2020-01-01", "NaT"], dtype="datetime64[D]"),
               "wait": np.timedelta64(5, "s"), "z": np.array([1 + 2j]), "raw": np.array([b"x"]),
               "long": np.longdouble("1.5"), "zl": np.clongdouble(1 + 1j)}
        return obs, np.float64(1.0), True, False, {}


def test_numpy_values_json_cannot_take_are_shown_not_crashed_on(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """`y` in the viewer, `show --json` and `diff --json` on a step holding datetime64, timedelta64, complex,
    bytes arrays and long doubles: JSON text of the values, never a traceback."""
    from trajrec.cli import main

    path = one_step_episode(_NumpyValuesEnv(), tmp_path / "run")
    capsys.readouterr()
    assert main(["show", str(path), "--json", "--step", "0"]) == 0
    out = capsys.readouterr().out
    obs = next(json.loads(line) for line in out.splitlines() if '"observation"' in line)["observation"]
    assert obs["day"] == "2020-01-01" and obs["days"] == ["2020-01-01", "NaT"] and obs["wait"] == "5 seconds"
    # The export's encoding (docs/EXPORT.md, "JSON: exact or explicit"): complex marked, an exact long double a number.
    assert obs["z"] == {"$complex": [[1.0], [2.0]]} and obs["raw"] == [{"$bytes": "78"}] and obs["long"] == 1.5
    assert main(["diff", str(path), str(path), "--json"]) == 0

    async def run() -> None:
        app = create_app([path])
        async with app.run_test(size=SMALL) as pilot:
            await open_ready(pilot)
            await pilot.press("y")
            record = json.loads(app.clipboard)
            assert record["observation"] == obs  # what `show --json` writes: the same encoding
    asyncio.run(run())
