"""Inputs that reach a file twice (the same folder given twice, a folder and a file inside it) export it once and
say how many paths were dropped; two different files with the same episode id are both exported, with a warning
naming them. The same for ``open_run`` and the labelers (one :class:`Source`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trajrec import open_run
from trajrec.replay.exports import export
from trajrec.replay.exports import parallel
from trajrec.replay.exports.source import Source


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trajrec", *args], capture_output=True, text=True, timeout=120)


def _files(run: Path) -> list[Path]:
    return sorted(run.rglob("*.msgpack.zst"))


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_file_reached_twice_is_exported_once_and_the_drop_said(builtin_run: Path, tmp_path: Path,
                                                                   workers: str) -> None:
    once = _cli("export", str(builtin_run), "--format", "chat", "--out", str(tmp_path / "once.jsonl"))
    assert once.returncode == 0, once.stderr
    want = (tmp_path / "once.jsonl").read_text()
    n = len(_files(builtin_run))
    inside = _files(builtin_run)[3]
    for name, paths, dropped in (("twice", [builtin_run, builtin_run], n), ("inside", [builtin_run, inside], 1),
                                 ("relative", [builtin_run, builtin_run / "shell" / ".." / "shell"], 8)):
        out = tmp_path / f"{name}.jsonl"
        proc = _cli("export", *map(str, paths), "--format", "chat", "--out", str(out), "--workers", workers)
        assert proc.returncode == 0, proc.stderr
        assert out.read_text() == want, name
        assert f"left out {dropped} duplicate path" in proc.stderr, proc.stderr


def test_open_run_and_labelers_count_a_file_once(builtin_run: Path) -> None:
    from trajrec.replay.autolabel import label_with_rules

    n = len(open_run(builtin_run))
    assert len(open_run([builtin_run, builtin_run])) == n
    assert len(open_run([builtin_run, _files(builtin_run)[0]])) == n
    src = Source([builtin_run, builtin_run])
    assert len(src) == n and len(src.duplicates) == n
    assert label_with_rules([builtin_run, builtin_run]).episodes == n


@pytest.mark.parametrize("workers", [1, 2])
def test_two_files_with_one_episode_id_are_both_exported_and_named(builtin_run: Path, tmp_path: Path,
                                                                     workers: int,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "HEAD_START", False)
    original = _files(builtin_run)[5]
    copy_dir = tmp_path / "elsewhere"
    copy_dir.mkdir()
    copy = copy_dir / original.name
    shutil.copy(original, copy)
    out = tmp_path / "x.jsonl"
    rep = export([builtin_run, copy_dir], "records", out, workers=workers)
    ids = [json.loads(line)["episode_id"] for line in out.read_text().splitlines()]
    eid = ids[5]
    assert ids.count(eid) == 2 and len(ids) == len(_files(builtin_run)) + 1
    assert rep.same_ids == [(eid, str(original), str(copy))]

    proc = _cli("export", str(builtin_run), str(copy_dir), "--format", "records", "--out", str(tmp_path / "y.jsonl"))
    assert proc.returncode == 0, proc.stderr
    warn = [line for line in proc.stderr.splitlines() if "warning: episode" in line]
    assert len(warn) == 1 and eid in warn[0] and str(original) in warn[0] and str(copy) in warn[0]
