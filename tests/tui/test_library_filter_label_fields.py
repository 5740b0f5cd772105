"""The viewer library's filter box reads every label field of the grammar (``labels``, ``labeled``,
``labeled_fraction``, ``judge``, ``agreement``) as ``trajrec ls --where`` does, on the same folders; a library
without label stores says which fields it cannot compute instead of silently matching nothing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from textual.widgets import Input
from tui_helpers import until

from trajrec.cli import main
from trajrec.replay.labels import LabelStore
from trajrec.tui.app import create_app
from trajrec.tui.library_screen import LibraryScreen
from trajrec.tui.scan_status import ScanStatus

TERMS = ["labeled", "unlabeled", "labels>0", "labels>3", "judge=trajrec-rules@2", "judge=human:*", "judge:human",
         "-judge=human:*", "judge=human:ana", "agreement>=0", "agreement<1", "agreement=1", "agreement!=1",
         "labeled_fraction>0.5", "labeled_fraction<0.5", "labeled labels<=4"]


@pytest.fixture
def runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> list[Path]:
    """``a`` and ``b`` labeled by the rules, ``c`` unlabeled; in ``b`` a human agrees on one episode's step 0
    and disagrees on another's."""
    folders = [tmp_path / name for name in ("a", "b", "c")]
    for folder, n in zip(folders, (3, 3, 2)):
        assert main(["record", "trajrec/Shell-v0", "--episodes", str(n), "--out", str(folder)]) == 0
    assert main(["label", "auto", str(folders[0]), str(folders[1]), "--rules"]) == 0
    capsys.readouterr()
    store = LabelStore(folders[1])
    eps = sorted({lab.episode_id for lab in store.current()})
    rule = {lab.episode_id: lab.value for lab in store.current(target=0)}
    store.add(eps[0], 0, rule[eps[0]], judge="human:ana")
    store.add(eps[1], 0, -rule[eps[1]] if rule[eps[1]] in (1, -1) else 1, judge="human:bo")
    return folders


def _ls_where(capsys: pytest.CaptureFixture, paths: list[Path], term: str) -> set[Path]:
    assert main(["ls", *map(str, paths), "--where", term, "--json"]) == 0
    return {Path(json.loads(line)["path"]).resolve() for line in capsys.readouterr().out.splitlines()}


def test_library_filter_matches_ls_where_on_label_fields(runs: list[Path], capsys: pytest.CaptureFixture) -> None:
    want = {term: _ls_where(capsys, runs, term) for term in TERMS}
    # the fixture makes every term select something other than nothing or everything, bar a few
    assert want["labels>0"] and want["unlabeled"] and want["judge=human:*"] and want["agreement<1"]
    got: dict[str, set[Path]] = {}

    async def run() -> None:
        app = create_app(runs)
        async with app.run_test(size=(140, 40)) as pilot:
            library = app.library
            await until(pilot, lambda: library.scan_done)
            for term in TERMS:
                library.query_one("#library-filter", Input).value = term
                await pilot.pause()
                await until(pilot, lambda: library.view_ready)
                assert library.query_one(ScanStatus).problem == ""
                got[term] = {Path(p).resolve() for p in library.order}
    asyncio.run(run())
    assert got == want


def test_a_library_without_label_stores_says_which_fields_it_cannot_compute(runs: list[Path]) -> None:
    async def run() -> None:
        screen = LibraryScreen([str(p) for p in runs])  # no label providers: an embedding without labels

        from textual.app import App

        class One(App[None]):
            def on_mount(self) -> None:
                self.push_screen(screen)

        app = One()
        async with app.run_test(size=(140, 40)) as pilot:
            await until(pilot, lambda: screen.scan_done)
            screen.query_one("#library-filter", Input).value = "judge=human:* labels>0"
            await pilot.pause()
            problem = screen.query_one(ScanStatus).problem
            assert "judge" in problem and "labels" in problem and "not known here" in problem
            screen.query_one("#library-filter", Input).value = "failures>0"
            await pilot.pause()
            assert screen.query_one(ScanStatus).problem == ""
    asyncio.run(run())
