"""The keys typed after a marker jump (``n N r R e E v V``) wait for the step it goes to, as the keys after a
search wait for its match (FINDINGS32 #1). The jumps read the marker index, which a worker builds after the
episode opens; right after ``L``/``H`` it is not read yet, the jump waited for it, the keys after it did not: in
``L + n -`` the -1 meant for the failure at step 3 replaced the +1 on step 0, with the cursor shown on step 3.

Keys are sent with ``burst`` (all queued at once, as ``tmux send-keys`` delivers them) and the labels are read
back through a fresh ``LabelStore``, as another process would. The library is three real recorded episodes:
``A`` and ``C`` are ``MAIN_ACTIONS`` (failures at 0, 3, 4, 7; recoveries at 1, 6; retries at 1, 4, 6; a check at 2),
``B`` between them has no marker at all; ``B`` is opened, so ``L`` opens ``C`` and ``H`` opens ``A``.

The index is made slow deterministically, not timed, for the tests of a long wait: the scan waits on a gate the
test opens (the real scan then runs), and the stale-hold guard is shortened to a few milliseconds, so a jump's
hold that still obeyed it would be dropped while the gate is closed."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tui_helpers import MAIN_ACTIONS, SIZE, burst, open_ready, record, step_of, until

from trajrec.recorder import open_episode
from trajrec.replay.labels import LabelStore
from trajrec.tui import episode_screen, key_order
from trajrec.tui.app import create_app
from trajrec.tui.episode_screen import EpisodeScreen
from trajrec.tui.label_session import DEFAULT_TAGS
from trajrec.tui.markers import CHECK_CODES, FAILURE_CODES, RECOVERY_CODES, RETRY_CODES
from trajrec.tui.step_scan import scan_markers


def labels_of(path: str | Path) -> list[tuple[int, int, str | None, float | None, tuple[str, ...]]]:
    """(step, value, rationale, score, tags) of the episode's live labels, by step."""
    with open_episode(path) as ep:
        episode_id = ep.episode_id
    return sorted((lab.target, lab.value, lab.rationale, lab.score, tuple(lab.tags))
                  for lab in LabelStore.for_path(path).current(episode_id))


def marked(path: str | Path, codes: frozenset[int]) -> list[int]:
    """The steps of ``path`` whose marker is in ``codes``, read with the index scan itself."""
    markers = bytearray()
    for _start, batch in scan_markers(str(path), cancelled=lambda: False):
        markers += batch
    return [i for i, code in enumerate(markers) if code in codes]


def three_episodes(root: Path) -> tuple[Path, Path, Path]:
    """A, B, C in one folder, in that (path) order; see the module docstring."""
    ids = itertools.count(1)
    a = record(root, MAIN_ACTIONS, step_checks={2: True}, ids=ids)
    b = record(root, ["cat readme.txt"] * 4, task_id="notes-2", goal="read the readme", ids=ids)
    c = record(root, MAIN_ACTIONS, step_checks={2: True}, ids=ids)
    assert str(a) < str(b) < str(c)
    return a, b, c


TAG = DEFAULT_TAGS[0]

# (keys after opening B, the episode they act on, the step the cursor ends on, its labels). Each jump's target
# is checked against the index below (test_the_expected_steps_are_the_markers).
CASES = [
    pytest.param(["L", "plus", "n", "minus"], "C", 3, [(0, 1, None, None, ()), (3, -1, None, None, ())],
                 id="L + n -"),
    pytest.param(["L", "n", "minus"], "C", 3, [(3, -1, None, None, ())], id="L n -"),
    pytest.param(["L", "n", "c", *"why", "enter"], "C", 3, [(3, 0, "why", None, ())], id="L n c why enter"),
    pytest.param(["L", "n", "t", "1"], "C", 3, [(3, 0, None, None, (TAG,))], id="L n t 1"),
    pytest.param(["L", "n", "number_sign", *"0.5", "enter"], "C", 3, [(3, 0, None, 0.5, ())], id="L n # 0.5 enter"),
    pytest.param(["L", "plus", "e", "minus"], "C", 1, [(0, 1, None, None, ()), (1, -1, None, None, ())],
                 id="L + e -"),
    pytest.param(["L", "G", "N", "minus"], "C", 7, [(7, -1, None, None, ())], id="L G N -"),
    pytest.param(["H", "r", "minus"], "A", 1, [(1, -1, None, None, ())], id="H r -"),
    pytest.param(["H", "e", "minus"], "A", 1, [(1, -1, None, None, ())], id="H e -"),
    pytest.param(["H", "G", "E", "minus"], "A", 6, [(6, -1, None, None, ())], id="H G E -"),
    pytest.param(["H", "v", "minus"], "A", 2, [(2, -1, None, None, ())], id="H v -"),
    pytest.param(["H", "G", "R", "V", "minus"], "A", 2, [(2, -1, None, None, ())], id="H G R V -"),
]


def test_the_expected_steps_are_the_markers(tmp_path: Path) -> None:
    """The steps CASES expect are where the index puts the markers (not numbers made up to fit)."""
    a, _b, _c = three_episodes(tmp_path / "runs")
    assert marked(a, FAILURE_CODES) == [0, 3, 4, 7]
    assert marked(a, RECOVERY_CODES) == [1, 6]
    assert marked(a, RETRY_CODES) == [1, 4, 6]
    assert marked(a, CHECK_CODES) == [2]


@pytest.mark.parametrize(("keys", "opened", "step", "expected"), CASES)
def test_keys_after_a_marker_jump_typed_after_L_or_H_land_on_its_step(
        tmp_path: Path, keys: list[str], opened: str, step: int,
        expected: list[tuple[int, int, str | None, float | None, tuple[str, ...]]]) -> None:
    """#1: L/H, a marker jump and a label in one burst: the label is on the step the jump went to, where the
    cursor is, and the labels before the jump stay where they were put."""
    a, b, c = three_episodes(tmp_path / "runs")
    target = {"A": a, "C": c}[opened]

    async def run() -> None:
        app = create_app([tmp_path / "runs"], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.library.scan_done and len(app.library.order) == 3)
            row = app.library.order.index(str(b))
            burst(app, *["down"] * row, "enter")
            screen = await open_ready(pilot)
            assert screen.episode.path == str(b)
            burst(app, *keys)
            await until(pilot, lambda: len(labels_of(target)) == len(expected) and step_of(app) == step
                        and not screen.query_one("PromptBar").asking)
            await pilot.pause()
            assert screen.episode.path == str(target)
            assert labels_of(target) == expected
            assert step_of(app) == step
            assert labels_of(a if target == c else c) == [] and labels_of(b) == []
    asyncio.run(run())


class SlowIndex:
    """Makes the next marker scan wait (checking for its cancellation) until :attr:`gate` is opened."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.gate = threading.Event()
        self.waiting = threading.Event()
        gate, waiting = self.gate, self.waiting

        def slow(path: str, **kw: Any) -> Iterator[tuple[int, bytes]]:
            waiting.set()
            cancelled = kw["cancelled"]
            while not gate.wait(0.005):
                if cancelled():
                    return
            yield from scan_markers(path, **kw)

        monkeypatch.setattr(episode_screen, "scan_markers", slow)
        monkeypatch.setattr(key_order, "STALE_HOLD_SECONDS", 0.01)  # the short holds' guard: a jump ignores it


def note(app: Any) -> str:
    return str(app.screen.query_one("TimelineLegend").note)


def test_keys_after_a_jump_wait_for_a_slow_index(main_episode: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``n -`` while the index is still being read (a large file), slower than the stale-hold guard: the rating
    waits (the screen says so) and lands on the failure the index finds (step 3), not on step 0."""
    index = SlowIndex(monkeypatch)

    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, EpisodeScreen) and index.waiting.is_set())
            burst(app, "n", "minus", "l")
            await pilot.pause(0.1)  # ten times the (shortened) stale-hold guard: a jump's hold is not dropped
            assert labels_of(main_episode) == [] and step_of(app) == 0
            assert note(app) == "looking for the next failure…: keys wait (escape cancels)"
            index.gate.set()
            await until(pilot, lambda: labels_of(main_episode) != [] and step_of(app) == 4)
            await pilot.pause()
            assert labels_of(main_episode) == [(3, -1, None, None, ())] and step_of(app) == 4
    asyncio.run(run())


def test_escape_cancels_a_waiting_jump_and_drops_the_keys_after_it(main_episode: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Escape acts at once while a jump waits for the index: the jump is dropped, the rating typed for its step
    too (said on screen), the screen stays open (escape is not "back" here) and the next keys act at once."""
    index = SlowIndex(monkeypatch)

    async def run() -> None:
        app = create_app([main_episode], annotator="ana")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, EpisodeScreen) and index.waiting.is_set())
            burst(app, "n", "minus", "escape")
            await until(pilot, lambda: "cancelled" in note(app))
            assert note(app) == "looking for the next failure cancelled; 1 key typed after it dropped"
            assert isinstance(app.screen, EpisodeScreen) and step_of(app) == 0
            burst(app, "j", "minus")
            await until(pilot, lambda: labels_of(main_episode) != [])
            assert labels_of(main_episode) == [(1, -1, None, None, ())]
            index.gate.set()  # the index arrives: the cancelled jump stays cancelled
            await until(pilot, lambda: app.screen.markers_ready)
            await pilot.pause()
            assert step_of(app) == 1
    asyncio.run(run())
