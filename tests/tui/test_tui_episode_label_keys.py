"""The episode's own label from the viewer (``P`` then p / f / s / c / n), and a score (``#``) or category (``C``) on
the current step: each key writes the label ``trajrec label add`` writes (compared field by field with one the CLI
writes into a copy of the run), the header shows it at once, undo and redo cover it, a score that is not a finite
number or an empty category writes nothing, and keys typed in one burst keep their order. Labels are read back
through a fresh ``LabelStore``, as another process would; the CLI is run in process (``trajrec.cli.main``)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from tui_helpers import MAIN_ACTIONS, SIZE, burst, open_ready, record, step_of, until

from trajrec.cli import main as cli
from trajrec.recorder import open_episode
from trajrec.replay.labels import Label, LabelStore
from trajrec.tui.app import create_app
from trajrec.tui.episode_header import EpisodeHeader
from trajrec.tui.help_screen import HelpScreen
from trajrec.tui.key_hints import KeyHints
from trajrec.tui.prompt_bar import PromptBar
from trajrec.tui.timeline_legend import TimelineLegend

#: The fields ``label ls`` and the exports read; the id, time and supersedes differ from write to write.
FIELDS = ("episode_id", "target", "kind", "judge", "value", "score", "rationale", "tags", "author", "deleted")


def episode_id(path: Path) -> str:
    with open_episode(path) as ep:
        return ep.episode_id


def live(path: Path, target: int | str | None = None) -> list[Label]:
    return LabelStore.for_path(path).current(episode_id(path), target)


def fields(labels: list[Label]) -> list[tuple[Any, ...]]:
    return [tuple(getattr(lab, f) for f in FIELDS) for lab in labels]


def label_add(path: Path, *args: str) -> None:
    """``trajrec label add PATH --annotator ana ARGS`` (the CLI's own code, in this process)."""
    assert cli(["label", "add", str(path), "--annotator", "ana", *args]) == 0


def header(app: Any) -> str:
    return app.screen.query_one(EpisodeHeader).render().plain


def bar(app: Any) -> PromptBar:
    return app.screen.query_one(PromptBar)


async def keys(pilot: Any, *typed: str) -> None:
    """Type ``typed`` in one burst and wait until every key ran (the prompt closed, nothing held)."""
    app = pilot.app
    burst(app, *typed)
    await until(pilot, lambda: not app._held and not app._holding and not bar(app).asking)
    await pilot.pause()


@pytest.fixture
def cli_copy(main_episode: Path, tmp_path: Path) -> Path:
    """The same episode file in a run folder of its own, labeled by the CLI."""
    folder = tmp_path / "cli"
    folder.mkdir()
    return Path(shutil.copy(main_episode, folder / main_episode.name))


def test_episode_verdict_score_category_are_what_label_add_writes(main_episode: Path, cli_copy: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_ready(pilot)
            legend = screen.query_one(TimelineLegend)
            await keys(pilot, "l", "l", "P", "p")  # (on step 2: the episode's label is the same from any step)
            label_add(cli_copy, "--step", "episode", "--value", "pass")
            assert fields(live(main_episode, "episode")) == fields(live(cli_copy, "episode"))
            [lab] = live(main_episode)
            assert (lab.target, lab.value, lab.score, lab.kind, lab.judge, lab.author) == (
                "episode", True, None, "judge", "human:ana", "ana")
            assert "labels  pass human:ana (you)" in header(app) and legend.note == "episode: verdict pass"
            assert step_of(app) == 2 and legend.labeled == "labeled 0/10 (you)"  # steps count steps only

            await keys(pilot, "P", "s", *"0.8", "enter")
            label_add(cli_copy, "--step", "episode", "--value", "pass", "--score", "0.8")
            assert fields(live(main_episode, "episode")) == fields(live(cli_copy, "episode"))
            assert "pass score 0.8 human:ana (you)" in header(app)

            await keys(pilot, "P", "c", *"wrong-tool", "enter")
            label_add(cli_copy, "--step", "episode", "--value", "wrong-tool", "--score", "0.8")
            assert fields(live(main_episode, "episode")) == fields(live(cli_copy, "episode"))
            assert "wrong-tool score 0.8 human:ana (you)" in header(app)
            assert legend.note == "episode: category wrong-tool (was pass)"

            await keys(pilot, "P", "f", "P", "n", *"gave up", "enter")
            label_add(cli_copy, "--step", "episode", "--value", "fail", "--score", "0.8", "--rationale", "gave up")
            assert fields(live(main_episode, "episode")) == fields(live(cli_copy, "episode"))
            assert "fail score 0.8 human:ana (you): gave up" in header(app)
            # One live label on the episode, a version per key (as label add writes a version per call).
            assert len(LabelStore.for_path(main_episode).history((episode_id(main_episode), "episode"))) == 5
        # label ls reads both runs' labels alike.
        capsys.readouterr()
        rows = []
        for path in (main_episode, cli_copy):
            assert cli(["label", "ls", str(path), "--json"]) == 0
            out = capsys.readouterr().out
            rows.append([{k: v for k, v in row.items() if k not in ("id", "time", "supersedes", "run")}
                         for row in map(json.loads, out.splitlines())])
        assert rows[0] == rows[1] and rows[0][0]["value"] is False and rows[0][0]["score"] == 0.8
    asyncio.run(run())


def test_step_score_and_category_are_what_label_add_writes(main_episode: Path, cli_copy: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_ready(pilot)
            await keys(pilot, "number_sign", *"0.5", "enter")  # a score on a step not rated: a neutral carries it
            label_add(cli_copy, "--step", "0", "--value", "0", "--score", "0.5")
            assert fields(live(main_episode, 0)) == fields(live(cli_copy, 0))
            assert screen.query_one(TimelineLegend).note == "step 0: score 0.5"
            await keys(pilot, "plus")  # the rating keeps the score
            label_add(cli_copy, "--step", "0", "--value", "+1", "--score", "0.5")
            assert fields(live(main_episode, 0)) == fields(live(cli_copy, 0))
            await keys(pilot, "C", *"slow", "enter")
            label_add(cli_copy, "--step", "0", "--value", "slow", "--score", "0.5")
            assert fields(live(main_episode, 0)) == fields(live(cli_copy, 0))
            assert screen._label_mark(0) == "*" and "slow" in screen.query_one("StepDetail").text.plain
            await keys(pilot, "number_sign", "backspace", "enter")  # (the prompt shows 0.5): empty clears it
            label_add(cli_copy, "--step", "0", "--value", "slow")
            assert fields(live(main_episode, 0)) == fields(live(cli_copy, 0))
    asyncio.run(run())


def test_undo_and_redo_cover_episode_labels(main_episode: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_ready(pilot)
            legend = screen.query_one(TimelineLegend)
            await keys(pilot, "P", "p", "P", "s", "2", "enter", "G")
            assert [(lab.value, lab.score) for lab in live(main_episode)] == [(True, 2.0)]
            await keys(pilot, "u")  # the score goes; the cursor stays where it is (the episode is no step)
            assert [(lab.value, lab.score) for lab in live(main_episode)] == [(True, None)]
            assert step_of(app) == 9 and legend.note == "undid episode: score 2"
            assert "pass human:ana (you)" in header(app) and "score" not in header(app)
            await keys(pilot, "u")  # the verdict goes: the label is deleted, the header has no labels line
            assert live(main_episode) == [] and "human:ana" not in header(app)
            await keys(pilot, "ctrl+r")
            assert [(lab.value, lab.score) for lab in live(main_episode)] == [(True, None)]
            assert "pass human:ana (you)" in header(app) and legend.note == "redid episode: verdict pass"
            await keys(pilot, "P", "p")  # already pass: nothing written
            assert legend.note == "no change"
    asyncio.run(run())


def test_bad_scores_and_categories_write_nothing(main_episode: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            prompt = bar(app)
            for key, typed, problem in [
                (["P", "s"], "abc", "not a finite number: 'abc'; a score is a number like 0.75"),
                (["P", "s"], "nan", "not a finite number: 'nan'"),
                (["number_sign"], "1e999", "not a finite number: '1e999'"),
                (["number_sign"], "0,5", "not a finite number: '0,5'"),
                (["C"], "  ", "empty category: type a name, e.g. wrong-tool"),
                (["P", "c"], "pass", "'pass' reads as pass, not a category"),
                (["P"], "x", "no choice 'x': type p, f, s, c, n"),
            ]:
                burst(app, *key, *typed, "enter")
                await until(pilot, lambda: prompt.problem != "")
                await pilot.pause()
                assert prompt.asking and problem in prompt.problem, (typed, prompt.problem)
                assert problem in str(prompt.query_one("Label").render())  # said in the prompt bar
                await keys(pilot, "escape")
                assert live(main_episode) == []
            # Fixed in the open prompt, the answer goes through.
            await keys(pilot, "number_sign", *"abc", "enter", "backspace", "backspace", "backspace", *"0.25", "enter")
            assert [(lab.target, lab.value, lab.score) for lab in live(main_episode)] == [(0, 0, 0.25)]
    asyncio.run(run())


def test_correcting_a_refused_score_keeps_the_saved_one_until_the_new_one(main_episode: Path) -> None:
    """A refused answer stays as typed, the cursor at its end: a backspace takes back one character (it erased
    the whole answer, and the enter after it cleared the saved score), and typing goes on after it."""
    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            prompt = bar(app)
            await keys(pilot, "P", "s", *"0.4", "enter")
            assert [(lab.target, lab.score) for lab in live(main_episode)] == [("episode", 0.4)]
            # The saved 0.4 is offered selected: typing replaces it; the typo is refused, then corrected.
            await keys(pilot, "P", "s", *"0.7x", "enter")
            assert prompt.asking and "not a finite number: '0.7x'" in prompt.problem
            assert [(lab.target, lab.score) for lab in live(main_episode)] == [("episode", 0.4)]
            await keys(pilot, "backspace", "enter")
            assert not prompt.asking
            assert [(lab.target, lab.score) for lab in live(main_episode)] == [("episode", 0.7)]
            # Typing after a refusal goes on after the text, in the order typed.
            await keys(pilot, "number_sign", "x", "enter", "y")
            assert prompt.input.value == "xy"
            await keys(pilot, "escape")
            assert [(lab.target, lab.score) for lab in live(main_episode)] == [("episode", 0.7)]
    asyncio.run(run())


def test_a_burst_keeps_its_order_through_the_episode_prompts(main_episode: Path) -> None:
    """``P p P s 0.8 enter +``: the verdict, the score, then a rating on the step; keys after a refused score
    stay in its prompt until escape (``+`` is typed there), and the rating after that lands on the step."""
    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_ready(pilot)
            burst(app, "P", "p", "P", "s", "0", ".", "8", "enter", "plus", "l",
                  "C", *"slow", "enter", "l", "number_sign", "2", "enter", "l",
                  "number_sign", "x", "enter", "plus", "escape", "minus", "P", "n", *"ok", "enter", "l", "0")
            await until(pilot, lambda: step_of(app) == 4 and screen.session.progress()[0] == 5)
            await pilot.pause()
            got = sorted(((str(lab.target), lab.value, lab.score, lab.rationale) for lab in live(main_episode)))
            assert got == [("0", 1, None, None), ("1", "slow", None, None), ("2", 0, 2.0, None),
                           ("3", -1, None, None), ("4", 0, None, None), ("episode", True, 0.8, "ok")]
            assert "pass score 0.8 human:ana (you): ok" in header(app)
    asyncio.run(run())


def test_a_key_a_prompt_does_not_take_does_nothing_after_it_closes(main_episode: Path) -> None:
    """``ctrl+r`` typed into a prompt (no text, no binding of the input) used to run as a redo once escape closed
    the prompt: Textual delivered it to the input after the escape, which handed it back to the screen."""
    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            await keys(pilot, "plus", "u")
            assert live(main_episode) == []
            await keys(pilot, "number_sign", "1", "ctrl+r", "escape")
            for _ in range(5):  # (a key handed back would run within a few turns of the loop)
                await pilot.pause()
            assert live(main_episode) == [] and not bar(app).asking
            await keys(pilot, "ctrl+r")  # redo still works: what u took back comes back
            assert [(lab.target, lab.value) for lab in live(main_episode)] == [(0, 1)]
    asyncio.run(run())


def test_kto_reads_the_viewer_verdict_as_the_cli_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An episode without a recorded verdict: kto leaves it out until someone gives it one; the viewer's ``P f``
    and ``label add --step episode --value fail`` give the same row."""
    viewer = record(tmp_path / "viewer", MAIN_ACTIONS)
    folder = tmp_path / "cli"
    folder.mkdir()
    by_cli = Path(shutil.copy(viewer, folder / viewer.name))

    def kto(path: Path, name: str) -> list[dict[str, Any]]:
        out = tmp_path / f"{name}.jsonl"
        assert cli(["export", str(path), "--format", "kto", "--out", str(out), "--overwrite"]) == 0
        return [json.loads(line) for line in out.read_text().splitlines()]

    assert kto(viewer, "before") == []

    async def run() -> None:
        app = create_app([viewer], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            await open_ready(pilot)
            await keys(pilot, "P", "f")
    asyncio.run(run())
    label_add(by_cli, "--step", "episode", "--value", "fail")
    rows, cli_rows = kto(viewer, "viewer"), kto(by_cli, "cli")
    assert [r["label"] for r in rows] == [False]
    strip = lambda r: {k: v for k, v in r.items() if k != "trajrec"}  # noqa: E731 (the metadata names the path)
    assert [strip(r) for r in rows] == [strip(r) for r in cli_rows]
    capsys.readouterr()


def test_help_and_key_hints_show_the_new_keys(main_episode: Path) -> None:
    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_ready(pilot)
            hints = screen.query_one(KeyHints).render().plain
            # P is in the key hints, and at 120 columns they still end with the help key.
            assert " u Undo  P Episode " in hints and hints.rstrip().endswith("? Help") and len(hints.rstrip()) <= 120
            await pilot.press("question_mark")
            await until(pilot, lambda: isinstance(app.screen, HelpScreen))
            text = app.screen.help_text().plain
            for line in ("  P   Your label on the whole episode: then p pass, f fail, s score, c category, n note\n",
                         "  #   Score your label on the step", "  C   Category of your label on the step",
                         "P p  pass  P f  fail  P s  score  P c  category  P n  note"):
                assert line in text, line
    asyncio.run(run())
