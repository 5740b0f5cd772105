"""Imported runs through the whole tool: ls, show, view (the real app, headless), label, export, fsck, replay."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from import_helpers import ATIF, INSPECT_TOOLS_EVAL, MINI_V1, OH_CHAT, SWE

from trajrec import open_run
from trajrec.cli import main
from trajrec.replay import ReplayError, replay_episode


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    out = tmp_path / "run"
    assert main(["import", "auto", str(SWE), str(MINI_V1), str(INSPECT_TOOLS_EVAL), str(ATIF), str(OH_CHAT),
                 "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["episodes"] == 5 and [f["format"] for f in report["files"]] == [
        "swe-agent", "mini-swe-agent", "inspect", "atif", "openhands"]
    return out


def swe_episode(run: Path) -> Path:
    return next(run.glob("SWE-agent__test-repo-i1-*.msgpack.zst"))


def test_ls_show_fsck(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ls", str(run), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(r["env_id"] for r in rows) == sorted(f"imported/{f}" for f in
                                                      ("swe-agent", "mini-swe-agent", "inspect", "atif", "openhands"))
    inspect = next(r for r in rows if r["env_id"] == "imported/inspect")
    assert inspect["model"]["calls"] == 6  # model calls counted like recorded ones
    assert main(["show", str(swe_episode(run)), "--step", "1"]) == 0
    assert 'open "/SWE-agent__test-repo/tests/missing_colon.py"' in capsys.readouterr().out
    assert main(["fsck", str(run)]) == 0
    assert "5 files, 5 ok" in capsys.readouterr().out
    assert len(open_run(run).where("env=imported/*")) == 5


def test_label_and_export(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ep = swe_episode(run)
    assert main(["label", "add", str(ep), "--step", "2", "--value", "+1", "--rationale", "right fix",
                 "--annotator", "ana"]) == 0
    assert main(["label", "auto", str(run), "--rules"]) == 0
    capsys.readouterr()
    out = tmp_path / "prm.jsonl"
    assert main(["export", str(run), "--format", "trl-stepwise", "--out", str(out), "--unlabeled", "false",
                 "--where", "env=imported/swe-agent"]) == 0
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["labels"][2] is True and len(row["labels"]) == 5
    records = tmp_path / "records.jsonl"
    assert main(["export", str(run), "--format", "records", "--out", str(records)]) == 0
    rows = [json.loads(line) for line in records.read_text().splitlines()]
    assert len(rows) == 5
    # records@2 writes fields whose type the source decides (provenance among them) as JSON text.
    provenance = [r["provenance"] if isinstance(r["provenance"], dict) else json.loads(r["provenance"]) for r in rows]
    assert all(p["lineage"]["imported_from"]["sha256"] for p in provenance)


def test_replay_says_imported_episodes_cannot_run(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ep = swe_episode(run)
    assert main(["replay", str(ep)]) == 2
    err = capsys.readouterr().err
    assert "was imported from a swe-agent file" in err and "cannot be re-executed" in err
    with pytest.raises(ReplayError, match="cannot be re-executed"):
        replay_episode(ep)


def test_view_opens_an_imported_episode(run: Path) -> None:
    from trajrec.tui.app import create_app
    from trajrec.tui.episode_screen import EpisodeScreen
    from trajrec.tui.step_detail import StepDetail

    async def go() -> None:
        app = create_app([swe_episode(run)])
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(500):
                if isinstance(app.screen, EpisodeScreen) and app.screen.markers_ready:
                    break
                await pilot.pause(0.01)
            assert isinstance(app.screen, EpisodeScreen)
            await pilot.press("l", "l")
            await pilot.pause()
            assert app.screen.step_index == 2
            text = app.screen.query_one(StepDetail).text.plain
            assert "edit 'def division(a: float, b: float) -> float'" in text

    asyncio.run(go())
