"""`v`/`V` reach every step the timeline draws ✓ or ✗, in episodes of the built-in envs: their terminal check
(target "episode") rides on the last step, and CodeRepair's test runs are checks on steps in the middle."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tui_helpers import open_ready, step_of

from trajrec.cli import main
from trajrec.recorder import open_episode
from trajrec.replay.render import step_kind
from trajrec.tui.app import create_app
from trajrec.tui.step_scan import check_verdicts, scan_markers
from trajrec.tui.markers import CHECK_CODES
from trajrec.tui.timeline_legend import TimelineLegend

SIZE = (120, 40)
DRAWN_AS_CHECK = ("check_passed", "check_failed")


def _record(folder: Path, env_id: str, episodes: int, capsys: pytest.CaptureFixture) -> list[Path]:
    assert main(["record", env_id, "--episodes", str(episodes), "--out", str(folder)]) == 0
    capsys.readouterr()
    return sorted(folder.glob("*.msgpack.zst"))


def _drawn_checks(path: Path) -> list[int]:
    """The steps the timeline draws ✓/✗ (its marker is ``step_kind`` of the decoded step)."""
    with open_episode(path) as ep:
        return [s.index for s in ep if step_kind(s) in DRAWN_AS_CHECK]


async def _walk(pilot, key: str, limit: int = 40) -> list[int]:  # type: ignore[no-untyped-def]
    seen: list[int] = []
    for _ in range(limit):
        before = step_of(pilot.app)
        await pilot.press(key)
        now = step_of(pilot.app)
        if now == before:
            break
        seen.append(now)
    return seen


@pytest.mark.parametrize("env_id, episodes", [("trajrec/Shell-v0", 2), ("trajrec/CodeRepair-v0", 2)])
def test_v_reaches_every_step_drawn_as_a_check(env_id: str, episodes: int, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    files = _record(tmp_path / "run", env_id, episodes, capsys)
    for path in files:
        drawn = _drawn_checks(path)
        assert drawn, f"{path.name}: a built-in env's episode has its terminal check drawn on a step"

        async def run(path: Path = path, drawn: list[int] = drawn) -> None:
            app = create_app([path])
            async with app.run_test(size=SIZE) as pilot:
                await open_ready(pilot)
                await pilot.press("g")
                forward = await _walk(pilot, "v")
                assert [i for i in forward if i in drawn] == [i for i in drawn if i > 0]
                assert app.screen.query_one(TimelineLegend).note == "no next step with a check"
                await pilot.press("G")
                last = step_of(app)
                backward = await _walk(pilot, "V")
                assert [i for i in backward if i in drawn] == [i for i in reversed(drawn) if i < last]
                # the jumps stop only at steps that carry a check
                with open_episode(path) as ep:
                    assert all(ep[i].checks for i in forward + backward)
        asyncio.run(run())


def test_index_markers_and_the_decoding_scan_agree_with_the_drawing(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    """Both marker scans (from the index, and decoding every step) flag a check on exactly the steps that carry
    checks, and draw ✓/✗ where the timeline does."""
    from trajrec.tui.markers import code_kind

    for path in _record(tmp_path / "run", "trajrec/CodeRepair-v0", 2, capsys):
        with open_episode(path) as ep:
            carrying = [s.index for s in ep if s.checks]
            kinds = [step_kind(s) for s in ep]
            assert sorted(check_verdicts(ep)) == carrying
        for use_index in (True, False):
            codes = bytearray()
            for first, batch in scan_markers(str(path), cancelled=lambda: False, use_index=use_index):
                codes[first:first + len(batch)] = batch
            assert [i for i, c in enumerate(codes) if c in CHECK_CODES] == carrying, use_index
            assert [code_kind(c) for c in codes] == kinds, use_index
