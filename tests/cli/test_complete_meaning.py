"""`show --json`, `fsck --json` and `ls --json` give `complete` one meaning: the file has its index and lost no
step (FINDINGS29 #5: show and fsck said true for an episode that lost steps). ``closed`` says the file has its
index. Files made by a real file-size limit (``unwritten_run`` in tests/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trajrec.cli import main
from trajrec.recorder import fsck, open_episode

_NAMES = ["last.msgpack.zst", "mid.msgpack.zst", "whole.msgpack.zst"]


def _ls(run: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, bool]:
    assert main(["ls", str(run), "--json"]) == 0
    return {Path(r["path"]).name: r["complete"] for r in map(json.loads, capsys.readouterr().out.splitlines())}


def test_show_json_says_complete_as_ls_does(unwritten_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listed = _ls(unwritten_run, capsys)
    assert listed == {"last.msgpack.zst": False, "mid.msgpack.zst": False, "whole.msgpack.zst": True}
    for name in _NAMES:
        assert main(["show", str(unwritten_run / name), "--json"]) == 0
        head = json.loads(capsys.readouterr().out.splitlines()[0])
        assert head["type"] == "episode" and head["complete"] is listed[name], name
        assert head["closed"] is True  # every one of them has its index
    assert main(["show", str(unwritten_run / "mid.msgpack.zst"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["lost"] == [{"before": 2, "n": 2}]


def test_fsck_json_says_complete_as_ls_does(unwritten_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listed = _ls(unwritten_run, capsys)
    assert main(["fsck", str(unwritten_run), "--json"]) == 0  # PARTIAL is exit 0: nothing to repair
    rows = {Path(r["path"]).name: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert {n: r["complete"] for n, r in rows.items()} == listed
    assert all(r["closed"] for r in rows.values())
    assert rows["mid.msgpack.zst"]["unwritten"] == [[2, 2]] and rows["whole.msgpack.zst"]["ok"]


def test_episode_complete_keeps_its_meaning(unwritten_run: Path) -> None:
    # The Python attribute says "has its index" (internal code relies on it); the gaps say what is missing.
    with open_episode(unwritten_run / "mid.msgpack.zst") as ep:
        assert ep.complete and ep.gaps
    report = fsck(unwritten_run / "mid.msgpack.zst")
    assert report.closed and not report.complete
