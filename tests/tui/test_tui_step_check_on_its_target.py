"""The viewer shows a step check on the step it targets (FINDINGS33 #7): ``info["checks"]`` of step 3 with
``target: 1`` draws ✗ on step 1 in the timeline and both marker scans, and step 1's pane lists it "reported at step
3"; step 3 keeps the passing episode check it reported. The real Textual app, headless, on a real file."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from tui_helpers import open_ready, until

from trajrec.tui.app import create_app
from trajrec.tui.markers import code_kind
from trajrec.tui.step_detail import StepDetail
from trajrec.tui.step_scan import scan_markers

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from test_step_check_on_its_target import record_late  # noqa: E402  (the env and file of the show tests)


@pytest.fixture(scope="module")
def late(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_late(tmp_path_factory.mktemp("late") / "run")


@pytest.mark.parametrize("use_index", [True, False])
def test_both_marker_scans_mark_the_targeted_step(late: Path, use_index: bool) -> None:
    codes = bytearray()
    for first, batch in scan_markers(str(late), cancelled=lambda: False, use_index=use_index):
        codes[first:first + len(batch)] = batch
    assert [code_kind(c) for c in codes] == ["ok", "check_failed", "ok", "check_passed"]


def _screen_text(app) -> str:  # type: ignore[no-untyped-def]
    return "\n".join("".join(seg.text for seg in strip) for strip in app.screen._compositor.render_strips())


def test_the_timeline_and_the_step_pane_show_it_on_its_target(late: Path) -> None:
    async def run() -> None:
        app = create_app([late])
        async with app.run_test(size=(140, 40)) as pilot:
            screen = await open_ready(pilot)
            rows = [x[1:].split() for x in _screen_text(app).splitlines() if x.startswith("│")]
            lines = {int(r[0]): r[1] for r in rows if len(r) > 1 and r[0].isdigit()}
            assert lines == {0: "·", 1: "✗", 2: "·", 3: "✓"}, lines
            detail = screen.query_one(StepDetail)
            await pilot.press("j")
            await until(pilot, lambda: screen.step_index == 1)
            text = detail.text.plain
            assert "checks (1)" in text and "late-verifier@1 = False" in text and "reported at step 3" in text
            assert text.startswith("step 1 of 0..3  ✗")
            await pilot.press("G")
            await until(pilot, lambda: screen.step_index == 3)
            text = detail.text.plain
            checks = text.split("── checks (1) \n", 1)[1].split("── ", 1)[0]
            assert "goal@1 = True" in checks and "late-verifier" not in checks and "reported at" not in text
            assert text.startswith("step 3 of 0..3  ✓")
    asyncio.run(run())
